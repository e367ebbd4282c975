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
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

const PYTHON =
  process.env.ALIGNJS_REF_PYTHON ?? join(import.meta.dirname, '..', '.venv-refs/bin/python');

interface TrlStep {
  seconds: number;
  tokens_per_s: number;
  peak_rss_mb: number;
}

/** TRL 1.13's DPOTrainer step on the same shape (bench/trl_step.py), or why not. */
function trlStep(
  shape: 'tiny' | 'gpt2-mini',
  pairs: number,
  seq: number,
  bf16: boolean,
): TrlStep | string {
  if (!existsSync(PYTHON))
    return 'skipped: no TRL (tools/setup-reference-python.sh makes the venv)';
  const args = [
    join(import.meta.dirname, 'trl_step.py'),
    '--shape',
    shape,
    '--pairs',
    String(pairs),
  ];
  args.push(
    '--seq',
    String(seq),
    '--steps',
    String(STEPS),
    '--threads',
    '1',
    ...(bf16 ? ['--bf16'] : []),
  );
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `skipped: TRL failed (${(r.stderr ?? '').trim().split('\n').at(-1)})`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TrlStep;
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
  const una = { name: 'una', config: { feedback: 'pairwise' } };
  const cases: [string, string, 'tiny' | 'gpt2-mini', unknown, number, number][] = [
    ['built-in tiny (Llama, 2L/64)', 'builtin:tiny', 'tiny', 'dpo', 8, 64],
    ['built-in tiny (Llama, 2L/64)', 'builtin:tiny', 'tiny', una, 8, 64],
    ['GPT-2 mini (4L/256)', mini, 'gpt2-mini', 'dpo', 2, 64],
    ['GPT-2 mini (4L/256)', mini, 'gpt2-mini', una, 2, 64],
  ];
  const rows: string[][] = [];
  const json: Record<string, unknown>[] = [];
  const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
  for (const [name, model, shape, objective, pairs, seq] of cases) {
    const r = await shippedStep(model, objective, pairs, seq);
    const rss = process.resourceUsage().maxRSS / 1024;
    const label = typeof objective === 'string' ? objective : (objective as { name: string }).name;
    // TRL has no UNA: its DPO step is the comparison for both rows of a shape
    const trl =
      label === 'dpo' ? [trlStep(shape, pairs, seq, false), trlStep(shape, pairs, seq, true)] : [];
    const ours = r.tokens / r.seconds;
    const cell = (t: TrlStep | string | undefined) =>
      t === undefined ? '–' : typeof t === 'string' ? t : fmt(t.tokens_per_s);
    const ratio = (t: TrlStep | string | undefined) =>
      t && typeof t !== 'string' ? (t.tokens_per_s / ours).toFixed(2) : '–';
    rows.push([
      name,
      label,
      `${pairs}×2×${seq}`,
      (r.seconds * 1000).toFixed(1),
      fmt(ours),
      cell(trl[0]),
      cell(trl[1]),
      ratio(trl[0]),
      fmt(rss),
      trl[0] && typeof trl[0] !== 'string' ? fmt(trl[0].peak_rss_mb) : '–',
    ]);
    json.push({
      shape: name,
      objective: label,
      pairs,
      seq,
      seconds: r.seconds,
      trl,
      peakRssMb: rss,
    });
    console.log(rows.at(-1)!.join(' | '));
  }
  const md = `## The shipped training step (bench/shipped-step) — ${info.backend}, median of ${STEPS} steps after a warm-up, ${new Date().toISOString()}

The \`Trainer\`'s own optimizer step (\`alignjs train\`'s code: objective from the registry, AdamW,
reference log-probs attached from the cache, clipping, finite guard, logging every step), with
token counts at the truncation limit (prompt ≤ 8 tokens, prompt + response = ${64}).

${table(
  [
    'shape',
    'objective',
    'pairs × 2 × seq',
    'ms / step',
    'tokens / s',
    'TRL fp32 tok/s',
    'TRL bf16 tok/s',
    'our time ÷ TRL fp32',
    'peak RSS MB (bench process)',
    'TRL peak RSS MB',
  ],
  rows,
)}

TRL: 1.13's \`DPOTrainer\` (bench/trl_step.py, torch 2.13 CPU with MKL, 1 thread, the same
architecture and batch, pre-tokenized rows, AdamW, one step per batch), median of the same
number of steps after a warm-up; bf16 is TRL's default (CPU autocast). "our time ÷ TRL fp32"
> 1 means we are slower. Our RSS is the bench process's peak so far (it runs every case).
`;
  await writeSection(`shipped-step-${info.backend}`, md);
  await recordResult(`shipped-step-${info.backend}`, { backend: info.backend, cases: json });
}

await main();
