import * as tf from '@tensorflow/tfjs-core';

/** `logσ(z) = −softplus(−z)`: finite for any finite z (no `log(sigmoid(z))`). */
export function logSigmoid<T extends tf.Tensor>(z: T): T {
  return tf.tidy(() => tf.neg(tf.softplus(tf.neg(z)))) as T;
}

/** `log Σ exp(x)` along `axis` with the maximum subtracted first. */
export function logSumExp(x: tf.Tensor, axis: number | number[] = -1, keepDims = false): tf.Tensor {
  return tf.logSumExp(x, axis, keepDims);
}

/**
 * Bernoulli KL `K(z) = KL(Bern(½) ‖ Bern(σ(z))) = −log 2 − ½·logσ(z) − ½·logσ(−z)`
 * (objectives.md, loss-pro): ≥ 0, zero at z = 0, ≈ |z|/2 for large |z|.
 */
export function bernoulliKL<T extends tf.Tensor>(z: T): T {
  return tf.tidy(() =>
    tf.sub(tf.mul(-0.5, tf.add(logSigmoid(z), logSigmoid(tf.neg(z)))), Math.LN2),
  ) as T;
}

/** Implicit reward `r = β·(logpθ − logp_ref)` (DPO eq. 5). */
export function implicitReward<T extends tf.Tensor>(policyLogps: T, refLogps: T, beta: number): T {
  return tf.tidy(() => tf.mul(beta, tf.sub(policyLogps, refLogps))) as T;
}

/** `sum / length`, the mean token log-prob used by length-normalized objectives. */
export function meanLogps<T extends tf.Tensor>(sums: T, lengths: T): T {
  return tf.tidy(() => tf.div(sums, lengths)) as T;
}

/**
 * Runs `fn` in a tidy scope and reads its tensor back to the host, disposing everything.
 * Use it instead of `tf.tidy(() => t.dataSync())`: tidy walks whatever its callback returns
 * looking for tensors, element by element for a typed array or nested number array — about
 * 0.2 µs per element, so reading a [4, 50257] row of logits that way costs ~30 ms.
 */
export function readTidy(fn: () => tf.Tensor): Float32Array | Int32Array | Uint8Array {
  const t = tf.tidy(fn);
  try {
    return t.dataSync() as Float32Array | Int32Array | Uint8Array;
  } finally {
    t.dispose();
  }
}

/** Mean of a tensor as a plain number (reads the device; use for metrics only). */
export function scalarOf(x: tf.Tensor): number {
  return tf.tidy(() => tf.mean(x).dataSync()[0]!);
}

/**
 * Reads named scalar tensors in one device read and returns plain numbers. Each entry may
 * be any tensor (its mean is taken) or a number. Disposes nothing the caller passed in.
 */
export function readMetrics(entries: Record<string, tf.Tensor | number>): Record<string, number> {
  const names = Object.keys(entries);
  const tensorNames = names.filter((n) => typeof entries[n] !== 'number');
  const values =
    tensorNames.length === 0
      ? new Float32Array(0)
      : readTidy(() =>
          tf.stack(tensorNames.map((n) => tf.mean(tf.cast(entries[n] as tf.Tensor, 'float32')))),
        );
  const out: Record<string, number> = {};
  for (const n of names) {
    const v = entries[n]!;
    out[n] = typeof v === 'number' ? v : values[tensorNames.indexOf(n)]!;
  }
  return out;
}

/** TRL's pairwise metric names, in the order TRL logs them. */
export const PAIRWISE_METRIC_NAMES = [
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'rewards/accuracies',
  'logps/chosen',
  'logps/rejected',
] as const;

/**
 * TRL's pairwise metrics from implicit rewards `[B]`: `rewards/chosen`, `rewards/rejected`,
 * `rewards/margins`, `rewards/accuracies` (fraction with chosen > rejected), and
 * `logps/chosen`, `logps/rejected` (policy sums).
 */
export function pairwiseMetricTensors(
  chosenRewards: tf.Tensor,
  rejectedRewards: tf.Tensor,
  policyChosenLogps: tf.Tensor,
  policyRejectedLogps: tf.Tensor,
): Record<string, tf.Tensor> {
  return {
    'rewards/chosen': chosenRewards,
    'rewards/rejected': rejectedRewards,
    'rewards/margins': tf.sub(chosenRewards, rejectedRewards),
    'rewards/accuracies': tf.cast(tf.greater(chosenRewards, rejectedRewards), 'float32'),
    'logps/chosen': policyChosenLogps,
    'logps/rejected': policyRejectedLogps,
  };
}

/** Mean of `x` over the rows where the 0/1 weights `w` are 1 (0 when there are none). */
export function meanWhere(x: tf.Tensor, w: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(x, w)), tf.maximum(tf.sum(w), 1))) as tf.Scalar;
}

/**
 * TRL's metrics for unpaired feedback: mean reward and log-prob of the desirable rows
 * (`rewards/chosen`, `logps/chosen`), of the undesirable ones (`…/rejected`), and
 * `rewards/margins`; `desirable` / `undesirable` are 0/1 row weights (0 when a batch has none).
 */
export function desirabilityMetrics(
  rewards: tf.Tensor,
  logps: tf.Tensor,
  desirable: tf.Tensor,
  undesirable: tf.Tensor,
): Record<string, tf.Tensor> {
  const chosen = meanWhere(rewards, desirable);
  const rejected = meanWhere(rewards, undesirable);
  return {
    'rewards/chosen': chosen,
    'rewards/rejected': rejected,
    'rewards/margins': tf.sub(chosen, rejected),
    'logps/chosen': meanWhere(logps, desirable),
    'logps/rejected': meanWhere(logps, undesirable),
  };
}
