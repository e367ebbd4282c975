import {
  type ConfigReader,
  computeLoss,
  meanLogps,
  meanWhere,
  type Objective,
  type ObjectiveNeeds,
  PAIRWISE_METRIC_NAMES,
  type PairwiseInputs,
  pairwiseMetricTensors,
  parseWith,
  requirePositive,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { ktoTerms } from './kto.js';
import {
  hingeLosses,
  ipoLosses,
  ncaPairLosses,
  pairLogRatios,
  robustLosses,
  sigmoidLosses,
  simpoLosses,
} from './pairwise.js';

export const PAIRWISE_METRICS = [...PAIRWISE_METRIC_NAMES] as const;

const NEEDS: ObjectiveNeeds = {
  inputs: 'pairwise',
  reference: true,
  promptLogps: false,
  crossPairs: false,
  rewards: false,
  lengthNormalized: false,
  mismatchedPairs: false,
};

interface PairwiseSpec<C extends object> {
  name: string;
  description: string;
  read: (r: ConfigReader) => C;
  needs?: Partial<ObjectiveNeeds>;
  /** per-example losses and the implicit rewards reported as metrics */
  terms: (
    p: PairwiseInputs,
    c: Readonly<C>,
  ) => { losses: tf.Tensor1D; chosen: tf.Tensor1D; rejected: tf.Tensor1D };
}

function pairwiseObjective<C extends object>(spec: PairwiseSpec<C>): Objective<C> {
  const needs = Object.freeze({ ...NEEDS, ...spec.needs });
  const objective: Objective<C> = {
    name: spec.name,
    description: spec.description,
    feedback: ['pairwise'] as const,
    metricNames: PAIRWISE_METRICS,
    parseConfig: (raw: unknown) => parseWith(spec.name, raw, spec.read),
    feedbackFor: () => ['pairwise'] as const,
    needs: () => needs,
    loss(inputs, config) {
      return computeLoss(spec.name, inputs, 'pairwise', (p) => {
        const t = spec.terms(p, config);
        const chosen = stopGradient(t.chosen);
        const rejected = stopGradient(t.rejected);
        return {
          loss: tf.mean(t.losses) as tf.Scalar,
          metrics: pairwiseMetricTensors(
            chosen,
            rejected,
            p.policyChosenLogps,
            p.policyRejectedLogps,
          ),
        };
      });
    },
  };
  return Object.freeze(objective);
}

const beta = (r: ConfigReader, fallback = 0.1) => r.number('beta', fallback, { gt: 0 });
const smoothing = (r: ConfigReader, fallback: number) =>
  r.number('labelSmoothing', fallback, { min: 0, lt: 0.5 });

/** Sigmoid-family terms on summed log-ratios (DPO, cDPO, robust, hinge). */
function sumRatioTerms(
  name: string,
  p: PairwiseInputs,
  b: number,
  losses: (delta: tf.Tensor1D) => tf.Tensor1D,
) {
  const { chosen, rejected } = pairLogRatios(name, p, 'sum');
  return {
    losses: losses(tf.sub(chosen, rejected)),
    chosen: tf.mul(b, chosen),
    rejected: tf.mul(b, rejected),
  } as {
    losses: tf.Tensor1D;
    chosen: tf.Tensor1D;
    rejected: tf.Tensor1D;
  };
}

export interface DpoConfig {
  /** β > 0, default 0.1 */
  beta: number;
  /** ε ∈ [0, 0.5), default 0 (plain DPO) */
  labelSmoothing: number;
}

/** `dpo`: `−(1−ε)·logσ(βΔ) − ε·logσ(−βΔ)`; ε = 0 by default. */
export const dpoObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'dpo',
  description: 'DPO (sigmoid loss on the implicit reward margin), Rafailov et al. 2023',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0) }),
  terms: (p, c) =>
    sumRatioTerms('dpo', p, c.beta, (d) => sigmoidLosses(d, c.beta, c.labelSmoothing)),
});

/** `cdpo`: conservative DPO, DPO with label smoothing ε (default 0.1). */
export const cdpoObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'cdpo',
  description: 'conservative DPO: DPO with label smoothing ε (Mitchell 2023)',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0.1) }),
  terms: (p, c) =>
    sumRatioTerms('cdpo', p, c.beta, (d) => sigmoidLosses(d, c.beta, c.labelSmoothing)),
});

/** `robust`: `[−(1−ε)logσ(βΔ) + ε·logσ(−βΔ)]/(1−2ε)` (default ε 0.1). */
export const robustObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'robust',
  description: 'robust DPO, unbiased under label-flip noise ε (Chowdhury et al. 2024)',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0.1) }),
  terms: (p, c) =>
    sumRatioTerms('robust', p, c.beta, (d) => robustLosses(d, c.beta, c.labelSmoothing)),
});

export interface BetaConfig {
  /** β > 0, default 0.1 */
  beta: number;
}

/** `hinge`: `max(0, 1 − βΔ)`. */
export const hingeObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'hinge',
  description: 'hinge loss on the log-ratio margin (SLiC, Zhao et al. 2023)',
  read: (r) => ({ beta: beta(r) }),
  terms: (p, c) => sumRatioTerms('hinge', p, c.beta, (d) => hingeLosses(d, c.beta)),
});

