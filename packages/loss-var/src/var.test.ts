import type { CrossInputs } from '@alignjs/core-logprob';
import {
  expectClose,
  expectNoLeaks,
  mean64,
  metricsOf,
  numericGrad,
  rng,
  vec,
} from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { varObjective } from './var.js';

interface Cross {
  policy: number[];
  lengths: number[];
  refCross: number[][];
  crossRewards: number[][];
  rewards: number[];
}
const inputs = (c: Cross): CrossInputs => ({
  kind: 'cross',
  policyLogps: vec(c.policy),
  lengths: vec(c.lengths),
  refCrossLogps: tf.tensor2d(c.refCross),
  crossRewards: tf.tensor2d(c.crossRewards),
  rewards: vec(c.rewards),
});
const dispose = (x: object) => tf.dispose(Object.values(x).filter((v) => v instanceof tf.Tensor));

function random(B: number, seed: number, scale = 1): Cross {
  const r = rng(seed);
  const lengths = Array.from({ length: B }, () => 2 + Math.floor(r.uniform() * 10));
  return {
    policy: lengths.map((l) => -l * (0.5 + r.uniform()) * scale),
    lengths,
    refCross: Array.from({ length: B }, () => lengths.map((l) => -l * (0.5 + r.uniform()) * scale)),
    crossRewards: Array.from({ length: B }, () => lengths.map(() => 2 * r.normal())),
    rewards: lengths.map(() => 2 * r.normal()),
  };
}

/**
 * Algorithm 1 evaluated literally in float64: Z(x_i) = Σ_j π_ref(y_j|x_i)·exp(r(x_i, y_j)/λ),
 * w_i = π_ref(y_i|x_i)·exp(r(x_i, y_i)/λ) / Z(x_i), loss = mean(−w_i·logπθ(y_i|x_i)).
 * Probabilities are exp() of the log-probs here: fine for the moderate values used.
 */
function algorithm1(
  c: Cross,
  lambda: number,
  mode: 'cross' | 'diagonal' = 'cross',
  lengthNormalized = false,
): { loss: number; w: number[] } {
  const B = c.policy.length;
  const norm = (v: number, j: number) => (lengthNormalized ? v / c.lengths[j]! : v);
  const reward = (i: number, j: number) =>
    mode === 'cross' ? c.crossRewards[i]![j]! : c.rewards[j]!;
  const w: number[] = [];
  const loss: number[] = [];
  for (let i = 0; i < B; i++) {
    let Z = 0;
    for (let j = 0; j < B; j++)
      Z += Math.exp(norm(c.refCross[i]![j]!, j)) * Math.exp(reward(i, j) / lambda);
    const wi = (Math.exp(norm(c.refCross[i]![i]!, i)) * Math.exp(reward(i, i) / lambda)) / Z;
    w.push(wi);
    loss.push(-wi * norm(c.policy[i]!, i));
  }
  return { loss: mean64(loss), w };
}

