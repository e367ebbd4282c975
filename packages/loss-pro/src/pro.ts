import {
  bernoulliKL,
  type ConfigReader,
  computeLoss,
  hostValues,
  logSigmoid,
  type MultiInputs,
  meanWhere,
  type Objective,
  type PairwiseInputs,
  type PointwiseInputs,
  parseWith,
  requireInput,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

export type ProFeedback = 'pairwise' | 'binary' | 'scalar';

export interface ProConfig {
  feedback: ProFeedback;
  /** β > 0, default 0.1 */
  beta: number;
  /** PRO-P regularizer strength α; default 2.25 so that α(1−ε)² = 1 with ε = ⅓ */
  alpha: number;
  /** PRO-P hyper-response share ε ∈ [0, 1); default ⅓ */
  epsilon: number;
  /** PRO-B / PRO-S regularizer weight λ; default 2.5 */
  lambda: number;
  /** PRO-B: the dataset's desirable fraction b̄ ∈ (0, 1); default ½ */
  desirableFraction: number;
  /** PRO-B: weight of desirable rows (imbalanced data, Appendix G); default 1 */
  desirableWeight: number;
  /** PRO-B: weight of undesirable rows; default 1 */
  undesirableWeight: number;
  /** PRO-S: declared [low, high] of raw scores, mapped to [0, 1]; default [0, 1] */
  scoreRange: [number, number];
}

/** p̃ = ½ + 1/(2α(1−ε)²) and c = 2ε/(1−ε) of PRO-P. */
export function proPairwiseConstants(
  alpha: number,
  epsilon: number,
): { pTilde: number; c: number } {
  return { pTilde: 0.5 + 1 / (2 * alpha * (1 - epsilon) ** 2), c: (2 * epsilon) / (1 - epsilon) };
}

function read(r: ConfigReader): ProConfig {
  const feedback = r.oneOf('feedback', 'pairwise', ['pairwise', 'binary', 'scalar'] as const);
  const beta = r.number('beta', 0.1, { gt: 0 });
  const epsilon = r.number('epsilon', 1 / 3, { min: 0, lt: 1 });
  const alpha = r.number('alpha', 1 / (1 - epsilon) ** 2, { gt: 0 });
  if (feedback === 'pairwise' && alpha * (1 - epsilon) ** 2 < 1 - 1e-12) {
    r.fail(
      'alpha',
      `violates the PRO-P existence bound α(1−ε)² ≥ 1: α(1−ε)² = ${alpha * (1 - epsilon) ** 2} with alpha ${alpha}, epsilon ${epsilon} (need alpha ≥ ${1 / (1 - epsilon) ** 2})`,
    );
  }
  const lambda = r.number('lambda', 2.5, { gt: 0 });
  const desirableFraction = r.number('desirableFraction', 0.5, { gt: 0, lt: 1 });
  if (feedback === 'binary') {
    const bound = 2 * Math.max(desirableFraction, 1 - desirableFraction);
    if (!(lambda > bound)) {
      r.fail(
        'lambda',
        `violates the PRO-B existence bound λ > 2·max|b − b̄| = ${bound} (desirableFraction ${desirableFraction}), got ${lambda}`,
      );
    }
  }
  const desirableWeight = r.number('desirableWeight', 1, { gt: 0 });
  const undesirableWeight = r.number('undesirableWeight', 1, { gt: 0 });
  const scoreRange = r.range('scoreRange', [0, 1])!;
  return {
    feedback,
    beta,
    alpha,
    epsilon,
    lambda,
    desirableFraction,
    desirableWeight,
    undesirableWeight,
    scoreRange,
  };
}

export type ProTerms = {
  /** [B] per-example losses */
  losses: tf.Tensor1D;
  /** [B] the optimizer (label-dependent) part */
  optimizer: tf.Tensor1D;
  /** [B] the regularizer (label-free) part */
  regularizer: tf.Tensor1D;
};

/**
 * PRO-P: `−[p̃·logσ(βΔ) + (1−p̃)·logσ(−βΔ)] + c·(K(βρ_w) + K(βρ_l))` with
 * `p̃ = ½ + 1/(2α(1−ε)²)`, `c = 2ε/(1−ε)`. Defaults give `−logσ(βΔ) + K(βρ_w) + K(βρ_l)`.
 */
export function proPairwiseTerms(p: PairwiseInputs, c: Readonly<ProConfig>): ProTerms {
  const refW = requireInput('pro', 'refChosenLogps', p.refChosenLogps, 'reference log-probs');
  const refL = requireInput('pro', 'refRejectedLogps', p.refRejectedLogps, 'reference log-probs');
  const { pTilde, c: k } = proPairwiseConstants(c.alpha, c.epsilon);
  return tf.tidy(() => {
    const rw = tf.mul(c.beta, tf.sub(p.policyChosenLogps, refW));
    const rl = tf.mul(c.beta, tf.sub(p.policyRejectedLogps, refL));
    const d = tf.sub(rw, rl);
    const optimizer = tf.neg(
      tf.add(tf.mul(pTilde, logSigmoid(d)), tf.mul(1 - pTilde, logSigmoid(tf.neg(d)))),
    );
    const regularizer = tf.mul(k, tf.add(bernoulliKL(rw), bernoulliKL(rl)));
    return { losses: tf.add(optimizer, regularizer), optimizer, regularizer } as ProTerms;
  });
}

function labelsOf(p: PointwiseInputs): tf.Tensor1D {
  const labels = requireInput('pro', 'labels', p.labels, '1 desirable / 0 undesirable per row');
  hostValues(labels).forEach((v, i) => {
    if (v !== 0 && v !== 1) throw new Error(`pro: input 'labels' must be 0 or 1, row ${i} is ${v}`);
  });
  return labels;
}

/**
 * PRO-B: `w_b·[−(b − b̄)·βρ + λ·K(βρ)]`, `b` the row's label, `b̄` the dataset's desirable
 * fraction, `w_b` the desirable / undesirable weight. At the optimum `σ(βρ*) = ½ + (b − b̄)/λ`.
 */
export function proBinaryTerms(p: PointwiseInputs, c: Readonly<ProConfig>): ProTerms {
  const ref = requireInput('pro', 'refLogps', p.refLogps, 'reference log-probs');
  const labels = labelsOf(p);
  return tf.tidy(() => {
    const r = tf.mul(c.beta, tf.sub(p.policyLogps, ref));
    const w = tf.add(
      tf.mul(labels, c.desirableWeight),
      tf.mul(tf.sub(1, labels), c.undesirableWeight),
    );
    const optimizer = tf.mul(w, tf.neg(tf.mul(tf.sub(labels, c.desirableFraction), r)));
    const regularizer = tf.mul(w, tf.mul(c.lambda, bernoulliKL(r)));
    return { losses: tf.add(optimizer, regularizer), optimizer, regularizer } as ProTerms;
  });
}

/** Host-side: centered scores ŝ per prompt, with the existence bound checked. */
function centeredScores(p: MultiInputs, c: Readonly<ProConfig>): Float32Array {
  const [B, K] = p.scores.shape;
  const raw = hostValues(p.scores);
  const mask = hostValues(p.mask);
  const [lo, hi] = c.scoreRange;
  const out = new Float32Array(B * K);
  for (let i = 0; i < B; i++) {
    const f: number[] = [];
    const slots: number[] = [];
    for (let k = 0; k < K; k++) {
      const m = mask[i * K + k]!;
      if (m !== 0 && m !== 1)
        throw new Error(`pro: input 'mask' must be 0 or 1, [${i}, ${k}] is ${m}`);
      if (!m) continue;
      const s = raw[i * K + k]!;
      if (!(s >= lo && s <= hi)) {
        throw new Error(
          `pro: score ${s} at [${i}, ${k}] is outside the declared scoreRange [${lo}, ${hi}]`,
        );
      }
      f.push((s - lo) / (hi - lo));
      slots.push(k);
    }
    const N = f.length;
    if (N === 0) throw new Error(`pro: prompt ${i} has no responses (mask row is all 0)`);
    const mean = f.reduce((a, b) => a + b, 0) / N;
    const sh = f.map((v) => v - mean);
    // Existence (objectives.md): |Σ_{i∈S} ŝ_i| < λ|S|(N+1−|S|)/(N+1) for every non-empty S.
    // For a given |S| = m the largest |Σ| is the m largest or the m smallest ŝ.
    const sorted = [...sh].sort((a, b) => b - a);
    let top = 0;
    let bottom = 0;
    for (let m = 1; m <= N; m++) {
      top += sorted[m - 1]!;
      bottom += sorted[N - m]!;
      const worst = Math.max(Math.abs(top), Math.abs(bottom));
      const bound = (c.lambda * m * (N + 1 - m)) / (N + 1);
      if (!(worst < bound - 1e-9) && worst > 1e-9) {
        throw new Error(
          `pro: λ = ${c.lambda} violates the PRO-S existence bound for prompt ${i}: |Σ_{i∈S} ŝ_i| = ${worst.toFixed(4)} ≥ λ|S|(N+1−|S|)/(N+1) = ${bound.toFixed(4)} with |S| = ${m}, N = ${N} (λ > 2·max|ŝ| always suffices)`,
        );
      }
    }
    slots.forEach((k, n) => {
      out[i * K + k] = sh[n]!;
    });
  }
  return out;
}

/**
 * PRO-S on N responses per prompt with scores mapped to [0, 1], ŝ_j = f_j − mean_k f_k,
 * the hyper response as index 0 with r_0 = 0 and r_j = βρ_j:
 * `−(1/N)Σ_j ŝ_j·r_j + (2λ/(N(N+1)))·Σ_{0≤i<j≤N} K(r_i − r_j)`.
 */
export function proScalarTerms(p: MultiInputs, c: Readonly<ProConfig>): ProTerms {
  const sHat = centeredScores(p, c);
  const [B, K] = p.scores.shape;
  return tf.tidy(() => {
    const mask = p.mask;
    const n = tf.sum(mask, 1);
    const r = tf.mul(tf.mul(c.beta, tf.sub(p.policyLogps, p.refLogps)), mask);
    const optimizer = tf.neg(tf.div(tf.sum(tf.mul(tf.tensor2d(sHat, [B, K]), r), 1), n));
    // Pairs with the hyper response: K(r_j − 0); pairs among responses: K(r_i − r_j), i < j.
    const hyper = tf.sum(tf.mul(bernoulliKL(r), mask), 1);
    const diff = tf.sub(tf.expandDims(r, 2), tf.expandDims(r, 1));
    const pairMask = tf.mul(
      tf.mul(tf.expandDims(mask, 2), tf.expandDims(mask, 1)),
      tf.tensor2d(upperTriangle(K), [K, K]),
    );
    const among = tf.sum(tf.mul(bernoulliKL(diff), pairMask), [1, 2]);
    const regularizer = tf.mul(tf.div(2 * c.lambda, tf.mul(n, tf.add(n, 1))), tf.add(hyper, among));
    return { losses: tf.add(optimizer, regularizer), optimizer, regularizer } as ProTerms;
  });
}

function upperTriangle(K: number): Float32Array {
  const m = new Float32Array(K * K);
  for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) m[i * K + j] = 1;
  return m;
}

