/**
 * bench/shipped-step: the training step users run — `alignjs train`'s `Trainer` through its
 * public API, a registered objective (DPO, and UNA to show a new objective costs the same),
 * AdamW, the reference cache — timed per optimizer step from the run's own history
 * (`StepRecord.seconds`: forward, backward, clip, finite guard, update and the step's device
 * reads), median over the steps after a warm-up. Shapes: the built-in tiny model and a
 * GPT-2-mini shape (random weights written as a Hugging Face directory). Writes its section
 * of bench/results.md.
 *
 *   npm run build && npx tsx bench/shipped-step.ts [--quick]
 */
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@alignjs/core-logprob';
import { CausalLM, parseModelConfig, saveModel, tinyModelDir } from '@alignjs/models/node';
import { makeLogger, Trainer } from '@alignjs/trainer/node';
import { median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const STEPS = Number(process.env.ALIGNJS_BENCH_STEPS ?? 0) || (quick ? 3 : 6);

/** The config parser of the installed packages: @alignjs/cli's (objectives by name). */
async function parser(): Promise<(raw: unknown) => unknown> {
  const cli = (await import('@alignjs/cli')) as { parseRunConfig: (raw: unknown) => unknown };
  return cli.parseRunConfig;
}

/** A model directory of `config` with random weights and the tiny model's tokenizer files. */
async function modelDir(config: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'alignjs-bench-model-'));
  const m = CausalLM.random(parseModelConfig(config), 1);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await saveModel(m, dir);
  m.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(join(tinyModelDir(), f), join(dir, f));
  return dir;
}

/** `pairs` preference rows whose prompt + response tokenize past `seq` tokens (then truncated). */
async function data(pairs: number, seq: number): Promise<string> {
  const words = ['cat', 'dog', 'sun', 'tree', 'happy', 'bright', 'sad', 'dark', 'kind', 'cold'];
  const text = (i: number, k: number) =>
    Array.from({ length: seq }, (_, t) => words[(i * 7 + t * 3 + k) % words.length]).join(' ');
  const file = join(await mkdtemp(join(tmpdir(), 'alignjs-bench-data-')), 'train.jsonl');
  const rows = Array.from({ length: pairs }, (_, i) => ({
    prompt: `Tell me about item ${i}.`,
    chosen: text(i, 1),
    rejected: text(i, 2),
  }));
  await writeFile(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return file;
}

async function shippedStep(
  model: string,
  objective: unknown,
  pairs: number,
  seq: number,
): Promise<{ seconds: number; tokens: number }> {
  const parse = await parser();
  const train = await data(pairs, seq);
  const output = await mkdtemp(join(tmpdir(), 'alignjs-bench-run-'));
  const config = parse({
    model,
    train,
    objective,
    output,
    batchSize: pairs,
    maxSteps: 1 + STEPS,
    epochs: 1 + STEPS,
    maxLength: seq,
    maxPromptLength: 8,
    learningRate: 1e-5,
  }) as ConstructorParameters<typeof Trainer>[0];
  const t = new Trainer(config, { logger: makeLogger(undefined, 'quiet') });
  try {
    const r = await t.train();
    return { seconds: median(r.history.slice(1).map((h) => h.seconds)), tokens: 2 * pairs * seq };
  } finally {
    t.dispose();
  }
}

async function main(): Promise<void> {
  const info = await initBackend();
  const gpt2Mini = {
    model_type: 'gpt2',
    vocab_size: 8192,
    n_positions: 1024,
    n_embd: 256,
    n_layer: 4,
    n_head: 4,
  };
  const mini = await modelDir(gpt2Mini);
  const cases: [string, string, unknown, number, number][] = [
    ['built-in tiny (Llama, 2L/64)', 'builtin:tiny', 'dpo', 8, 64],
    [
      'built-in tiny (Llama, 2L/64)',
      'builtin:tiny',
      { name: 'una', config: { feedback: 'pairwise' } },
      8,
      64,
    ],
    ['GPT-2 mini (4L/256)', mini, 'dpo', 2, 64],
    ['GPT-2 mini (4L/256)', mini, { name: 'una', config: { feedback: 'pairwise' } }, 2, 64],
  ];
  const rows: string[][] = [];
  const json: Record<string, unknown>[] = [];
  for (const [name, model, objective, pairs, seq] of cases) {
    const r = await shippedStep(model, objective, pairs, seq);
    const label = typeof objective === 'string' ? objective : (objective as { name: string }).name;
    rows.push([
      name,
      label,
      `${pairs}×2×${seq}`,
      (r.seconds * 1000).toFixed(1),
      Math.round(r.tokens / r.seconds).toLocaleString('en-US'),
    ]);
    json.push({ shape: name, objective: label, pairs, seq, seconds: r.seconds });
    console.log(rows.at(-1)!.join(' | '));
  }
  const md = `## The shipped training step (bench/shipped-step) — ${info.backend}, median of ${STEPS} steps after a warm-up, ${new Date().toISOString()}

The \`Trainer\`'s own optimizer step (\`alignjs train\`'s code: objective from the registry, AdamW,
reference log-probs attached from the cache, clipping, finite guard, logging every step), with
token counts at the truncation limit (prompt ≤ 8 tokens, prompt + response = ${64}).

${table(['shape', 'objective', 'pairs × 2 × seq', 'ms / step', 'tokens / s'], rows)}
`;
  await writeSection('shipped-step', md);
  await recordResult('shipped-step', { backend: info.backend, cases: json });
}

await main();