describe('var', () => {
  for (const [label, raw] of [
    ['cross, sums', {}],
    ['cross, λ = 0.5, length-normalized', { lambda: 0.5, lengthNormalized: true }],
    ['diagonal', { mode: 'diagonal', lambda: 2 }],
  ] as const) {
    it(`${label}: equals Algorithm 1's double loop in float64`, () => {
      const c = varObjective.parseConfig(raw);
      const data = random(6, 11);
      const x = inputs(data);
      const out = expectNoLeaks(() => varObjective.loss(x, c));
      const o = algorithm1(data, c.lambda, c.mode, c.lengthNormalized);
      expectClose(out.loss.dataSync()[0]!, o.loss, { atol: 1e-6, rtol: 1e-5 });
      const sw = o.w.reduce((s, v) => s + v, 0);
      const m = metricsOf(out);
      expectClose(m['var/ess']!, (sw * sw) / o.w.reduce((s, v) => s + v * v, 0), {
        rtol: 1e-4,
      });
      expectClose(m['var/w_max']!, Math.max(...o.w), { rtol: 1e-5 });
      // The weights are detached: d loss / d logpθ_i = −w_i / B (÷ len_i if normalized).
      const g = tf.grad(
        (p: tf.Tensor) => varObjective.loss({ ...x, policyLogps: p as tf.Tensor1D }, c).loss,
      )(x.policyLogps);
      const fd = numericGrad(
        (p) => algorithm1({ ...data, policy: p }, c.lambda, c.mode, c.lengthNormalized).loss,
        data.policy,
        1e-6,
      );
      expectClose(g.dataSync(), fd, { atol: 1e-7, rtol: 1e-4 });
      const rewardInput = c.mode === 'cross' ? x.crossRewards! : x.rewards!;
      const [gRef, gRew] = tf.grads(
        (a: tf.Tensor, b: tf.Tensor) =>
          varObjective.loss(
            {
              ...x,
              refCrossLogps: a as tf.Tensor2D,
              ...(c.mode === 'cross'
                ? { crossRewards: b as tf.Tensor2D }
                : { rewards: b as tf.Tensor1D }),
            },
            c,
          ).loss,
      )([x.refCrossLogps, rewardInput]);
      expect(Array.from(gRef!.dataSync()).every((v) => v === 0)).toBe(true);
      expect(Array.from(gRew!.dataSync()).every((v) => v === 0)).toBe(true);
      tf.dispose([out.loss, g, gRef!, gRew!]);
      dispose(x);
    });
  }

  it('Theorem B.1: the loss is ≥ 0 for any inputs (weights ≥ 0, log-probs ≤ 0), extremes included', () => {
    const c = varObjective.parseConfig({ lambda: 0.1 });
    for (let seed = 0; seed < 20; seed++) {
      const data = random(5, seed, seed % 2 ? 1 : 300);
      const r = rng(seed);
      data.crossRewards = data.crossRewards.map((row) => row.map(() => 1e3 * r.normal()));
      if (seed === 3) data.policy = data.policy.map(() => -1e4);
      const x = inputs(data);
      const out = varObjective.loss(x, c);
      const v = out.loss.dataSync()[0]!;
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(metricsOf(out)['var/ess']!)).toBe(true);
      const g = tf.grad(
        (p: tf.Tensor) => varObjective.loss({ ...x, policyLogps: p as tf.Tensor1D }, c).loss,
      )(x.policyLogps);
      expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
      tf.dispose([out.loss, g]);
      dispose(x);
    }
  });

  it('raw sums collapse the weights; length normalization keeps more effective samples', () => {
    const data = random(8, 5, 1);
    // Responses of very different lengths with equal per-token quality.
    data.lengths = [2, 4, 8, 16, 32, 3, 6, 12];
    data.refCross = data.refCross.map((row) => row.map((_, j) => -1.5 * data.lengths[j]!));
    data.crossRewards = data.crossRewards.map((row) => row.map(() => 0));
    const x = inputs(data);
    const sums = varObjective.loss(x, varObjective.parseConfig({}));
    const means = varObjective.loss(x, varObjective.parseConfig({ lengthNormalized: true }));
    const [sm, mm] = [metricsOf(sums), metricsOf(means)];
    expect(sm['var/ess']!).toBeLessThan(2);
    expect(mm['var/ess']!).toBeGreaterThan(7.9);
    expect(mm['var/w_max']!).toBeLessThan(sm['var/w_max']!);
    tf.dispose([sums.loss, means.loss]);
    dispose(x);
  });

  it('clear errors for bad config and bad data', () => {
    expect(varObjective.parseConfig({})).toEqual({
      lambda: 1,
      mode: 'cross',
      lengthNormalized: false,
    });
    expect(() => varObjective.parseConfig({ lambda: 0 })).toThrow(
      /var config: field 'lambda' must be a number > 0/,
    );
    expect(() => varObjective.parseConfig({ mode: 'full' })).toThrow(
      /mode' must be one of 'cross', 'diagonal'/,
    );
    const x = inputs(random(3, 1));
    const c = varObjective.parseConfig({});
    expect(() => varObjective.loss({ ...x, crossRewards: undefined }, c)).toThrow(
      /var: input 'crossRewards' is required \(mode 'cross'/,
    );
    const bad = tf.zeros([3, 2]) as tf.Tensor2D;
    expect(() => varObjective.loss({ ...x, refCrossLogps: bad }, c)).toThrow(
      /'refCrossLogps' must be \[3, 3\], got \[3,2\]/,
    );
    tf.dispose(bad);
    dispose(x);
  });
});

/**
 * Toy: B = 4 "prompts" whose policy is a free softmax over 4 responses (θ [4, 4]);
 * VAR weights from a fixed reference and rewards; returns the loss per 25 steps and min w.
 */
export function toyVar(steps = 200): { losses: number[]; minWeight: number } {
  const B = 4;
  const theta = tf.variable(tf.zeros([B, B]));
  const refCross = tf.logSoftmax(tf.zeros([B, B])) as tf.Tensor2D;
  const crossRewards = tf.tensor2d([
    [1, 0, 0, -1],
    [0, 2, 0, 0],
    [0.5, 0, 1, 0],
    [0, 0, 0, 0.2],
  ]);
  const c = varObjective.parseConfig({ lambda: 0.5 });
  const opt = tf.train.adam(0.05);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const cost = opt.minimize(() => {
      const policy = tf.sum(tf.mul(tf.logSoftmax(theta), tf.eye(B)), 1) as tf.Tensor1D;
      return varObjective.loss(
        {
          kind: 'cross',
          policyLogps: policy,
          lengths: vec([1, 1, 1, 1]),
          refCrossLogps: refCross,
          crossRewards,
        },
        c,
      ).loss;
    }, true)!;
    if (s % 25 === 0 || s === steps - 1) losses.push(cost.dataSync()[0]!);
    cost.dispose();
  }
  const w = tf.tidy(() => {
    const a = tf.add(refCross, tf.div(crossRewards, 0.5));
    return Array.from(
      tf.exp(tf.sub(tf.sum(tf.mul(a, tf.eye(B)), 1), tf.logSumExp(a, 1))).dataSync(),
    );
  });
  tf.dispose([theta, refCross, crossRewards]);
  opt.dispose();
  return { losses, minWeight: Math.min(...w) };
}

describe('toy policy: VAR weights stay positive and the loss decreases', () => {
  it('monotone on average', () => {
    const { losses, minWeight } = toyVar();
    console.log(
      `toy VAR: loss every 25 steps ${losses.map((v) => v.toFixed(4)).join(' → ')}; min weight ${minWeight.toExponential(3)}`,
    );
    expect(minWeight).toBeGreaterThan(0);
    for (let i = 1; i < losses.length; i++)
      expect(losses[i]!).toBeLessThanOrEqual(losses[i - 1]! + 1e-6);
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
  });
});
