/**
 * Test helpers shared by every alignjs package (`@alignjs/core-logprob/testing`): float64
 * oracles and finite differences written in plain arithmetic, independent of the tensor
 * code they check, plus leak checks. Not for production use.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readMetrics, readTidy } from './math.js';
import type { LossOutput, Objective, PairwiseInputs } from './objective.js';
import { mulberry32 } from './random.js';

/** float64 `log σ(z)` without overflow. */
export function logSigmoid64(z: number): number {
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** float64 σ(z). */
export function sigmoid64(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** float64 log Σ exp. */
export function logSumExp64(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (!Number.isFinite(m)) return m;
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

/** float64 Bernoulli KL K(z) = −log 2 − ½logσ(z) − ½logσ(−z). */
export function bernoulliKL64(z: number): number {
  return -Math.LN2 - 0.5 * logSigmoid64(z) - 0.5 * logSigmoid64(-z);
}

export function mean64(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Central finite differences of a float64 function at `x`. */
export function numericGrad(f: (x: number[]) => number, x: readonly number[], h = 1e-5): number[] {
  return x.map((_, i) => {
    const up = [...x];
    const down = [...x];
    up[i]! += h;
    down[i]! -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

/** Deterministic PRNG (mulberry32) with uniform and normal draws. */
export function rng(seed: number): { uniform: () => number; normal: () => number } {
  const uniform = mulberry32(seed);
  const normal = () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  return { uniform, normal };
}

/** Asserts element-wise |a − e| ≤ atol + rtol·|e|, with a message naming the first miss. */
export function expectClose(
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  {
    atol = 1e-5,
    rtol = 1e-5,
    label = 'value',
  }: { atol?: number; rtol?: number; label?: string } = {},
): void {
  const a = typeof actual === 'number' ? [actual] : Array.from(actual);
  const e = typeof expected === 'number' ? [expected] : Array.from(expected);
  if (a.length !== e.length)
    throw new Error(`${label}: length ${a.length} != expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(e[i]!);
    if (!(Math.abs(a[i]! - e[i]!) <= tol)) {
      throw new Error(`${label}[${i}]: got ${a[i]}, expected ${e[i]} (tolerance ${tol})`);
    }
  }
}

function countTensors(x: unknown, seen = new Set<unknown>()): number {
  if (x instanceof tf.Tensor) {
    if (seen.has(x.id)) return 0;
    seen.add(x.id);
    return 1;
  }
  if (Array.isArray(x)) return x.reduce((n: number, v) => n + countTensors(v, seen), 0);
  if (x && typeof x === 'object') {
    return Object.values(x).reduce((n: number, v) => n + countTensors(v, seen), 0);
  }
  return 0;
}

/**
 * Runs `fn` and asserts the only new tensors are the ones it returned (in any nesting of
 * arrays and objects). Returns `fn`'s result.
 */
export function expectNoLeaks<T>(fn: () => T, label = 'call'): T {
  const before = tf.memory().numTensors;
  const out = fn();
  const extra = tf.memory().numTensors - before - countTensors(out);
  if (extra !== 0) throw new Error(`${label} leaked ${extra} tensor(s)`);
  return out;
}

/** `[B]` float32 tensor from numbers. */
export function vec(xs: readonly number[]): tf.Tensor1D {
  return tf.tensor1d(xs as number[], 'float32');
}

/** Plain-number pairwise data for building {@link PairwiseInputs} in tests. */
export interface PairNumbers {
  policyChosen: number[];
  policyRejected: number[];
  refChosen: number[];
  refRejected: number[];
  chosenLengths: number[];
  rejectedLengths: number[];
  chosenScores?: number[];
  rejectedScores?: number[];
}

/** Random pairwise data: sums of log-probs around −lengths·2, log-ratios of a few nats. */
export function randomPairs(B: number, seed: number): PairNumbers {
  const r = rng(seed);
  const lens = () => Array.from({ length: B }, () => 1 + Math.floor(r.uniform() * 12));
  const chosenLengths = lens();
  const rejectedLengths = lens();
  const ref = (l: number[]) => l.map((n) => -2 * n - r.uniform() * n);
  const refChosen = ref(chosenLengths);
  const refRejected = ref(rejectedLengths);
  return {
    chosenLengths,
    rejectedLengths,
    refChosen,
    refRejected,
    policyChosen: refChosen.map((v) => v + 2 * r.normal()),
    policyRejected: refRejected.map((v) => v + 2 * r.normal()),
    chosenScores: chosenLengths.map(() => 1 + 4 * r.uniform()),
    rejectedScores: chosenLengths.map(() => 1 + 4 * r.uniform()),
  };
}

/** Unigram toy policy: `logp(y) = Σ_v counts[y][v]·log_softmax(θ)[v]` for each response. */
export function unigramLogps(
  theta: tf.Tensor1D,
  counts: readonly (readonly number[])[],
): tf.Tensor1D {
  return tf.tidy(() => {
    const lsm = tf.logSoftmax(theta);
    return tf.squeeze(
      tf.matMul(tf.tensor2d(counts as number[][]), tf.reshape(lsm, [-1, 1])),
      [1],
    ) as tf.Tensor1D;
  });
}

/** float64 unigram log-probs for oracle checks. */
export function unigramLogps64(
  theta: readonly number[],
  counts: readonly (readonly number[])[],
): number[] {
  const lse = logSumExp64(theta);
  return counts.map((c) => c.reduce((s, n, v) => s + n * (theta[v]! - lse), 0));
}

/** {@link PairwiseInputs} from plain numbers (scores included when given). */
export function pairInputs(n: PairNumbers): PairwiseInputs {
  return {
    kind: 'pairwise',
    policyChosenLogps: vec(n.policyChosen),
    policyRejectedLogps: vec(n.policyRejected),
    refChosenLogps: vec(n.refChosen),
    refRejectedLogps: vec(n.refRejected),
    chosenLengths: vec(n.chosenLengths),
    rejectedLengths: vec(n.rejectedLengths),
    ...(n.chosenScores && n.rejectedScores
      ? { chosenScores: vec(n.chosenScores), rejectedScores: vec(n.rejectedScores) }
      : {}),
  };
}

/**
 * {@link PairwiseInputs} from number arrays named as its fields (a golden fixture's
 * `inputs`, e.g. `policyChosenLogps`, `chosenWpoLogps`); absent fields stay absent.
 */
export function pairwiseFromRecord(x: Readonly<Record<string, readonly number[]>>): PairwiseInputs {
  const out: Record<string, unknown> = { kind: 'pairwise' };
  for (const [k, v] of Object.entries(x)) out[k] = vec(v);
  return out as unknown as PairwiseInputs;
}

/** Disposes every tensor field of an inputs object. */
export function disposeInputs(x: object): void {
  tf.dispose(Object.values(x).filter((v): v is tf.Tensor => v instanceof tf.Tensor));
}

/**
 * The toy policy of every loss package's direction tests: a unigram model over {x, y, z}
 * with chosen "x x x y" and rejected "x x x z" — the case where sample DPO lowers both
 * log-probs. Trains θ (starting at the reference, 0) with Adam on `loss(logps [2], ref [2])`
 * (row 0 chosen, row 1 rejected; 4 tokens each) and returns each log-ratio at the end.
 */
export function trainToyPair(
  loss: (logps: tf.Tensor1D, ref: tf.Tensor1D) => tf.Scalar,
  steps = 400,
  learningRate = 0.05,
): { chosen: number; rejected: number; margin: number } {
  const counts = [
    [3, 1, 0],
    [3, 0, 1],
  ];
  const theta = tf.variable(tf.zeros([3]) as tf.Tensor1D);
  const ref = unigramLogps(theta, counts);
  const refArr = Array.from(ref.dataSync());
  const opt = tf.train.adam(learningRate);
  for (let s = 0; s < steps; s++) opt.minimize(() => loss(unigramLogps(theta, counts), ref));
  const lp = Array.from(readTidy(() => unigramLogps(theta, counts)));
  tf.dispose([theta, ref]);
  opt.dispose();
  const chosen = lp[0]! - refArr[0]!;
  const rejected = lp[1]! - refArr[1]!;
  return { chosen, rejected, margin: chosen - rejected };
}

/** Pairwise inputs for {@link trainToyPair}'s two rows (lengths 4, optional scores). */
export function toyPairInputs(
  logps: tf.Tensor1D,
  ref: tf.Tensor1D,
  scores?: [number, number],
): PairwiseInputs {
  const [w, l] = tf.split(logps, 2) as [tf.Tensor1D, tf.Tensor1D];
  const [rw, rl] = tf.split(ref, 2) as [tf.Tensor1D, tf.Tensor1D];
  return {
    kind: 'pairwise',
    policyChosenLogps: w,
    policyRejectedLogps: l,
    refChosenLogps: rw,
    refRejectedLogps: rl,
    chosenLengths: vec([4]),
    rejectedLengths: vec([4]),
    ...(scores ? { chosenScores: vec([scores[0]]), rejectedScores: vec([scores[1]]) } : {}),
  };
}

/**
 * Asserts an objective's loss and its gradients with respect to both policy inputs are
 * finite on pairwise `inputs` (the numerical contract's extremes). Disposes what it makes.
 */
export function expectFinitePairwise<C>(
  objective: Objective<C>,
  inputs: PairwiseInputs,
  config: Readonly<C>,
  label = objective.name,
): void {
  const [gw, gl] = tf.grads(
    (w: tf.Tensor, l: tf.Tensor) =>
      objective.loss(
        { ...inputs, policyChosenLogps: w as tf.Tensor1D, policyRejectedLogps: l as tf.Tensor1D },
        config,
      ).loss,
  )([inputs.policyChosenLogps, inputs.policyRejectedLogps]);
  const out = objective.loss(inputs, config);
  const values = [...out.loss.dataSync(), ...gw!.dataSync(), ...gl!.dataSync()];
  tf.dispose([gw!, gl!, out.loss]);
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new Error(
      `${label}: non-finite loss or gradient (${values[bad]}) at the numerical contract's extremes`,
    );
}

/** A loss output's metrics as numbers (one device read); disposes the metric tensors, not the loss. */
export function metricsOf(out: LossOutput): Record<string, number> {
  const m = readMetrics(out.metrics);
  tf.dispose(Object.values(out.metrics));
  return m;
}
