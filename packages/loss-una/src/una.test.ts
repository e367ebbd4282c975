import type { PointwiseInputs } from '@alignjs/core-logprob';
import {
  disposeInputs,
  expectClose,
  expectNoLeaks,
  logSigmoid64,
  mean64,
  metricsOf,
  numericGrad,
  pairInputs,
  randomPairs,
  rng,
  sigmoid64,
  unigramLogps,
  vec,
} from '@alignjs/core-logprob/testing';
import { dpoObjective } from '@alignjs/loss-dpo';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { helpSteer2Score, normalizeScore, scoreStatistics } from './normalize.js';
import { onlineUnaLoss, unaObjective } from './una.js';

interface Rows {
  policy: number[];
  ref: number[];
  labels?: number[];
  scores?: number[];
  isBinary?: number[];
}
const pointwise = (r: Rows): PointwiseInputs => ({
  kind: 'pointwise',
  policyLogps: vec(r.policy),
  refLogps: vec(r.ref),
  lengths: vec(r.policy.map(() => 5)),
  labels: r.labels && vec(r.labels),
  scores: r.scores && vec(r.scores),
  isBinary: r.isBinary && vec(r.isBinary),
});

/** float64 UNA pointwise loss, from objectives.md. */
function oracle(r: Rows, c: Record<string, unknown>): number {
  const beta = c.beta as number;
  const w = (c.weights ?? { binary: 1, score: 1 }) as { binary: number; score: number };
  const n = (z: number) => (c.implicitNormalizer === 'identity' ? z : sigmoid64(z));
  return mean64(
    r.policy.map((p, i) => {
      const z = beta * (p - r.ref[i]!);
      const binary = c.feedback === 'binary' || (c.feedback === 'mixed' && r.isBinary![i] === 1);
      if (binary) {
        const b = r.labels![i]!;
        const l =
          c.lossFn === 'mse'
            ? (n(z) - b) ** 2
            : -(b * logSigmoid64(z) + (1 - b) * logSigmoid64(-z));
        return w.binary * l;
      }
      const raw = r.scores![i]!;
      const range = c.scoreRange as [number, number] | undefined;
      const s =
        c.scoreNormalizer === 'zscore'
          ? (raw - (c.scoreMean as number)) / (c.scoreStd as number)
          : c.scoreNormalizer === 'none'
            ? raw
            : (raw - range![0]) / (range![1] - range![0]);
      return w.score * (n(z) - s) ** 2;
    }),
  );
}

const gen = rng(3);
const rows: Rows = {
  policy: Array.from({ length: 8 }, () => -20 + 10 * gen.normal()),
  ref: Array.from({ length: 8 }, () => -20 + 10 * gen.normal()),
  labels: [1, 0, 1, 1, 0, 0, 1, 0],
  scores: [0, 2.5, 10, 7, 3.3, 9.9, 1, 5],
  isBinary: [1, 0, 0, 1, 1, 0, 0, 1],
};

const configs: Record<string, unknown>[] = [
  { feedback: 'binary', beta: 0.2 },
  { feedback: 'binary', beta: 0.2, lossFn: 'mse' },
  { feedback: 'binary', beta: 0.05, lossFn: 'mse', implicitNormalizer: 'identity' },
  { feedback: 'score', beta: 0.1, scoreRange: [0, 10] },
  {
    feedback: 'score',
    beta: 0.1,
    scoreNormalizer: 'zscore',
    scoreMean: 4,
    scoreStd: 3,
    implicitNormalizer: 'identity',
  },
  { feedback: 'score', beta: 0.1, scoreNormalizer: 'none', scoreRange: [0, 10] },
  { feedback: 'mixed', beta: 0.1, scoreRange: [0, 10], weights: { binary: 0.5, score: 2 } },
  { feedback: 'mixed', beta: 0.1, scoreRange: [0, 10], lossFn: 'mse' },
];

