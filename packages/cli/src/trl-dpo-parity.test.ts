/**
 * End to end against TRL 1.13's DPOTrainer: the same checkpoint (saved by transformers 5.17),
 * tokenizer, 8-row dataset and hyper-parameters (one batch of 8, 10 steps, lr 1e-3 linear,
 * β 0.1, max_grad_norm 1, AdamW, fp32): the loss of every step within 1e-5 of TRL's, for a
 * SentencePiece-style (Llama), a GPT-2 byte-level and a Qwen chat tokenizer, plain and
 * conversational. TRL's curves: `tools/make-trl-dpo-curves.py`; this test runs only our side.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLogger, Trainer } from '@alignjs/trainer/node';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from './config-file.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'trl-dpo');
const golden = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as {
  trl: string;
  hyperparameters: Record<string, number | string>;
  runs: Record<string, number[]>;
};

describe("alignjs train equals TRL 1.13's DPOTrainer step by step", () => {
  it('the curves come from TRL 1.13 with the hyper-parameters used here', () => {
    expect(golden.trl).toBe('1.13.0');
    expect(golden.hyperparameters).toMatchObject({
      learning_rate: 1e-3,
      beta: 0.1,
      max_steps: 10,
      per_device_train_batch_size: 8,
      max_grad_norm: 1,
      lr_scheduler_type: 'linear',
      warmup_steps: 0,
      weight_decay: 0,
    });
    expect(Object.keys(golden.runs).length).toBe(6);
  });

  it.each(Object.keys(golden.runs))('%s: per-step loss within 1e-5', async (run) => {
    const [name, kind] = run.split('/') as [string, string];
    const output = await mkdtemp(join(tmpdir(), 'alignjs-trl-dpo-'));
    const cfg = parseRunConfig({
      model: join(DIR, name, 'model'),
      train: join(DIR, name, `${kind}.jsonl`),
      objective: { name: 'dpo', config: { beta: 0.1 } },
      learningRate: 1e-3,
      batchSize: 8,
      maxSteps: 10,
      schedule: 'linear',
      warmupSteps: 0,
      weightDecay: 0,
      maxGradNorm: 1,
      logSteps: 1,
      output,
    });
    const t = new Trainer(cfg, { logger: makeLogger(join(output, 'metrics.jsonl'), 'quiet') });
    const r = await t.train();
    t.dispose();
    const ours = r.history.map((h) => h.loss);
    const want = golden.runs[run]!;
    expect(ours.length).toBe(want.length);
    const worst = Math.max(...ours.map((v, i) => Math.abs(v - want[i]!)));
    console.log(`${run}: max abs loss difference ${worst.toExponential(2)}`);
    expect(
      worst,
      `ours ${ours.map((v) => v.toFixed(6))} vs TRL ${want.map((v) => v.toFixed(6))}`,
    ).toBeLessThan(1e-5);
  });
});
