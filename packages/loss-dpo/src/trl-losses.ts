/**
 * TRL 1.13's remaining `DPOTrainer` loss types as per-example functions over `[B]` tensors,
 * each with its formula and paper. ρ_w, ρ_l are the chosen / rejected log-ratios
 * logpθ − logp_ref (summed over response tokens); Δ = s(ρ_w) − s(ρ_l) with s the
 * f-divergence score ({@link fDivergenceScores}, s(ρ) = ρ for reverse KL, plain DPO).
 * Definitions follow `trl/trainer/dpo_trainer.py` (`_compute_loss`); where TRL and a paper
 * differ, TRL is followed and the doc comment says so.
 */
import { detach, logSigmoid } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

/** TRL's `f_divergence_type` values. */
export const F_DIVERGENCES = [
  'reverse_kl',
  'forward_kl',
  'js_divergence',
  'alpha_divergence',
] as const;
export type FDivergence = (typeof F_DIVERGENCES)[number];

/** Exponents above this are clamped (e^80 ≈ 5.5e34 is still finite in float32), as TRL does. */
export const EXP_CAP = 80;

/**
 * f-DPO scores s(ρ) = f′(π/π_ref) of a log-ratio ρ (Wang et al. 2023, "Beyond Reverse KL"):
 * - `reverse_kl`: ρ (DPO)
 * - `forward_kl`: 1 − e^{−ρ}, with −ρ clamped at 80 like TRL's α clamp (TRL itself
 *   overflows to ∞ below ρ ≈ −88 in float32; the clamp changes nothing above ρ = −80)
 * - `js_divergence`: log 2 + logσ(ρ)
 * - `alpha_divergence`: (e^{(α−1)ρ} − 1)/(α − 1), with (α−1)ρ clamped at 80 as TRL does
 *   (float32); α = 1 (|α − 1| < 1e-6) is the reverse-KL limit ρ.
 */
export function fDivergenceScores(ratio: tf.Tensor1D, type: FDivergence, alpha = 0.5): tf.Tensor1D {
  return tf.tidy(() => {
    switch (type) {
      case 'reverse_kl':
        return tf.clone(ratio);
      case 'forward_kl':
        return tf.sub(1, tf.exp(tf.minimum(tf.neg(ratio), EXP_CAP)));
      case 'js_divergence':
        return tf.add(Math.LN2, logSigmoid(ratio));
      case 'alpha_divergence': {
        if (Math.abs(alpha - 1) < 1e-6) return tf.clone(ratio);
        const t = tf.minimum(tf.mul(alpha - 1, ratio), EXP_CAP);
        return tf.mul(tf.sub(tf.exp(t), 1), 1 / (alpha - 1));
      }
    }
  }) as tf.Tensor1D;
}

/**
 * EXO, pairwise (`exo_pair`; Ji et al. 2024, "Towards Efficient Exact Optimization of
 * Language Model Alignment", eq. 16): KL(q ‖ p) between q = softmax over {w, l} of βΔ and the
 * smoothed label p = (1−ε, ε):
 * `σ(βΔ)·(logσ(βΔ) − log(1−ε)) + σ(−βΔ)·(logσ(−βΔ) − log ε)`, ε > 0.
 */
export function exoPairLosses(delta: tf.Tensor1D, beta: number, epsilon: number): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.mul(beta, delta);
    const win = tf.mul(tf.sigmoid(z), tf.sub(logSigmoid(z), Math.log1p(-epsilon)));
    const lose = tf.mul(tf.sigmoid(tf.neg(z)), tf.sub(logSigmoid(tf.neg(z)), Math.log(epsilon)));
    return tf.add(win, lose);
  }) as tf.Tensor1D;
}

/**
 * BCO on pairs (`bco_pair`; Jung et al. 2024, "Binary Classifier Optimization"):
 * `−logσ(βρ_w) − logσ(−βρ_l)`. TRL 1.13's `bco_pair` has no running reward mean δ (the
 * paper's shift, which TRL's older trainer kept as state); we follow TRL 1.13.
 */
export function bcoPairLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.neg(tf.add(logSigmoid(tf.mul(beta, chosenRatio)), logSigmoid(tf.mul(-beta, rejectedRatio)))),
  ) as tf.Tensor1D;
}