describe('una pointwise modes', () => {
  for (const raw of configs) {
    it(`equals the float64 formula and finite differences: ${JSON.stringify(raw)}`, () => {
      const c = unaObjective.parseConfig(raw);
      const full = { ...c, ...raw } as Record<string, unknown>;
      const x = pointwise(rows);
      const out = expectNoLeaks(() => unaObjective.loss(x, c));
      expectClose(out.loss.dataSync()[0]!, oracle(rows, full), { atol: 1e-6, rtol: 1e-5 });
      for (const [k, v] of Object.entries(metricsOf(out))) {
        expect(unaObjective.metricNames).toContain(k);
        expect(Number.isFinite(v)).toBe(true);
      }
      const g = tf.grad(
        (p: tf.Tensor) => unaObjective.loss({ ...x, policyLogps: p as tf.Tensor1D }, c).loss,
      )(x.policyLogps);
      const fd = numericGrad((p) => oracle({ ...rows, policy: p }, full), rows.policy, 1e-6);
      expectClose(g.dataSync(), fd, { atol: 1e-6, rtol: 1e-3 });
      tf.dispose([g, out.loss]);
      disposeInputs(x);
    });
  }

  it('stays finite at the numerical contract extremes', () => {
    const ext: Rows = {
      policy: [-1e4, -1e4, 0, -1e4],
      ref: [-1e4 + 1e3, -1e4 - 1e3, -1e3, 0],
      labels: [1, 0, 1, 0],
      scores: [0, 10, 5, 10],
      isBinary: [1, 1, 0, 0],
    };
    for (const raw of configs) {
      const c = unaObjective.parseConfig({ ...raw, beta: 1 });
      const x = pointwise(ext);
      const g = tf.grad(
        (p: tf.Tensor) => unaObjective.loss({ ...x, policyLogps: p as tf.Tensor1D }, c).loss,
      )(x.policyLogps);
      const out = unaObjective.loss(x, c);
      for (const v of [...out.loss.dataSync(), ...g.dataSync()])
        expect(Number.isFinite(v), JSON.stringify(raw)).toBe(true);
      tf.dispose([g, out.loss]);
      disposeInputs(x);
    }
  });
});

describe('una pairwise', () => {
  it('equals DPO sigmoid on random inputs (to float32 rounding), gradients too', () => {
    for (const seed of [1, 2, 3]) {
      const n = randomPairs(16, seed);
      const x = pairInputs({ ...n, chosenScores: undefined, rejectedScores: undefined });
      const una = unaObjective.parseConfig({ feedback: 'pairwise', beta: 0.3 });
      const dpo = dpoObjective.parseConfig({ beta: 0.3 });
      const a = expectNoLeaks(() => unaObjective.loss(x, una));
      const b = dpoObjective.loss(x, dpo);
      expectClose(a.loss.dataSync()[0]!, b.loss.dataSync()[0]!, { atol: 1e-7, rtol: 1e-6 });
      expect(metricsOf(a)).toEqual(metricsOf(b));
      const gu = tf.grad(
        (w: tf.Tensor) =>
          unaObjective.loss({ ...x, policyChosenLogps: w as tf.Tensor1D }, una).loss,
      )(x.policyChosenLogps);
      const gd = tf.grad(
        (w: tf.Tensor) =>
          dpoObjective.loss({ ...x, policyChosenLogps: w as tf.Tensor1D }, dpo).loss,
      )(x.policyChosenLogps);
      expectClose(gu.dataSync(), gd.dataSync(), { atol: 1e-8, rtol: 1e-6 });
      tf.dispose([a.loss, b.loss, gu, gd]);
      disposeInputs(x);
    }
  });
});

