import {
  computeLoss,
  desirabilityMetrics,
  meanLogps,
  type Objective,
  parseWith,
  requirePositive,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { ktoTerms } from './kto.js';
import {
  hingeLosses,
  ipoLosses,
  ncaPairLosses,
  robustLosses,
  sigmoidLosses,
  simpoLosses,
} from './pairwise.js';
import {
  type ModifierSupport,
  PAIRWISE_NEEDS,
  pairwiseObjective,
  type RatioModifiers,
  ratioRewards,
  readBeta,
  readModifiers,
  readSmoothing,
} from './pairwise-objective.js';

import {
  aotObjective,
  aotUnpairedObjective,
  apoDownObjective,
  apoZeroObjective,
  bcoPairObjective,
  cpoObjective,
  discopopObjective,
  exoPairObjective,
  orpoObjective,
  sftObjective,
  sigmoidNormObjective,
  sppoHardObjective,
} from './trl-objectives.js';

export { PAIRWISE_METRICS } from './pairwise-objective.js';

const NEEDS = PAIRWISE_NEEDS;
const beta = readBeta;
const smoothing = readSmoothing;
/** Every TRL modifier (f-divergences too): TRL's `sigmoid`, `hinge`, `ipo`, `robust`. */
const ALL: ModifierSupport = {
  fDivergence: true,
  weighting: true,
  ldAlpha: true,
  referenceFree: true,
};

export interface DpoConfig extends RatioModifiers {
  /** β > 0, default 0.1 */
  beta: number;
  /** ε ∈ [0, 0.5), default 0 (plain DPO) */
  labelSmoothing: number;
}

/** `dpo`: `−(1−ε)·logσ(βΔ) − ε·logσ(−βΔ)`; ε = 0 by default. */
export const dpoObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'dpo',
  description: 'DPO (sigmoid loss on the implicit reward margin), Rafailov et al. 2023',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0), ...readModifiers(r, ALL) }),
  terms: (_p, c, ratios) => ({
    losses: sigmoidLosses(ratios().delta, c.beta, c.labelSmoothing),
    ...ratioRewards(ratios(), c.beta),
  }),
});

/** `cdpo`: conservative DPO, DPO with label smoothing ε (default 0.1). */
export const cdpoObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'cdpo',
  description: 'conservative DPO: DPO with label smoothing ε (Mitchell 2023)',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0.1), ...readModifiers(r, ALL) }),
  terms: (_p, c, ratios) => ({
    losses: sigmoidLosses(ratios().delta, c.beta, c.labelSmoothing),
    ...ratioRewards(ratios(), c.beta),
  }),
});

/** `robust`: `[−(1−ε)logσ(βΔ) + ε·logσ(−βΔ)]/(1−2ε)` (default ε 0.1). */
export const robustObjective: Objective<DpoConfig> = pairwiseObjective({
  name: 'robust',
  description: 'robust DPO, unbiased under label-flip noise ε (Chowdhury et al. 2024)',
  read: (r) => ({ beta: beta(r), labelSmoothing: smoothing(r, 0.1), ...readModifiers(r, ALL) }),
  terms: (_p, c, ratios) => ({
    losses: robustLosses(ratios().delta, c.beta, c.labelSmoothing),
    ...ratioRewards(ratios(), c.beta),
  }),
});

export interface BetaConfig extends RatioModifiers {
  /** β > 0, default 0.1 */
  beta: number;
}

/** `hinge`: `max(0, 1 − βΔ)`. */
export const hingeObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'hinge',
  description: 'hinge loss on the log-ratio margin (SLiC, Zhao et al. 2023)',
  read: (r) => ({ beta: beta(r), ...readModifiers(r, ALL) }),
  terms: (_p, c, ratios) => ({
    losses: hingeLosses(ratios().delta, c.beta),
    ...ratioRewards(ratios(), c.beta),
  }),
});

/** `ipo`: `(Δ̄ − 1/(2τ))²`, τ = β, Δ̄ = s(ρ_w)/|y_w| − s(ρ_l)/|y_l| (mean token log-ratios). */
export const ipoObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'ipo',
  description: 'IPO: squared loss on the length-normalized log-ratio margin (Azar et al. 2023)',
  read: (r) => ({ beta: beta(r), ...readModifiers(r, ALL) }),

  terms: (p, c, ratios) => {
    requirePositive('ipo', 'chosenLengths', p.chosenLengths);
    requirePositive('ipo', 'rejectedLengths', p.rejectedLengths);
    const x = ratios();
    const delta = tf.sub(
      tf.div(x.chosenScore, p.chosenLengths),
      tf.div(x.rejectedScore, p.rejectedLengths),
    ) as tf.Tensor1D;
    return { losses: ipoLosses(delta, c.beta), ...ratioRewards(x, c.beta) };
  },
});

/** `nca_pair`: `−logσ(βρ_w) − ½logσ(−βρ_w) − ½logσ(−βρ_l)`. */
export const ncaPairObjective: Objective<BetaConfig> = pairwiseObjective({
  name: 'nca_pair',
  description: 'NCA on pairs: noise-contrastive alignment (Chen et al. 2024)',
  read: (r) => ({
    beta: beta(r),
    ...readModifiers(r, { weighting: true, ldAlpha: true, referenceFree: true }),
  }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return { losses: ncaPairLosses(x.chosen, x.rejected, c.beta), ...ratioRewards(x, c.beta) };
  },
});

export interface SimpoConfig extends RatioModifiers {
  /** β > 0, default 2.0 (SimPO paper) */
  beta: number;
  /** target margin γ ≥ 0, default 1.0 (TRL CPO's `simpo_gamma` is this γ) */
  gamma: number;
}

/** `simpo`: `−logσ(β·(mean_θ(y_w) − mean_θ(y_l)) − γ)`, no reference model. */
export const simpoObjective: Objective<SimpoConfig> = pairwiseObjective({
  name: 'simpo',
  description: 'SimPO: reference-free, length-normalized margin loss (Meng et al. 2024)',
  read: (r) => ({
    beta: beta(r, 2.0),
    gamma: r.number('gamma', 1.0, { min: 0 }),
    ...readModifiers(r, {}),
  }),
  needs: { reference: false },
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
      return {
        loss: tf.mean(t.losses) as tf.Scalar,
        metrics: {
          ...desirabilityMetrics(t.rewards, p.policyLogps, labels, tf.sub(1, labels)),
          kl: t.kl,
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
  exo_pair: exoPairObjective,
  bco_pair: bcoPairObjective,
  sppo_hard: sppoHardObjective,
  aot: aotObjective,
  aot_unpaired: aotUnpairedObjective,
  apo_zero: apoZeroObjective,
  apo_down: apoDownObjective,
  discopop: discopopObjective,
  sigmoid_norm: sigmoidNormObjective,
  sft: sftObjective,
  orpo: orpoObjective,
  cpo: cpoObjective,
} as const;
