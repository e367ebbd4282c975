/**
 * Test helpers shared by every alignjs package (`@alignjs/core-logprob/testing`): float64
 * oracles and finite differences written in plain arithmetic, independent of the tensor
 * code they check, plus leak checks. Not for production use.
 */
import * as tf from '@tensorflow/tfjs-core';

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
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
