import {
  type ConfigReader,
  computeLoss,
  detach,
  logSigmoid,
  meanLogps,
  type Objective,
  PAIRWISE_METRIC_NAMES,
  type PairwiseInputs,
  pairwiseMetricTensors,
  parseWith,
  requireInput,
  requirePositive,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

export type CnllMode = 'indicator' | 'sign';

export interface UniDpoConfig {
  /** β > 0, default 2.0 (Table C.1) */
  beta: number;
  /** η > 0, quality-weight sharpness, default 0.7 */
  eta: number;
  /** γ ≥ 0, focal exponent of w_perf, default 3 */
  gamma: number;
  /** λ ≥ 0, calibrated-NLL weight, default 0.001 */
  lambda: number;
  /** τ_good, score threshold on the data's own scale, default 3.2 */
  tauGood: number;
  /** τ_ref, the performance margin in w_perf, default 1.0 */
  tauRef: number;
  /** `indicator` (eq. 11 and the official code, default) or `sign` (Algorithm 1's literal pseudo-code) */
  cnllMode: CnllMode;
}

export const UNIDPO_DEFAULTS: Readonly<UniDpoConfig> = Object.freeze({
  beta: 2.0,
  eta: 0.7,
  gamma: 3,
  lambda: 0.001,
  tauGood: 3.2,
  tauRef: 1.0,
  cnllMode: 'indicator',
});

export interface UniDpoTerms {
  /** [B] per-example losses */
  losses: tf.Tensor1D;
  /** [B] σ(η(S_w − S_l)), data only */
  wQual: tf.Tensor1D;
  /** [B] (1 − σ(β(m_θ(y_w) − m_θ(y_l)) − τ_ref))^γ, differentiable */
  wPerf: tf.Tensor1D;
  /** [B] the c-NLL gate (1/0 for `indicator`, −1/0/1 for `sign`), detached */
  cnllGate: tf.Tensor1D;
  /** [B] implicit rewards β·(m_θ − m_ref) of chosen and rejected, for metrics */
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
}

/**
 * Uni-DPO (uni-dpo.txt eqs. 4, 5, 10, 11; objectives.md "loss-unidpo"). With mean token
 * log-probs `m = logp/len`:
 * ```
 * Δ_r    = β·[(m_θ(y_w) − m_θ(y_l)) − (m_ref(y_w) − m_ref(y_l))]
 * w_qual = σ(η·(S_w − S_l))
 * w_perf = (1 − σ(β·(m_θ(y_w) − m_θ(y_l)) − τ_ref))^γ          (gradient flows)
 * cnll   = λ · 1[logp_ref(y_w) > logp_θ(y_w)] · 1[S_w ≥ τ_good] · (−m_θ(y_w))
 * loss_i = −w_qual·w_perf·logσ(Δ_r) + cnll
 * ```
 * `cnllMode: 'sign'` replaces the first indicator with `sign(logp_ref − logp_θ)`, as
 * Algorithm 1's pseudo-code reads literally (−1 when the policy already beats the
 * reference); the authors' code clamps it at 0, i.e. the default indicator.
 */
export function unidpoTerms(
  p: PairwiseInputs,
  c: Readonly<UniDpoConfig>,
  objective = 'unidpo',
): UniDpoTerms {
  const refW = requireInput(objective, 'refChosenLogps', p.refChosenLogps, 'reference log-probs');
  const refL = requireInput(
    objective,
    'refRejectedLogps',
    p.refRejectedLogps,
    'reference log-probs',
  );
  const sW = requireInput(
    objective,
    'chosenScores',
    p.chosenScores,
    'Uni-DPO weights pairs by data quality scores; a missing score is not zero',
  );
  const sL = requireInput(
    objective,
    'rejectedScores',
    p.rejectedScores,
    'Uni-DPO weights pairs by data quality scores; a missing score is not zero',
  );
  requirePositive(objective, 'chosenLengths', p.chosenLengths);
  requirePositive(objective, 'rejectedLengths', p.rejectedLengths);
  return tf.tidy(() => {
    const mW = meanLogps(p.policyChosenLogps, p.chosenLengths);
    const mL = meanLogps(p.policyRejectedLogps, p.rejectedLengths);
    const mRefW = meanLogps(refW, p.chosenLengths);
    const mRefL = meanLogps(refL, p.rejectedLengths);
    const policyGap = tf.sub(mW, mL);
    const deltaR = tf.mul(c.beta, tf.sub(policyGap, tf.sub(mRefW, mRefL)));
    const wQual = stopGradient(tf.sigmoid(tf.mul(c.eta, tf.sub(sW, sL))));
    // (1 − σ(z))^γ = exp(γ·logσ(−z)): no 0^(γ−1) in the gradient, no underflow to 0 at large z.
    const wPerf = tf.exp(
      tf.mul(c.gamma, logSigmoid(tf.neg(tf.sub(tf.mul(c.beta, policyGap), c.tauRef)))),
    );
    const gate = detach(() => {
      const good = tf.cast(tf.greaterEqual(sW, c.tauGood), 'float32');
      const refAhead = tf.sub(refW, p.policyChosenLogps);
      return tf.mul(
        c.cnllMode === 'sign' ? tf.sign(refAhead) : tf.cast(tf.greater(refAhead, 0), 'float32'),
        good,
      );
    });
    const cnll = tf.mul(c.lambda, tf.mul(gate, tf.neg(mW)));
    const losses = tf.add(
      tf.neg(tf.mul(tf.mul(wQual, wPerf), logSigmoid(deltaR))),
      cnll,
    ) as tf.Tensor1D;
    return {
      losses,
      wQual: wQual as tf.Tensor1D,
      wPerf: wPerf as tf.Tensor1D,
      cnllGate: gate as tf.Tensor1D,
      chosenRewards: stopGradient(tf.mul(c.beta, tf.sub(mW, mRefW))) as tf.Tensor1D,
      rejectedRewards: stopGradient(tf.mul(c.beta, tf.sub(mL, mRefL))) as tf.Tensor1D,
    };
  });
}

export const UNIDPO_METRICS = [
  ...PAIRWISE_METRIC_NAMES,
  'unidpo/w_qual',
  'unidpo/w_perf',
  'unidpo/cnll_active',
] as const;

function read(r: ConfigReader): UniDpoConfig {
  const d = UNIDPO_DEFAULTS;
  return {
    beta: r.number('beta', d.beta, { gt: 0 }),
    eta: r.number('eta', d.eta, { gt: 0 }),
    gamma: r.number('gamma', d.gamma, { min: 0 }),
    lambda: r.number('lambda', d.lambda, { min: 0 }),
    tauGood: r.number('tauGood', d.tauGood),
    tauRef: r.number('tauRef', d.tauRef),
    cnllMode: r.oneOf('cnllMode', d.cnllMode, ['indicator', 'sign'] as const),
  };
}

/** `unidpo`: Uni-DPO on pairwise data with `chosenScores` / `rejectedScores`. */
export const unidpoObjective: Objective<UniDpoConfig> = Object.freeze<Objective<UniDpoConfig>>({
  name: 'unidpo',
  description:
    'Uni-DPO: quality- and performance-weighted length-normalized DPO with calibrated NLL (uni-dpo.txt)',
  feedback: ['pairwise'],
  metricNames: UNIDPO_METRICS,
  parseConfig: (raw) => parseWith('unidpo', raw, read),
  feedbackFor: () => ['pairwise'],
  needs: () => ({
    inputs: 'pairwise',
    reference: true,
    promptLogps: false,
    rewards: true,
    mismatchedPairs: false,
  }),
  loss(inputs, c) {
    return computeLoss('unidpo', inputs, 'pairwise', (p) => {
      const t = unidpoTerms(p, c);
      return {
        loss: tf.mean(t.losses) as tf.Scalar,
        metrics: {
          ...pairwiseMetricTensors(
            t.chosenRewards,
            t.rejectedRewards,
            p.policyChosenLogps,
            p.policyRejectedLogps,
          ),
          'unidpo/w_qual': t.wQual,
          'unidpo/w_perf': t.wPerf,
          'unidpo/cnll_active': tf.cast(tf.notEqual(t.cnllGate, 0), 'float32'),
        },
      };
    });
  },
});