export const PRO_METRICS = [
  'pro/optimizer',
  'pro/regularizer',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'rewards/accuracies',
  'rewards/mean',
] as const;

/** `pro`: PRO-P, PRO-B or PRO-S (pro.txt; formulas in objectives.md "loss-pro"). */
export const proObjective: Objective<ProConfig> = Object.freeze<Objective<ProConfig>>({
  name: 'pro',
  description:
    'PRO: proximalized preference optimization with a hyper response (pairwise, binary, scalar feedback)',
  feedback: ['pairwise', 'binary', 'multi'],
  metricNames: PRO_METRICS,
  parseConfig: (raw) => parseWith('pro', raw, read),
  feedbackFor: (c) =>
    c.feedback === 'pairwise'
      ? ['pairwise']
      : c.feedback === 'binary'
        ? ['binary']
        : ['multi', 'score'],
  needs: (c) => ({
    inputs:
      c.feedback === 'pairwise' ? 'pairwise' : c.feedback === 'binary' ? 'pointwise' : 'multi',
    reference: true,
    promptLogps: false,
    rewards: c.feedback === 'scalar',
    mismatchedPairs: false,
  }),
  loss(inputs, c) {
    if (c.feedback === 'pairwise') {
      return computeLoss('pro', inputs, 'pairwise', (p) => {
        const t = proPairwiseTerms(p, c);
        const rw = stopGradient(tf.mul(c.beta, tf.sub(p.policyChosenLogps, p.refChosenLogps!)));
        const rl = stopGradient(tf.mul(c.beta, tf.sub(p.policyRejectedLogps, p.refRejectedLogps!)));
        return {
          loss: tf.mean(t.losses) as tf.Scalar,
          metrics: {
            'pro/optimizer': t.optimizer,
            'pro/regularizer': t.regularizer,
            'rewards/chosen': rw,
            'rewards/rejected': rl,
            'rewards/margins': tf.sub(rw, rl),
            'rewards/accuracies': tf.cast(tf.greater(rw, rl), 'float32'),
          },
        };
      });
    }
    if (c.feedback === 'binary') {
      return computeLoss('pro', inputs, 'pointwise', (p) => {
        const t = proBinaryTerms(p, c);
        const r = stopGradient(tf.mul(c.beta, tf.sub(p.policyLogps, p.refLogps!)));
        const chosen = meanWhere(r, p.labels!);
        const rejected = meanWhere(r, tf.sub(1, p.labels!));
        return {
          loss: tf.mean(t.losses) as tf.Scalar,
          metrics: {
            'pro/optimizer': t.optimizer,
            'pro/regularizer': t.regularizer,
            'rewards/chosen': chosen,
            'rewards/rejected': rejected,
            'rewards/margins': tf.sub(chosen, rejected),
          },
        };
      });
    }
    return computeLoss('pro', inputs, 'multi', (p) => {
      const t = proScalarTerms(p, c);
      const r = stopGradient(tf.mul(c.beta, tf.sub(p.policyLogps, p.refLogps)));
      return {
        loss: tf.mean(t.losses) as tf.Scalar,
        metrics: {
          'pro/optimizer': t.optimizer,
          'pro/regularizer': t.regularizer,
          'rewards/mean': meanWhere(r, p.mask),
        },
      };
    });
  },
});
