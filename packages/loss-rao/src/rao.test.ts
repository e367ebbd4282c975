import type { MultiInputs } from '@alignjs/core-logprob';
import {
  disposeInputs,
  expectClose,
  expectNoLeaks,
  mean64,
  metricsOf,
  numericGrad,
  rng,
  toyPairInputs,
  trainToyPair,
  vec,
} from '@alignjs/core-logprob/testing';
import { dpoObjective } from '@alignjs/loss-dpo';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type RaoConfig, raoObjective } from './rao.js';

interface Multi {
  policy: number[][];
  ref: number[][];
  scores: number[][];
  mask: number[][];
  policyPrompt: number[];
  refPrompt: number[];
}
const m2 = (a: number[][]) => tf.tensor2d(a);
const inputs = (m: Multi): MultiInputs => ({
  kind: 'multi',
  policyLogps: m2(m.policy),
  refLogps: m2(m.ref),
  lengths: m2(m.mask.map((r) => r.map(() => 4))),
  scores: m2(m.scores),
  mask: m2(m.mask),
  policyPromptLogps: vec(m.policyPrompt),
  refPromptLogps: vec(m.refPrompt),
});

/** float64 Algorithm 1: a loop per prompt and per response. */
function algorithm1(m: Multi, c: RaoConfig): number {
  const perPrompt = m.policy.map((row, i) => {
    const logZ = c.logZ0 + (m.policyPrompt[i]! - m.refPrompt[i]!);
    let sum = 0;
    let k = 0;
    row.forEach((pol, j) => {
      if (!m.mask[i]![j]) return;
      const target = c.beta * (pol - m.ref[i]![j]!) + c.beta * logZ;
      sum += (m.scores[i]![j]! - target) ** 2;
      k++;
    });
    return sum / k;
  });
  return mean64(perPrompt);
}

function random(B: number, K: number, seed: number, ragged: boolean): Multi {
  const r = rng(seed);
  const grid = (f: () => number) => Array.from({ length: B }, () => Array.from({ length: K }, f));
  const mask = grid(() => 1);
  if (ragged) {
    mask.forEach((row, i) => {
      row.fill(0, 1 + (i % K));
    });
  }
  return {
    policy: grid(() => -30 + 5 * r.normal()),
    ref: grid(() => -30 + 5 * r.normal()),
    scores: grid(() => 2 * r.normal()),
    mask,
    policyPrompt: Array.from({ length: B }, () => -12 + r.normal()),
    refPrompt: Array.from({ length: B }, () => -12 + r.normal()),
  };
}