/** `ipo`: `(Δ̄ − 1/(2τ))²`, τ = β, Δ̄ from mean token log-probs. */
export const ipoObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'ipo',
  description: 'IPO: squared loss on the length-normalized log-ratio margin (Azar et al. 2023)',
  read: (r) => ({ beta: beta(r) }),
  needs: { lengthNormalized: true },
  terms: (p, c) => {
    const { chosen, rejected } = pairLogRatios('ipo', p, 'mean');
    return {
      losses: ipoLosses(tf.sub(chosen, rejected), c.beta),
      chosen: tf.mul(c.beta, chosen),
      rejected: tf.mul(c.beta, rejected),
    };
  },
});

/** `nca_pair`: `−logσ(βρ_w) − ½logσ(−βρ_w) − ½logσ(−βρ_l)`. */
export const ncaPairObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'nca_pair',
  description: 'NCA on pairs: noise-contrastive alignment (Chen et al. 2024)',
  read: (r) => ({ beta: beta(r) }),
  terms: (p, c) => {
    const { chosen, rejected } = pairLogRatios('nca_pair', p, 'sum');
    return {
      losses: ncaPairLosses(chosen, rejected, c.beta),
      chosen: tf.mul(c.beta, chosen),
      rejected: tf.mul(c.beta, rejected),
    };
  },
});

export interface SimpoConfig {
  /** β > 0, default 2.0 (SimPO paper) */
  beta: number;
  /** target margin γ ≥ 0, default 1.0 (γ/β = 0.5, TRL's `simpo_gamma`) */
  gamma: number;
}

/** `simpo`: `−logσ(β·(mean_θ(y_w) − mean_θ(y_l)) − γ)`, no reference model. */
export const simpoObjective: Objective<SimpoConfig> = pairwiseObjective({
  name: 'simpo',
  description: 'SimPO: reference-free, length-normalized margin loss (Meng et al. 2024)',
  read: (r) => ({ beta: beta(r, 2.0), gamma: r.number('gamma', 1.0, { min: 0 }) }),
  needs: { reference: false, lengthNormalized: true },
  terms: (p, c) => {
    requirePositive('simpo', 'chosenLengths', p.chosenLengths);
    requirePositive('simpo', 'rejectedLengths', p.rejectedLengths);
    const mw = meanLogps(p.policyChosenLogps, p.chosenLengths);
    const ml = meanLogps(p.policyRejectedLogps, p.rejectedLengths);
    return {
      losses: simpoLosses(mw, ml, c.beta, c.gamma),
      chosen: tf.mul(c.beta, mw),
      rejected: tf.mul(c.beta, ml),
    };
  },
});

export interface KtoConfig {
  /** β > 0, default 0.1 */
  beta: number;
  /** λ_D > 0, default 1 */
  desirableWeight: number;
  /** λ_U > 0, default 1 */
  undesirableWeight: number;
}

export const KTO_METRICS = [
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'kl',
  'logps/chosen',
  'logps/rejected',
] as const;

/** `kto`: unpaired binary feedback with the batch KL estimate (see {@link ktoTerms}). */
export const ktoObjective: Objective<KtoConfig> = Object.freeze<Objective<KtoConfig>>({
  name: 'kto',
  description:
    'KTO: prospect-theoretic loss on unpaired desirable/undesirable examples (Ethayarajh et al. 2024)',
  feedback: ['binary'] as const,
  metricNames: KTO_METRICS,
  parseConfig: (raw: unknown) =>
    parseWith('kto', raw, (r) => ({
      beta: beta(r),
      desirableWeight: r.number('desirableWeight', 1, { gt: 0 }),
      undesirableWeight: r.number('undesirableWeight', 1, { gt: 0 }),
    })),
  feedbackFor: () => ['binary'] as const,
  needs: () => ({ ...NEEDS, inputs: 'pointwise' as const, mismatchedPairs: true }),
  loss(inputs, c) {
    return computeLoss('kto', inputs, 'pointwise', (p) => {
      const t = ktoTerms(p, c.beta, c.desirableWeight, c.undesirableWeight);
      const labels = p.labels!;
      // Means over the desirable / undesirable rows (0 when a batch has none of a kind).
      const chosen = meanWhere(t.rewards, labels);
      const rejected = meanWhere(t.rewards, tf.sub(1, labels));
      return {
        loss: tf.mean(t.losses) as tf.Scalar,
        metrics: {
          'rewards/chosen': chosen,
          'rewards/rejected': rejected,
          'rewards/margins': tf.sub(chosen, rejected),
          kl: t.kl,
          'logps/chosen': meanWhere(p.policyLogps, labels),
          'logps/rejected': meanWhere(p.policyLogps, tf.sub(1, labels)),
        },
      };
    });
  },
});

/** Every objective this package publishes, by name. */
export const dpoObjectives = {
  dpo: dpoObjective,
  cdpo: cdpoObjective,
  robust: robustObjective,
  ipo: ipoObjective,
  hinge: hingeObjective,
  simpo: simpoObjective,
  nca_pair: ncaPairObjective,
  kto: ktoObjective,
} as const;
