/**
 * An alignjs run's `final/` directory (and a LoRA run's adapter) load with transformers 5.17 and
 * PEFT 0.21 as a user loads them: AutoTokenizer gives our token ids, AutoModelForCausalLM (or
 * PeftModel on the base) our logits within 1e-4, GenerationConfig reads, and a greedy
 * `pipeline('text-generation')` adds the tokens our greedy `generate` adds. Runs
 * tools/check-hf-load.py in the reference venv (tools/setup-reference-python.sh, made by
 * `npm test`); without it the tests skip, saying why — except under CI, where they fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate, loadLora, loadModel, loadTokenizer } from '@alignjs/models/node';
import { makeLogger, Trainer } from '@alignjs/trainer/node';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from './config-file.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const python = process.env.ALIGNJS_REF_PYTHON ?? join(root, '.venv-refs/bin/python');
const ready =
  existsSync(python) &&
  spawnSync(python, ['-c', 'import transformers, peft'], { stdio: 'ignore' }).status === 0;
if (!ready && process.env.CI)
  throw new Error(`hf-load tests: no reference venv with transformers and peft at ${python}`);
// Skipped (not under CI) when the machine has no local Python index to build the venv from.
const suite = ready ? describe : describe.skip;

const FIX = join(import.meta.dirname, '..', 'fixtures', 'trl-dpo', 'llama-sp');
const TEXT = 'The capital of France is';
const IDS = [[1, 40, 41, 42, 43, 44, 45, 46]];

async function trainTwoSteps(extra: Record<string, unknown>): Promise<string> {
  const output = await mkdtemp(join(tmpdir(), 'alignjs-hf-load-'));
  const cfg = parseRunConfig({
    model: join(FIX, 'model'),
    train: join(FIX, 'plain.jsonl'),
    objective: 'dpo',
    learningRate: 1e-2,
    batchSize: 8,
    maxSteps: 2,
    output,
    ...extra,
  });
  const t = new Trainer(cfg, { logger: makeLogger(join(output, 'metrics.jsonl'), 'quiet') });
  const r = await t.train();
  t.dispose();
  return r.finalDir;
}

function checkWithTransformers(dir: string, base?: string) {
  const args = [join(root, 'tools/check-hf-load.py'), '--model', dir, '--ids', JSON.stringify(IDS)];
  args.push('--text', TEXT, '--new-tokens', '5', ...(base ? ['--base', base] : []));
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`check-hf-load.py failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    textIds: number[];
    logits: number[][][];
    generated: number[];
  };
}

async function expectSame(dir: string, base?: string) {
  const hf = checkWithTransformers(dir, base);
  const tok = await loadTokenizer(dir);
  expect(tok.encode(TEXT)).toEqual(hf.textIds);
  const model = await loadModel(base ?? dir);
  if (base) await loadLora(model, dir);
  const ids = tf.tensor2d(IDS, undefined, 'int32');
  const mask = tf.onesLike(ids);
  const logits = model.call(ids, mask);
  const got = logits.arraySync();
  let worst = 0;
  hf.logits[0]!.forEach((row, t) => {
    const scale = Math.max(...row.map(Math.abs));
    row.forEach((v, k) => {
      worst = Math.max(worst, Math.abs(got[0]![t]![k]! - v) / scale);
    });
  });
  expect(worst).toBeLessThan(1e-4);
  const g = generate(model, [hf.textIds], { greedy: true, maxNewTokens: 5 });
  expect([...hf.textIds, ...g.ids[0]!]).toEqual(hf.generated);
  tf.dispose([ids, mask, logits]);
  model.dispose();
}

suite('alignjs outputs load in transformers 5.17 and PEFT 0.21', () => {
  it('final/ of a full fine-tune: AutoTokenizer, AutoModelForCausalLM, GenerationConfig, pipeline', async () => {
    await expectSame(await trainTwoSteps({}));
  }, 120_000);

  it('final/ of a LoRA run with use_rslora: PeftModel.from_pretrained on the base', async () => {
    const dir = await trainTwoSteps({
      lora: {
        r: 4,
        loraAlpha: 8,
        useRslora: true,
        targetModules: ['q_proj', 'v_proj', 'down_proj'],
      },
    });
    await expectSame(dir, join(FIX, 'model'));
  }, 120_000);
});