/**
 * SPPO with hard preferences (`sppo_hard`; Wu et al. 2024, eq. 4.7 with P = 1 for the winner
 * and 0 for the loser): `(ρ_w − 1/(2β))² + (ρ_l + 1/(2β))²`.
 */
export function sppoHardLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.add(
      tf.square(tf.sub(chosenRatio, 0.5 / beta)),
      tf.square(tf.add(rejectedRatio, 0.5 / beta)),
    ),
  ) as tf.Tensor1D;
}

/**
 * `x` sorted ascending along its only axis, differentiably: the sort permutation is found
 * off the tape (ranks from pairwise comparisons, ties broken by index) and applied as a 0/1
 * matrix product, so the gradient flows back to the element that landed in each slot (as
 * `torch.sort`'s does).
 */
export function sortAscending(x: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const perm = detach(() => {
      const col = tf.reshape(x, [n, 1]);
      const row = tf.reshape(x, [1, n]);
      // before[i, j] = 1 if x_j sorts before x_i: x_j < x_i, or x_j = x_i and j < i
      const lower = tf.cast(tf.linalg.bandPart(tf.ones([n, n]), -1, 0), 'bool');
      const strictlyLower = tf.logicalAnd(lower, tf.logicalNot(tf.cast(tf.eye(n), 'bool')));
      const before = tf.logicalOr(
        tf.less(row, col),
        tf.logicalAnd(tf.equal(row, col), strictlyLower),
      );
      const rank = tf.sum(tf.cast(before, 'int32'), 1); // [n]: slot of element i
      // P[r, i] = 1 if element i goes to slot r
      return tf.cast(
        tf.equal(tf.reshape(tf.range(0, n, 1, 'int32'), [n, 1]), tf.reshape(rank, [1, n])),
        'float32',
      );
    });
    return tf.reshape(tf.matMul(perm, tf.reshape(x, [n, 1])), [n]) as tf.Tensor1D;
  });
}

/** `−(1−ε)·logσ(βd) − ε·logσ(−βd)`, the smoothed sigmoid loss AOT applies to sorted margins. */
function smoothedSigmoid(d: tf.Tensor1D, beta: number, epsilon: number): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.mul(beta, d);
    return tf.neg(
      tf.add(tf.mul(1 - epsilon, logSigmoid(z)), tf.mul(epsilon, logSigmoid(tf.neg(z)))),
    );
  }) as tf.Tensor1D;
}

/**
 * AOT, paired (`aot`; Melnyk et al. 2024, "Distributional Preference Alignment of LLMs via
 * Optimal Transport"): the batch's policy margins m = logpθ(y_w) − logpθ(y_l) and reference
 * margins m_ref are each sorted, d = sort(m) − sort(m_ref), and the smoothed sigmoid loss is
 * applied to every d: `−(1−ε)·logσ(βd) − ε·logσ(−βd)`. A batch-level loss: row i of the
 * result belongs to the i-th smallest margin, not to example i.
 */
export function aotLosses(
  policyChosen: tf.Tensor1D,
  policyRejected: tf.Tensor1D,
  refChosen: tf.Tensor1D,
  refRejected: tf.Tensor1D,
  beta: number,
  epsilon: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const d = tf.sub(
      sortAscending(tf.sub(policyChosen, policyRejected) as tf.Tensor1D),
      sortAscending(tf.sub(refChosen, refRejected) as tf.Tensor1D),
    ) as tf.Tensor1D;
    return smoothedSigmoid(d, beta, epsilon);
  }) as tf.Tensor1D;
}

/**
 * AOT, unpaired (`aot_unpaired`; Melnyk et al. 2024): d = sort(ρ_w) − sort(ρ_l), the chosen
 * and rejected log-ratios sorted separately, then `−(1−ε)·logσ(βd) − ε·logσ(−βd)`.
 */
export function aotUnpairedLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
  epsilon: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    smoothedSigmoid(
      tf.sub(sortAscending(chosenRatio), sortAscending(rejectedRatio)) as tf.Tensor1D,
      beta,
      epsilon,
    ),
  ) as tf.Tensor1D;
}

/**
 * APO-zero (`apo_zero`; D'Oosterlinck et al. 2024, "Anchored Preference Optimization", eq. 7):
 * raise the chosen likelihood and lower the rejected one, `(1 − σ(βρ_w)) + σ(βρ_l)`.
 */