describe('config and data errors', () => {
  it('rejects BCE on scores and other bad configs', () => {
    expect(() =>
      unaObjective.parseConfig({ feedback: 'score', lossFn: 'bce', scoreRange: [0, 1] }),
    ).toThrow(/una config: field 'lossFn' 'bce' is not allowed with feedback 'score'/);
    expect(() => unaObjective.parseConfig({ feedback: 'score' })).toThrow(
      /field 'scoreRange' is required with scoreNormalizer 'minmax'/,
    );
    expect(() =>
      unaObjective.parseConfig({ feedback: 'score', scoreNormalizer: 'zscore', scoreMean: 1 }),
    ).toThrow(/field 'scoreStd' is required/);
    expect(() =>
      unaObjective.parseConfig({ feedback: 'binary', implicitNormalizer: 'identity' }),
    ).toThrow(/implicitNormalizer' must be 'sigmoid' with lossFn 'bce'/);
    expect(() => unaObjective.parseConfig({ feedback: 'score', scoreRange: [5, 1] })).toThrow(
      /scoreRange/,
    );
    expect(() =>
      unaObjective.parseConfig({ feedback: 'mixed', scoreRange: [0, 1], weights: { binary: -1 } }),
    ).toThrow(/una.weights config: field 'binary' must be a number >= 0/);
    expect(() => unaObjective.parseConfig({ feedback: 'thumbs' })).toThrow(
      /feedback' must be one of/,
    );
    expect(unaObjective.parseConfig({ feedback: 'binary' }).beta).toBe(0.01);
    expect(unaObjective.parseConfig({ feedback: 'score', scoreRange: [0, 1] }).beta).toBe(0.03);
  });

  it('a score outside the declared range names the row; missing fields are named', () => {
    const c = unaObjective.parseConfig({ feedback: 'score', scoreRange: [0, 5] });
    const x = pointwise({ ...rows, scores: [1, 2, 3, 7, 1, 1, 1, 1] });
    const before = tf.memory().numTensors;
    expect(() => unaObjective.loss(x, c)).toThrow(
      'una: row 3: score 7 is outside the declared scoreRange [0, 5]',
    );
    expect(() => unaObjective.loss({ ...x, scores: undefined }, c)).toThrow(
      /una: input 'scores' is required/,
    );
    const mixed = unaObjective.parseConfig({ feedback: 'mixed', scoreRange: [0, 10] });
    expect(() => unaObjective.loss({ ...x, isBinary: undefined }, mixed)).toThrow(
      /input 'isBinary' is required/,
    );
    const bin = unaObjective.parseConfig({ feedback: 'binary' });
    const bad = vec([1, 0, 0.5, 1, 0, 0, 1, 0]);
    expect(() => unaObjective.loss({ ...x, labels: bad }, bin)).toThrow(
      /una: input 'labels' must be 0 or 1, row 2 is 0.5/,
    );
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(() => onlineUnaLoss(x, bin)).toThrow(/feedback must be 'score'/);
    tf.dispose(bad);
    disposeInputs(x);
  });

  it('normalizers and the HelpSteer2 recipe', () => {
    expect(normalizeScore(7.5, { scoreNormalizer: 'minmax', scoreRange: [5, 10] })).toBe(0.5);
    expect(normalizeScore(7, { scoreNormalizer: 'zscore', scoreMean: 5, scoreStd: 4 })).toBe(0.5);
    expect(() => normalizeScore(Number.NaN, { scoreNormalizer: 'none' }, 'line 3')).toThrow(
      /line 3: score NaN is not a finite number/,
    );
    const st = scoreStatistics([1, 2, 3, 4]);
    expect(st.scoreMean).toBe(2.5);
    expect(st.scoreStd).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(() => scoreStatistics([2, 2])).toThrow(/all scores are equal/);
    const h = helpSteer2Score({ helpfulness: 4, correctness: 3, coherence: 2, verbosity: 1 });
    expect(h.combined).toBeCloseTo(0.65 * 4 + 0.8 * 3 + 0.45 * 2, 12);
    expect(h.normalized).toBeCloseTo((0.65 * 4 + 0.8 * 3 + 0.45 * 2) / 7.6, 12);
    expect(
      helpSteer2Score({ helpfulness: 4, correctness: 4, coherence: 4 }).normalized,
    ).toBeCloseTo(1, 12);
    expect(() =>
      helpSteer2Score({ helpfulness: 5, correctness: 1, coherence: 1 }, 'train.jsonl:7'),
    ).toThrow("train.jsonl:7: field 'helpfulness' must be a number in [0, 4], got 5");
  });
});

/** Toy: a unigram policy over 4 one-token responses trained with UNA-score toward given scores. */
export function toyUnaScore(steps = 300): { gapBefore: number; gapAfter: number } {
  const counts = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
  const raw = [9, 6, 3, 1];
  const c = unaObjective.parseConfig({ feedback: 'score', beta: 1, scoreRange: [0, 10] });
  const theta = tf.variable(tf.zeros([4]) as tf.Tensor1D);
  const ref = unigramLogps(theta, counts);
  const targets = raw.map((s) => s / 10);
  const gap = () =>
    tf.tidy(() => {
      const r = tf.sub(unigramLogps(theta, counts), ref).dataSync();
      return mean64(targets.map((t, i) => Math.abs(sigmoid64(r[i]!) - t)));
    });
  const gapBefore = gap();
  const opt = tf.train.adam(0.05);
  for (let s = 0; s < steps; s++) {
    opt.minimize(
      () =>
        onlineUnaLoss(
          {
            kind: 'pointwise',
            policyLogps: unigramLogps(theta, counts),
            refLogps: ref,
            lengths: vec([1, 1, 1, 1]),
            scores: vec(raw),
          },
          c,
        ).loss,
    );
  }
  const gapAfter = gap();
  tf.dispose([theta, ref]);
  opt.dispose();
  return { gapBefore, gapAfter };
}

describe('toy policy: UNA-score drives σ(βρ) toward the normalized scores', () => {
  it('the mean absolute gap shrinks', () => {
    const { gapBefore, gapAfter } = toyUnaScore();
    console.log(
      `toy UNA-score: mean |σ(βρ) − s| ${gapBefore.toFixed(4)} → ${gapAfter.toFixed(4)} after 300 Adam steps`,
    );
    expect(gapAfter).toBeLessThan(0.6 * gapBefore);
  });
});
