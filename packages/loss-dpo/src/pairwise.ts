import {
  logSigmoid,
  meanLogps,
  type PairwiseInputs,
  requireInput,
  requirePositive,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

/** Log-ratios ρ = logpθ − logp_ref of chosen and rejected, sums or per-token means. */
export function pairLogRatios(
  objective: string,
  p: PairwiseInputs,
  mode: 'sum' | 'mean',
): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  const refC = requireInput(objective, 'refChosenLogps', p.refChosenLogps, 'reference log-probs');
  const refR = requireInput(
    objective,
    'refRejectedLogps',
    p.refRejectedLogps,
    'reference log-probs',
  );
  if (mode === 'sum') {
    return {
      chosen: tf.sub(p.policyChosenLogps, refC),
      rejected: tf.sub(p.policyRejectedLogps, refR),
    };
  }
  requirePositive(objective, 'chosenLengths', p.chosenLengths);
  requirePositive(objective, 'rejectedLengths', p.rejectedLengths);
  return {
    chosen: tf.sub(
      meanLogps(p.policyChosenLogps, p.chosenLengths),
      meanLogps(refC, p.chosenLengths),
    ),
    rejected: tf.sub(
      meanLogps(p.policyRejectedLogps, p.rejectedLengths),
      meanLogps(refR, p.rejectedLengths),
    ),
  };
}

/**
 * DPO (`sigmoid`, Rafailov et al. 2023) with optional label smoothing (cDPO):
 * `−(1−ε)·logσ(βΔ) − ε·logσ(−βΔ)`, Δ = ρ_w − ρ_l. ε = 0 is DPO. Returns `[B]`.
 */
export function sigmoidLosses(delta: tf.Tensor1D, beta: number, labelSmoothing = 0): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.mul(beta, delta);
    const pos = tf.mul(-(1 - labelSmoothing), logSigmoid(z));
    return labelSmoothing === 0 ? pos : tf.sub(pos, tf.mul(labelSmoothing, logSigmoid(tf.neg(z))));
  }) as tf.Tensor1D;
}

/**
 * Robust DPO (Chowdhury et al. 2024), unbiased under label-flip rate ε:
 * `[−(1−ε)·logσ(βΔ) + ε·logσ(−βΔ)] / (1 − 2ε)`. Returns `[B]`.
 */
export function robustLosses(
  delta: tf.Tensor1D,
  beta: number,
  labelSmoothing: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.mul(beta, delta);
    const num = tf.add(
      tf.mul(-(1 - labelSmoothing), logSigmoid(z)),
      tf.mul(labelSmoothing, logSigmoid(tf.neg(z))),
    );
    return tf.div(num, 1 - 2 * labelSmoothing);
  }) as tf.Tensor1D;
}

/** IPO (Azar et al. 2023), τ = β: `(Δ̄ − 1/(2τ))²` with Δ̄ from mean token log-probs (as TRL). */
export function ipoLosses(deltaMean: tf.Tensor1D, beta: number): tf.Tensor1D {
  return tf.tidy(() => tf.square(tf.sub(deltaMean, 1 / (2 * beta)))) as tf.Tensor1D;
}

/** Hinge / SLiC (Zhao et al. 2023): `max(0, 1 − βΔ)`. */
export function hingeLosses(delta: tf.Tensor1D, beta: number): tf.Tensor1D {
  return tf.tidy(() => tf.relu(tf.sub(1, tf.mul(beta, delta)))) as tf.Tensor1D;
}

/**
 * SimPO (Meng et al. 2024), reference-free:
 * `−logσ(β·(mean_θ(y_w) − mean_θ(y_l)) − γ)`.
 */
export function simpoLosses(
  chosenMean: tf.Tensor1D,
  rejectedMean: tf.Tensor1D,
  beta: number,
  gamma: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.neg(logSigmoid(tf.sub(tf.mul(beta, tf.sub(chosenMean, rejectedMean)), gamma))),
  ) as tf.Tensor1D;
}

/**
 * NCA, pairwise form (Chen et al. 2024):
 * `−logσ(βρ_w) − ½·logσ(−βρ_w) − ½·logσ(−βρ_l)`.
 */
export function ncaPairLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const rw = tf.mul(beta, chosenRatio);
    const rl = tf.mul(beta, rejectedRatio);
    return tf.sub(
      tf.sub(tf.neg(logSigmoid(rw)), tf.mul(0.5, logSigmoid(tf.neg(rw)))),
      tf.mul(0.5, logSigmoid(tf.neg(rl))),
    );
  }) as tf.Tensor1D;
}