export function apoZeroLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.add(
      tf.sub(1, tf.sigmoid(tf.mul(beta, chosenRatio))),
      tf.sigmoid(tf.mul(beta, rejectedRatio)),
    ),
  ) as tf.Tensor1D;
}

/**
 * APO-down (`apo_down`; D'Oosterlinck et al. 2024, eq. 8): lower both, the rejected more,
 * `σ(βρ_w) + (1 − σ(β(ρ_w − ρ_l)))`.
 */
export function apoDownLosses(
  chosenRatio: tf.Tensor1D,
  rejectedRatio: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() =>
    tf.add(
      tf.sigmoid(tf.mul(beta, chosenRatio)),
      tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(chosenRatio, rejectedRatio)))),
    ),
  ) as tf.Tensor1D;
}

/**
 * DiscoPOP (`discopop`; Chris Lu et al. 2024, "Discovering Preference Optimization Algorithms
 * with and for LLMs", eq. 5), the log-ratio modulated loss with z = βΔ and m = σ(z/τ):
 * `(1 − m)·(−logσ(z)) + m·e^{−z}`.
 */
export function discopopLosses(delta: tf.Tensor1D, beta: number, tau: number): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.mul(beta, delta);
    const zt = tf.div(z, tau);
    // m·e^{−z} = exp(logσ(z/τ) − z): no overflow for very negative z when τ < 1 (the
    // product's true value is tiny there); capped at e^80 like the f-divergence scores.
    const expPart = tf.exp(tf.minimum(tf.sub(logSigmoid(zt), z), EXP_CAP));
    return tf.add(tf.mul(tf.sigmoid(tf.neg(zt)), tf.neg(logSigmoid(z))), expPart);
  }) as tf.Tensor1D;
}

/**
 * SFT / NLL on the chosen responses (`sft`): TRL's cross-entropy over every chosen response
 * token of the batch, `−Σ_i logpθ(y_w,i) / Σ_i |y_w,i|` (a token mean over the batch, not a
 * mean of per-sequence means). Returns the scalar; TRL spreads it over the rows unchanged.
 */
export function sftLoss(chosenLogps: tf.Tensor1D, chosenLengths: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.div(tf.sum(chosenLogps), tf.sum(chosenLengths)))) as tf.Scalar;
}

/**
 * WPO weights (`use_weighting`; Zhou et al. 2024, "WPO: Enhancing RLHF with Weighted
 * Preference Optimization", eq. 2 in TRL's form): `w = exp(a_w)·exp(a_l)` per pair, where a is
 * a response's mean over tokens of `log p(y_t) − log Σ_v p(v)²` (its `chosenWpoLogps` /
 * `rejectedWpoLogps` input, computed by the policy forward without gradient).
 */
export function wpoWeights(
  chosenWpoLogps: tf.Tensor1D,
  rejectedWpoLogps: tf.Tensor1D,
): tf.Tensor1D {
  return tf.tidy(() => tf.exp(tf.add(chosenWpoLogps, rejectedWpoLogps))) as tf.Tensor1D;
}

/**
 * `log(1 − e^x)` for x < 0, stable both near 0 (`log(−expm1(x))`) and far below
 * (`log1p(−e^x)`), switching at −log 2 (Mächler 2012). x is capped at −1e-12 so a mean
 * log-prob of exactly 0 (probability 1 in float32) gives a large finite value, not −∞.
 */
export function log1mexp(x: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const c = tf.minimum(x, -1e-12);
    return tf.where(
      detach(() => tf.greater(c, -Math.LN2)),
      tf.log(tf.neg(tf.expm1(c))),
      tf.log1p(tf.neg(tf.exp(c))),
    );
  }) as tf.Tensor1D;
}

/**
 * ORPO's odds-ratio term (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without
 * Reference Model", eqs. 4 and 7) on mean token log-probs m = logpθ(y)/|y|:
 * log-odds `ℓ = (m_w − m_l) − (log(1−e^{m_w}) − log(1−e^{m_l}))`, term `logσ(ℓ)` (the loss
 * subtracts β times its mean from the chosen NLL).
 */
export function orpoLogOdds(chosenMean: tf.Tensor1D, rejectedMean: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() =>
    tf.sub(tf.sub(chosenMean, rejectedMean), tf.sub(log1mexp(chosenMean), log1mexp(rejectedMean))),
  ) as tf.Tensor1D;
}
