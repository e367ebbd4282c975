/**
 * lm-evaluation-harness 0.4.13 (`local-completions`) against `alignjs serve` with the built-in
 * model, on custom task YAMLs over committed JSONL (fixtures/lm-eval), next to
 * `alignjs harness` on the same documents: acc and acc_norm (0- and 2-shot) and GSM8K-style
 * exact match must be equal. Needs the reference venv from tools/setup-reference-python.sh
 * (made by `npm test`); without it the tests skip, saying why — except under CI, where they fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HfTokenizer, loadModel, loadTokenizer, tinyModelDir } from '@alignjs/models/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runHarness } from './harness-run.js';
import { type RunningServer, serve } from './serve.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const python = process.env.ALIGNJS_REF_PYTHON ?? join(root, '.venv-refs/bin/python');
const fixtures = fileURLToPath(new URL('../fixtures/lm-eval/', import.meta.url));
const ready =
  existsSync(python) &&
  spawnSync(python, ['-c', 'import lm_eval'], { stdio: 'ignore' }).status === 0;
if (!ready && process.env.CI)
  throw new Error(
    `lm-eval tests: no reference venv at ${python} (tools/setup-reference-python.sh)`,
  );
// Skipped (not under CI) when the machine has no local Python index to build the venv from.
const suite = ready ? describe : describe.skip;

let srv: RunningServer;
let model: Awaited<ReturnType<typeof loadModel>>;
let tok: HfTokenizer;

beforeAll(async () => {
  if (!ready) return;
  model = await loadModel(tinyModelDir());
  tok = await loadTokenizer(tinyModelDir());
  srv = await serve({ model, tokenizer: tok, modelId: 'alignjs', port: 0, maxTokensLimit: 64 });
});
afterAll(async () => {
  if (!ready) return;
  await srv.close();
  model.dispose();
});

interface LmEvalOut {
  results: Record<string, Record<string, number>>;
  samples: Record<string, { doc_id: number; resps: string[][] }[]>;
}

/** Runs lm_eval in a child process (async, so this process keeps serving it). */
async function lmEval(tasks: string, numFewshot?: number): Promise<LmEvalOut> {
  const { spawn } = await import('node:child_process');
  const out = join(await mkdtemp(join(tmpdir(), 'alignjs-lmeval-')), 'results.json');
  const args = [
    join(root, 'tools/run-lm-eval.py'),
    '--base-url',
    `${srv.url}/v1/completions`,
    '--tokenizer',
    tinyModelDir(),
    '--include-path',
    fixtures,
    '--tasks',
    tasks,
    '--max-length',
    String(model.config.maxPositions),
    '--output',
    out,
    ...(numFewshot !== undefined ? ['--num-fewshot', String(numFewshot)] : []),
  ];
  const log: string[] = [];
  const code = await new Promise<number>((resolve) => {
    const p = spawn(python, args, {
      cwd: fixtures,
      env: {
        ...process.env,
        HF_DATASETS_OFFLINE: '1',
        HF_HUB_OFFLINE: '1',
        TOKENIZERS_PARALLELISM: 'false',
      },
    });
    p.stdout.on('data', (d) => log.push(String(d)));
    p.stderr.on('data', (d) => log.push(String(d)));
    p.on('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`lm_eval exited ${code}:\n${log.join('').slice(-3000)}`);
  return JSON.parse(await readFile(out, 'utf8')) as LmEvalOut;
}

suite('lm-evaluation-harness against alignjs serve', () => {
  it('multiple choice: acc and acc_norm equal our harness, 0-shot and 2-shot (lm-eval’s few-shot draws)', async () => {
    for (const shots of [0, 2]) {
      const theirs = (await lmEval('alignjs_arc', shots)).results.alignjs_arc!;
      const ours = await runHarness({
        model,
        tokenizer: tok,
        task: 'arc_easy',
        docs: join(fixtures, 'arc_tiny.jsonl'),
        fewshot: shots,
      });
      const r = (ours.json.results as Record<string, Record<string, number>>).arc_easy!;
      expect(r['acc,none'], `${shots}-shot acc`).toBe(theirs['acc,none']);
      expect(r['acc_norm,none'], `${shots}-shot acc_norm`).toBe(theirs['acc_norm,none']);
    }
  }, 240_000);

  it('generation: GSM8K-style exact match equals our harness', async () => {
    const run = await lmEval('alignjs_gsm8k');
    const theirs = run.results.alignjs_gsm8k!;
    const ours = await runHarness({
      model,
      tokenizer: tok,
      task: 'gsm8k',
      docs: join(fixtures, 'gsm8k_tiny.jsonl'),
      maxGenTokens: 16,
    });
    const r = (ours.json.results as Record<string, Record<string, number>>).gsm8k!;
    expect(r['exact_match,strict-match']).toBe(theirs['exact_match,strict-match']);
    expect(r['exact_match,flexible-extract']).toBe(theirs['exact_match,flexible-extract']);
    // the tiny model scores 0 either way: the generations themselves must be the same text
    // one sample per (doc, filter): the raw response is the same for both filters
    const byDoc = new Map(run.samples.alignjs_gsm8k!.map((x) => [x.doc_id, x.resps[0]![0]!]));
    const texts = [...byDoc.entries()].sort((a, b) => a[0] - b[0]).map((x) => x[1]);
    expect(texts.length).toBe(ours.samples.length);
    texts.forEach((t, i) => {
      expect(ours.samples[i]!.text!.trim(), `doc ${i}`).toBe(t.trim());
    });
  }, 240_000);
});