describe('rao', () => {
  const cases: [string, Multi, Record<string, number>][] = [
    ['K = 1', random(5, 1, 1, false), {}],
    ['K = 4 ragged', random(6, 4, 2, true), { beta: 0.3, logZ0: -7 }],
    ['K = 2', random(4, 2, 3, false), { beta: 0.05, logZ0: 500 }],
  ];

  for (const [label, m, raw] of cases) {
    it(`${label}: equals a float64 Algorithm 1 loop, with finite-difference gradients`, () => {
      const c = raoObjective.parseConfig(raw);
      const x = inputs(m);
      const out = expectNoLeaks(() => raoObjective.loss(x, c));
      expectClose(out.loss.dataSync()[0]!, algorithm1(m, c), { atol: 1e-4, rtol: 1e-5 });
      const K = m.policy[0]!.length;
      const flat = m.policy.flat();
      const g = tf.grad(
        (p: tf.Tensor) => raoObjective.loss({ ...x, policyLogps: p as tf.Tensor2D }, c).loss,
      )(x.policyLogps);
      const fd = numericGrad(
        (v) => algorithm1({ ...m, policy: m.policy.map((_, i) => v.slice(i * K, (i + 1) * K)) }, c),
        flat,
        1e-5,
      );
      expectClose(g.dataSync(), fd, { atol: 1e-4, rtol: 1e-3 });
      for (const k of Object.keys(out.metrics)) expect(raoObjective.metricNames).toContain(k);
      if (K === 2) expect(out.metrics['rewards/chosen']).toBeDefined();
      tf.dispose([g, out.loss]);
      disposeInputs(x);
    });
  }

  it('the prompt log-ratio is detached: no gradient flows through it', () => {
    const m = random(3, 2, 4, false);
    const x = inputs(m);
    const c = raoObjective.parseConfig({});
    const [gp, gr, gpol] = tf.grads(
      (a: tf.Tensor, b: tf.Tensor, p: tf.Tensor) =>
        raoObjective.loss(
          {
            ...x,
            policyPromptLogps: a as tf.Tensor1D,
            refPromptLogps: b as tf.Tensor1D,
            policyLogps: p as tf.Tensor2D,
          },
          c,
        ).loss,
    )([x.policyPromptLogps!, x.refPromptLogps!, x.policyLogps]);
    expect(Array.from(gp!.dataSync()).every((v) => v === 0)).toBe(true);
    expect(Array.from(gr!.dataSync()).every((v) => v === 0)).toBe(true);
    expect(Array.from(gpol!.dataSync()).some((v) => v !== 0)).toBe(true);
    // …yet its value moves the targets: logZ_mean = logZ0 + mean prompt log-ratio.
    const out = raoObjective.loss(x, c);
    expectClose(
      metricsOf(out)['rao/logZ_mean']!,
      50 + mean64(m.policyPrompt.map((v, i) => v - m.refPrompt[i]!)),
      { atol: 1e-4 },
    );
    tf.dispose([gp!, gr!, gpol!, out.loss]);
    disposeInputs(x);
  });

  it('stays finite at the numerical contract extremes', () => {
    const m: Multi = {
      policy: [
        [-1e4, 0],
        [-1e4 + 1e3, -1e4],
      ],
      ref: [
        [-1e4 + 1e3, -1e3],
        [-1e4, 0],
      ],
      scores: [
        [1, -1],
        [0, 2],
      ],
      mask: [
        [1, 1],
        [1, 0],
      ],
      policyPrompt: [-1e4, 0],
      refPrompt: [0, -1e3],
    };
    const x = inputs(m);
    const c = raoObjective.parseConfig({ beta: 1 });
    const g = tf.grad(
      (p: tf.Tensor) => raoObjective.loss({ ...x, policyLogps: p as tf.Tensor2D }, c).loss,
    )(x.policyLogps);
    const out = raoObjective.loss(x, c);
    for (const v of [...out.loss.dataSync(), ...g.dataSync()])
      expect(Number.isFinite(v)).toBe(true);
    tf.dispose([g, out.loss]);
    disposeInputs(x);
  });

  it('clear errors for bad config and bad data', () => {
    expect(raoObjective.parseConfig({})).toEqual({ beta: 0.1, logZ0: 50 });
    expect(() => raoObjective.parseConfig({ beta: 0 })).toThrow(
      /rao config: field 'beta' must be a number > 0/,
    );
    expect(() => raoObjective.parseConfig({ logZ0: 'big' })).toThrow(/logZ0/);
    expect(() => raoObjective.parseConfig({ Z0: 50 })).toThrow(/unknown field 'Z0'/);
    const m = random(3, 2, 5, false);
    const x = inputs(m);
    const c = raoObjective.parseConfig({});
    expect(() => raoObjective.loss({ ...x, policyPromptLogps: undefined }, c)).toThrow(
      /rao: input 'policyPromptLogps' is required/,
    );
    const empty = m2([
      [1, 1],
      [0, 0],
      [1, 0],
    ]);
    expect(() => raoObjective.loss({ ...x, mask: empty }, c)).toThrow(
      /rao: prompt 1 has no responses/,
    );
    const frac = m2([
      [1, 1],
      [0.5, 1],
      [1, 0],
    ]);
    expect(() => raoObjective.loss({ ...x, mask: frac }, c)).toThrow(
      /'mask' must be 0 or 1, \[1, 0\] is 0.5/,
    );
    tf.dispose([empty, frac]);
    disposeInputs(x);
  });
});

describe('toy policy: RAO fits the rewards and keeps the chosen log-prob above the reference', () => {
  it('RAO reaches its targets; DPO lets the chosen log-prob fall', () => {
    // Chosen "x x x y" with reward 0.5, rejected "x x x z" with reward −1; β = 0.5, logZ0 = 0
    // and an empty prompt (log-ratio 0) put the targets at ρ_w = +1 and ρ_l = −2.
    const rc = raoObjective.parseConfig({ beta: 0.5, logZ0: 0 });
    const dc = dpoObjective.parseConfig({ beta: 0.5 });
    const rao = trainToyPair(
      (lp, ref) =>
        raoObjective.loss(
          {
            kind: 'multi',
            policyLogps: tf.reshape(lp, [1, 2]) as tf.Tensor2D,
            refLogps: tf.reshape(ref, [1, 2]) as tf.Tensor2D,
            lengths: m2([[4, 4]]),
            scores: m2([[0.5, -1]]),
            mask: m2([[1, 1]]),
            policyPromptLogps: vec([0]),
            refPromptLogps: vec([0]),
          },
          rc,
        ).loss,
    );
    const dpo = trainToyPair((lp, ref) => dpoObjective.loss(toyPairInputs(lp, ref), dc).loss);
    const fit = (Math.abs(0.5 * rao.chosen - 0.5) + Math.abs(0.5 * rao.rejected + 1)) / 2;
    console.log(
      `toy RAO vs DPO (400 Adam steps): RAO chosen Δlogp ${rao.chosen.toFixed(3)}, rejected ${rao.rejected.toFixed(3)}, |target − R| ${fit.toFixed(4)}; DPO chosen Δlogp ${dpo.chosen.toFixed(3)}, rejected ${dpo.rejected.toFixed(3)}`,
    );
    expect(fit).toBeLessThan(0.02);
    expect(rao.chosen).toBeGreaterThan(0.9);
    expect(dpo.chosen).toBeLessThan(0);
  });
});
