import {
  type ConfigReader,
  computeLoss,
  desirabilityMetrics,
  detach,
  hostValues,
  type LossOutput,
  logSigmoid,
  type Objective,
  PAIRWISE_METRIC_NAMES,
  type PairwiseInputs,
  type PointwiseInputs,
  pairwiseMetricTensors,
  parseWith,
  requireInput,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { normalizeScore, type ScoreNormalizer } from './normalize.js';

export type UnaFeedback = 'pairwise' | 'binary' | 'score' | 'mixed';
export type UnaLossFn = 'bce' | 'mse';
export type ImplicitNormalizer = 'sigmoid' | 'identity';

export interface UnaConfig {
  feedback: UnaFeedback;
  /** β > 0; default by feedback: pairwise 0.1, binary 0.01, score and mixed 0.03 (paper) */
  beta: number;
  /** loss on binary rows: `bce` (default) or `mse`; score rows always use `mse` */
  lossFn: UnaLossFn;
  /** n(r_θ): `sigmoid` (default) or `identity` */
  implicitNormalizer: ImplicitNormalizer;
  /** explicit-score normalizer: `minmax` (default), `zscore`, `none` */
  scoreNormalizer: ScoreNormalizer;
  /** raw score range for `minmax` */
  scoreRange?: [number, number];
  /** dataset statistics for `zscore` */
  scoreMean?: number;
  scoreStd?: number;
  /** per-kind weights for mixed batches (default 1 each) */
  weights: { binary: number; score: number };
}

const DEFAULT_BETA: Record<UnaFeedback, number> = {
  pairwise: 0.1,
  binary: 0.01,
  score: 0.03,
  mixed: 0.03,
};

function read(r: ConfigReader): UnaConfig {
  const feedback = r.oneOf('feedback', 'score', ['pairwise', 'binary', 'score', 'mixed'] as const);
  const beta = r.number('beta', DEFAULT_BETA[feedback], { gt: 0 });
  const lossFn = r.oneOf('lossFn', feedback === 'binary' || feedback === 'mixed' ? 'bce' : 'mse', [
    'bce',
    'mse',
  ] as const);
  if (feedback === 'score' && lossFn === 'bce') {
    r.fail(
      'lossFn',
      "'bce' is not allowed with feedback 'score': BCE needs binary targets (UNA section 3.1.1); use 'mse'",
    );
  }
  const implicitNormalizer = r.oneOf('implicitNormalizer', 'sigmoid', [
    'sigmoid',
    'identity',
  ] as const);
  if (lossFn === 'bce' && implicitNormalizer !== 'sigmoid' && feedback !== 'pairwise') {
    r.fail('implicitNormalizer', "must be 'sigmoid' with lossFn 'bce' (BCE reads r_θ as a logit)");
  }
  const scoreNormalizer = r.oneOf('scoreNormalizer', 'minmax', [
    'minmax',
    'zscore',
    'none',
  ] as const);
  const usesScores = feedback === 'score' || feedback === 'mixed';
  const scoreRange = r.range('scoreRange', undefined);
  const scoreMean = r.optionalNumber('scoreMean');
  const scoreStd = r.optionalNumber('scoreStd', { gt: 0 });
  if (usesScores && scoreNormalizer === 'minmax' && !scoreRange) {
    r.fail(
      'scoreRange',
      "is required with scoreNormalizer 'minmax' (the declared [low, high] of raw scores, e.g. [0, 10])",
    );
  }
  if (
    usesScores &&
    scoreNormalizer === 'zscore' &&
    (scoreMean === undefined || scoreStd === undefined)
  ) {
    r.fail(
      scoreMean === undefined ? 'scoreMean' : 'scoreStd',
      "is required with scoreNormalizer 'zscore' (dataset statistics: see scoreStatistics)",
    );
  }
  const weights = r.nested('weights', (w) => ({
    binary: w.number('binary', 1, { min: 0 }),
    score: w.number('score', 1, { min: 0 }),
  }));
  return {
    feedback,
    beta,
    lossFn,
    implicitNormalizer,
    scoreNormalizer,
    scoreRange,
    scoreMean,
    scoreStd,
    weights,
  };
}

/** UNA pairwise: identical to DPO's sigmoid loss `−logσ(β(ρ_w − ρ_l))`. Returns `[B]`. */
export function unaPairwiseLosses(p: PairwiseInputs, beta: number): tf.Tensor1D {
  const refW = requireInput('una', 'refChosenLogps', p.refChosenLogps, 'reference log-probs');
  const refL = requireInput('una', 'refRejectedLogps', p.refRejectedLogps, 'reference log-probs');
  return tf.tidy(() =>
    tf.neg(
      logSigmoid(
        tf.mul(
          beta,
          tf.sub(tf.sub(p.policyChosenLogps, refW), tf.sub(p.policyRejectedLogps, refL)),
        ),
      ),
    ),
  ) as tf.Tensor1D;
}

/** Reads a `[B]` tensor's values and checks every entry is 0 or 1. */
function binaryValues(field: string, t: tf.Tensor1D): Float32Array {
  const v = hostValues(t) as Float32Array;
  v.forEach((x, i) => {
    if (x !== 0 && x !== 1)
      throw new Error(`una: input '${field}' must be 0 or 1, row ${i} is ${x}`);
  });
  return v;
}

/** Per-row targets on the implicit scale: labels for binary rows, normalized scores for score rows. */
function targetsFor(
  p: PointwiseInputs,
  c: Readonly<UnaConfig>,
  isBinary: Float32Array,
): Float32Array {
  const B = p.policyLogps.shape[0];
  const labels = isBinary.some((b) => b === 1)
    ? binaryValues(
        'labels',
        requireInput('una', 'labels', p.labels, 'binary feedback rows need labels'),
      )
    : undefined;
  const scores = isBinary.some((b) => b === 0)
    ? hostValues(requireInput('una', 'scores', p.scores, 'score feedback rows need scores'))
    : undefined;
  const out = new Float32Array(B);
  for (let i = 0; i < B; i++) {
    out[i] = isBinary[i] === 1 ? labels![i]! : normalizeScore(scores![i]!, c, `una: row ${i}`);
  }
  return out;
}

export interface UnaPointwiseTerms {
  /** [B] weighted per-row losses */
  losses: tf.Tensor1D;
  /** [B] n(r_θ), detached */
  implicit: tf.Tensor1D;
  /** [B] targets (labels or normalized scores) */
  targets: tf.Tensor1D;
  /** [B] 1 for binary rows */
  isBinary: tf.Tensor1D;
  /** [B] r_θ = βρ, detached */
  rewards: tf.Tensor1D;
}

/**
 * UNA on pointwise feedback (binary, score, or a mix row by row), r_θ = βρ:
 * - binary `bce`: `−[b·logσ(r_θ) + (1−b)·logσ(−r_θ)]`; binary `mse`: `(n(r_θ) − b)²`
 * - score: `(n(r_θ) − s)²` with s the normalized score
 * each multiplied by its kind's weight.
 */
export function unaPointwiseTerms(p: PointwiseInputs, c: Readonly<UnaConfig>): UnaPointwiseTerms {
  const ref = requireInput('una', 'refLogps', p.refLogps, 'reference log-probs');
  const B = p.policyLogps.shape[0];
  const isBinary =
    c.feedback === 'binary'
      ? new Float32Array(B).fill(1)
      : c.feedback === 'score'
        ? new Float32Array(B)
        : binaryValues(
            'isBinary',
            requireInput('una', 'isBinary', p.isBinary, "mixed feedback marks each row's kind"),
          );
  const targets = targetsFor(p, c, isBinary);
  return tf.tidy(() => {
    const r = tf.mul(c.beta, tf.sub(p.policyLogps, ref));
    const n = c.implicitNormalizer === 'sigmoid' ? tf.sigmoid(r) : r;
    const t = tf.tensor1d(targets);
    const bin = tf.tensor1d(isBinary);
    const mse = tf.square(tf.sub(n, t));
    const bce = tf.neg(
      tf.add(tf.mul(t, logSigmoid(r)), tf.mul(tf.sub(1, t), logSigmoid(tf.neg(r)))),
    );
    const binaryLoss = c.lossFn === 'bce' ? bce : mse;
    const losses = tf.add(
      tf.mul(tf.mul(bin, c.weights.binary), binaryLoss),
      tf.mul(tf.mul(tf.sub(1, bin), c.weights.score), mse),
    ) as tf.Tensor1D;
    return {
      losses,
      implicit: stopGradient(n) as tf.Tensor1D,
      targets: t,
      isBinary: bin,
      rewards: stopGradient(r) as tf.Tensor1D,
    };
  });
}

export const UNA_METRICS = [
  ...PAIRWISE_METRIC_NAMES,
  'una/implicit_mean',
  'una/target_mean',
  'una/abs_gap',
  'rewards/mean',
  'logps/policy',
] as const;

/** `una`: UNA on pairwise, binary, score or mixed feedback (una.txt section 3). */
export const unaObjective: Objective<UnaConfig> = Object.freeze<Objective<UnaConfig>>({
  name: 'una',
  description:
    'UNA: unified alignment, implicit vs explicit reward (pairwise = DPO, binary, score, mixed)',
  feedback: ['pairwise', 'binary', 'score'],
  metricNames: UNA_METRICS,
  parseConfig: (raw) => parseWith('una', raw, read),
  feedbackFor: (c) => (c.feedback === 'mixed' ? ['binary', 'score'] : [c.feedback]),
  needs: (c) => ({
    inputs: c.feedback === 'pairwise' ? 'pairwise' : 'pointwise',
    reference: true,
    promptLogps: false,
    rewards: c.feedback === 'score' || c.feedback === 'mixed',
    mismatchedPairs: false,
  }),
  loss(inputs, c) {
    if (c.feedback === 'pairwise') {
      return computeLoss('una', inputs, 'pairwise', (p) => {
        const losses = unaPairwiseLosses(p, c.beta);
        const chosen = stopGradient(tf.mul(c.beta, tf.sub(p.policyChosenLogps, p.refChosenLogps!)));
        const rejected = stopGradient(
          tf.mul(c.beta, tf.sub(p.policyRejectedLogps, p.refRejectedLogps!)),
        );
        return {
          loss: tf.mean(losses) as tf.Scalar,
          metrics: pairwiseMetricTensors(
            chosen,
            rejected,
            p.policyChosenLogps,
            p.policyRejectedLogps,
          ),
        };
      });
    }
    return computeLoss(
      'una',
      inputs,
      'pointwise',
      (
        p,
      ): {
        loss: tf.Scalar;
        metrics: Record<string, tf.Tensor>;
      } => {
        const t = unaPointwiseTerms(p, c);
        // Binary rows: "chosen" = thumbs up, "rejected" = thumbs down (0 when absent).
        const up = detach(() => tf.mul(t.isBinary, t.targets));
        const down = detach(() => tf.mul(t.isBinary, tf.sub(1, t.targets)));
        const una: Record<string, tf.Tensor> = {
          'una/implicit_mean': t.implicit,
          'una/target_mean': t.targets,
          'una/abs_gap': tf.abs(tf.sub(t.implicit, t.targets)),
        };
        const loss = tf.mean(t.losses) as tf.Scalar;
        // Score rows have no chosen/rejected split: their implicit reward and log-prob means.
        if (c.feedback === 'score')
          return {
            loss,
            metrics: { 'rewards/mean': t.rewards, 'logps/policy': p.policyLogps, ...una },
          };
        return {
          loss,
          metrics: { ...desirabilityMetrics(t.rewards, p.policyLogps, up, down), ...una },
        };
      },
    );
  },
});

/**
 * Online UNA (una.txt section 3.1.2): responses freshly sampled from the current policy,
 * scored by a reward model or function (`scores` = raw rewards), then UNA's score MSE
 * `(n(βρ) − s)²`. The sampling loop belongs to the trainer; this is the update's loss.
 * `config` is a score-feedback UNA config (paper: β = 30 online).
 */
export function onlineUnaLoss(inputs: PointwiseInputs, config: Readonly<UnaConfig>): LossOutput {
  if (config.feedback !== 'score') {
    throw new Error(
      `una online: config.feedback must be 'score' (rewards are scalar), got '${config.feedback}'`,
    );
  }
  return unaObjective.loss(inputs, config);
}
