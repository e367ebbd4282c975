/**
 * Every loss against TRL 1.13's own loss code (fixtures/trl-goldens.json, made by
 * tools/make-trl-loss-goldens.py): loss within 1e-5, gradient w.r.t. the policy's summed
 * log-probs within 1e-4, and TRL's logged metrics. The mapping from TRL's config to ours is
 * written out here by hand, independent of the trainer's TRL-spelling parser.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Objective, type PairwiseInputs, weightedSum } from '@alignjs/core-logprob';
import {
  disposeInputs,
  expectClose,
  expectNoLeaks,
  metricsOf,
  pairwiseFromRecord,
} from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { dpoObjectives } from './objectives.js';

interface Golden {
  trainer: 'dpo' | 'orpo' | 'cpo';
  batch: string;
  config: Record<string, unknown>;
  inputs: Record<string, number[]>;
  loss: number;
  gradChosen: number[];
  gradRejected: number[];
  metrics: Record<string, number>;
}

const file = fileURLToPath(new URL('../fixtures/trl-goldens.json', import.meta.url));
const goldens = (JSON.parse(readFileSync(file, 'utf8')) as { cases: Golden[] }).cases;

const SMOOTHED = new Set(['robust', 'exo_pair', 'aot', 'aot_unpaired']);

/** Our objective and raw config for one TRL DPOConfig (by hand, for this test). */
function fromTrl(g: Golden): { objective: Objective<object>; raw: unknown } {
  const c = g.config;
  const all = dpoObjectives as unknown as Record<string, Objective<object>>;
  if (g.trainer === 'orpo') return { objective: all.orpo!, raw: { beta: c.beta } };
  if (g.trainer === 'cpo') {
    const raw: Record<string, unknown> = { lossType: c.loss_type };
    if (c.beta !== undefined) raw.beta = c.beta;
    if (c.label_smoothing !== undefined) raw.labelSmoothing = c.label_smoothing;
    if (c.cpo_alpha !== undefined) raw.cpoAlpha = c.cpo_alpha;
    if (c.simpo_gamma !== undefined) raw.simpoGamma = c.simpo_gamma;
    return { objective: all.cpo!, raw };
  }
  const types = c.loss_type as string[];
  const part = (t: string) => {
    const name = t === 'sigmoid' ? 'dpo' : t;
    const raw: Record<string, unknown> = {};
    if (t !== 'sft') {
      raw.beta = c.beta ?? 0.1;
      if (c.f_divergence_type) raw.fDivergenceType = c.f_divergence_type;
      if (c.f_alpha_divergence_coef !== undefined)
        raw.fAlphaDivergenceCoef = c.f_alpha_divergence_coef;
      if (c.use_weighting) raw.useWeighting = true;
      if (c.ld_alpha !== undefined) raw.ldAlpha = c.ld_alpha;
    }
    if (SMOOTHED.has(t)) raw.labelSmoothing = c.label_smoothing ?? 0;
    if (t === 'discopop' && c.discopop_tau !== undefined) raw.discopopTau = c.discopop_tau;
    return { objective: all[name]!, raw };
  };
  if (types.length === 1) return part(types[0]!);
  const parts = types.map(part);
  const weights = (c.loss_weights as number[] | undefined) ?? types.map(() => 1);
  return {
    objective: weightedSum(
      parts.map((p, i) => ({ objective: p.objective, weight: weights[i]! })),
    ) as unknown as Objective<object>,
    raw: parts.map((p) => p.raw),
  };
}

const inputsOf = (g: Golden): PairwiseInputs => pairwiseFromRecord(g.inputs);

const label = (g: Golden) => `${g.trainer} ${g.batch} ${JSON.stringify(g.config)}`;

describe('TRL 1.13 goldens', () => {
  it('covers every TRL DPO loss type, the f-divergences, WPO, LD, combinations, ORPO and CPO', () => {
    const types = new Set(
      goldens.filter((g) => g.trainer === 'dpo').flatMap((g) => g.config.loss_type as string[]),
    );
    expect([...types].sort()).toEqual(
      [
        'aot',
        'aot_unpaired',
        'apo_down',
        'apo_zero',
        'bco_pair',
        'discopop',
        'exo_pair',
        'hinge',
        'ipo',
        'nca_pair',
        'robust',
        'sft',
        'sigmoid',
        'sigmoid_norm',
        'sppo_hard',
      ].sort(),
    );
    const fdivs = new Set(goldens.map((g) => g.config.f_divergence_type).filter(Boolean));
    expect(fdivs.size).toBe(3);
    expect(goldens.some((g) => g.config.use_weighting)).toBe(true);
    expect(goldens.some((g) => g.config.ld_alpha !== undefined)).toBe(true);
    expect(goldens.filter((g) => g.trainer !== 'dpo').length).toBeGreaterThanOrEqual(10);
  });

  it.each(goldens.map((g) => [label(g), g] as const))('%s', (_name, g) => {
    const { objective, raw } = fromTrl(g);
    const config = objective.parseConfig(raw);
    const x = inputsOf(g);
    const out = expectNoLeaks(() => objective.loss(x, config));
    expectClose(out.loss.dataSync()[0]!, g.loss, { atol: 1e-5, rtol: 1e-5, label: 'loss' });
    out.loss.dispose();
    const m = metricsOf(out);
    const single = !Array.isArray(g.config.loss_type) || g.config.loss_type.length === 1;
    if (single) {
      for (const [k, v] of Object.entries(g.metrics)) {
        if (k === 'rewards/accuracies' || !(k in m)) continue;
        expectClose(m[k]!, v, { atol: 1e-5, rtol: 1e-5, label: k });
      }
    }
    // `+ 0·Σr`: sft does not read the rejected log-probs, and tf.grads wants every input used
    const [gc, gr] = tf.grads((c: tf.Tensor, r: tf.Tensor) =>
      tf.add(
        objective.loss(
          { ...x, policyChosenLogps: c as tf.Tensor1D, policyRejectedLogps: r as tf.Tensor1D },
          config,
        ).loss,
        tf.mul(0, tf.sum(r)),
      ),
    )([x.policyChosenLogps, x.policyRejectedLogps]);
    expectClose(gc!.dataSync(), g.gradChosen, { atol: 1e-4, rtol: 1e-4, label: 'grad chosen' });
    expectClose(gr!.dataSync(), g.gradRejected, {
      atol: 1e-4,
      rtol: 1e-4,
      label: 'grad rejected',
    });
    tf.dispose([gc!, gr!]);
    disposeInputs(x);
  });
});
