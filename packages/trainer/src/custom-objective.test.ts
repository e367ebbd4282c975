/** A user's own Objective, defined here, trains through the Trainer like a registered one. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeLoss, logSigmoid, type Objective, parseWith } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { makeLogger } from './log.js';
import { writeTestData } from './testing.js';
import { Trainer } from './trainer.js';

/** `−logσ(κ·(ρ_w − ρ_l))`, a DPO with its own name and field. */
const margin: Objective<{ kappa: number }> = {
  name: 'my_margin',
  description: 'a test objective',
  feedback: ['pairwise'],
  metricNames: ['my/margin'],
  parseConfig: (raw) =>
    parseWith('my_margin', raw, (r) => ({ kappa: r.number('kappa', 0.2, { gt: 0 }) })),
  feedbackFor: () => ['pairwise'],
  needs: () => ({
    inputs: 'pairwise',
    reference: true,
    promptLogps: false,
    rewards: false,
    mismatchedPairs: false,
  }),
  loss: (inputs, c) =>
    computeLoss('my_margin', inputs, 'pairwise', (p) => {
      const d = tf.sub(
        tf.sub(p.policyChosenLogps, p.refChosenLogps!),
        tf.sub(p.policyRejectedLogps, p.refRejectedLogps!),
      );
      return {
        loss: tf.neg(tf.mean(logSigmoid(tf.mul(c.kappa, d)))) as tf.Scalar,
        metrics: { 'my/margin': d },
      };
    }),
};

describe('Trainer with an Objective object', () => {
  it('trains bare or with its config, logs its metrics, and its loss falls', async () => {
    const data = await writeTestData(4);
    for (const objective of [margin, { objective: margin, config: { kappa: 0.5 } }]) {
      const cfg = parseTrainConfig({
        train: data.pairwise,
        objective,
        output: await mkdtemp(join(tmpdir(), 'alignjs-own-')),
        maxSteps: 8,
        batchSize: 4,
        learningRate: 3e-3,
        schedule: 'constant',
      });
      const t = new Trainer(cfg, {
        logger: makeLogger(join(cfg.output, 'metrics.jsonl'), 'quiet'),
      });
      const r = await t.train();
      t.dispose();
      expect(r.history.every((h) => Number.isFinite(h.metrics['my/margin']))).toBe(true);
      expect(r.history.at(-1)!.loss).toBeLessThan(r.history[0]!.loss);
    }
    expect(() =>
      parseTrainConfig({
        train: 'x',
        output: 'o',
        objective: { objective: margin, config: { kapa: 1 } },
      }),
    ).not.toThrow();
  });
});
