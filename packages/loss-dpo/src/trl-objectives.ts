/**
 * TRL 1.13's other `DPOTrainer` loss types, and ORPO and CPO (`trl.experimental`), as
 * Objectives. Names are TRL's `loss_type` values; config fields are TRL's in camelCase.
 */
import {
  computeLoss,
  type Objective,
  PAIRWISE_METRIC_NAMES,
  parseWith,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { hingeLosses, ipoLosses, sigmoidLosses } from './pairwise.js';
import {
  type ModifierSupport,
  PAIRWISE_NEEDS,
  pairwiseObjective,
  perToken,
  type RatioModifiers,
  ratioRewards,
  readBeta,
  readModifiers,
  readSmoothing,
} from './pairwise-objective.js';
import {
  aotLosses,
  aotUnpairedLosses,
  apoDownLosses,
  apoZeroLosses,
  bcoPairLosses,
  discopopLosses,
  EXP_CAP,
  exoPairLosses,
  orpoLogOdds,
  sftLoss,
  sppoHardLosses,
} from './trl-losses.js';

/** TRL allows f-divergences on these; weighting and LD on every DPO loss but AOT. */
const F_DIV: ModifierSupport = {
  fDivergence: true,
  weighting: true,
  ldAlpha: true,
  referenceFree: true,
};
const PLAIN: ModifierSupport = { weighting: true, ldAlpha: true, referenceFree: true };
const SORTED: ModifierSupport = { ldAlpha: true, referenceFree: true };

export interface BetaSmoothingConfig extends RatioModifiers {
  /** β > 0, default 0.1 */
  beta: number;
  /** ε, see each objective for its default and range */
  labelSmoothing: number;
}

export interface TrlBetaConfig extends RatioModifiers {
  /** β > 0, default 0.1 */
  beta: number;
}

/** `exo_pair`: EXO's KL between softmax(βΔ) over the pair and (1−ε, ε); ε ∈ (0, 1), default 1e-3. */
export const exoPairObjective: Objective<BetaSmoothingConfig> = pairwiseObjective({
  name: 'exo_pair',
  description: 'EXO on pairs: exact optimization of the KL-regularized objective (Ji et al. 2024)',
  read: (r) => ({
    beta: readBeta(r),
    // TRL requires label_smoothing > 0 for exo_pair; the EXO paper recommends 1e-3.
    labelSmoothing: r.number('labelSmoothing', 1e-3, { gt: 0, lt: 1 }),
    ...readModifiers(r, F_DIV),
  }),
  terms: (_p, c, ratios) => ({
    losses: exoPairLosses(ratios().delta, c.beta, c.labelSmoothing),
    ...ratioRewards(ratios(), c.beta),
  }),
});

/** `bco_pair`: `−logσ(βρ_w) − logσ(−βρ_l)` (TRL 1.13: no running reward mean). */
export const bcoPairObjective: Objective<TrlBetaConfig> = pairwiseObjective({
  name: 'bco_pair',
  description:
    'BCO on pairs: binary classifier of chosen vs rejected log-ratios (Jung et al. 2024)',
  read: (r) => ({ beta: readBeta(r), ...readModifiers(r, PLAIN) }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return { losses: bcoPairLosses(x.chosen, x.rejected, c.beta), ...ratioRewards(x, c.beta) };
  },
});

/** `sppo_hard`: `(ρ_w − 1/(2β))² + (ρ_l + 1/(2β))²`. */
export const sppoHardObjective: Objective<TrlBetaConfig> = pairwiseObjective({
  name: 'sppo_hard',
  description: 'SPPO with hard win/lose probabilities (Wu et al. 2024)',
  read: (r) => ({ beta: readBeta(r), ...readModifiers(r, PLAIN) }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return { losses: sppoHardLosses(x.chosen, x.rejected, c.beta), ...ratioRewards(x, c.beta) };
  },
});

/** `aot`: smoothed sigmoid on sorted policy margins minus sorted reference margins. */
export const aotObjective: Objective<BetaSmoothingConfig> = pairwiseObjective({
  name: 'aot',
  description: 'AOT, paired: distributional alignment via optimal transport (Melnyk et al. 2024)',
  read: (r) => ({
    beta: readBeta(r),
    labelSmoothing: readSmoothing(r, 0),
    ...readModifiers(r, SORTED),
  }),
  terms: (p, c, ratios) => {
    const x = ratios();
    const refC = c.referenceFree ? tf.zerosLike(p.policyChosenLogps) : p.refChosenLogps!;
    const refR = c.referenceFree ? tf.zerosLike(p.policyRejectedLogps) : p.refRejectedLogps!;
    return {
      losses: aotLosses(
        p.policyChosenLogps,
        p.policyRejectedLogps,
        refC as tf.Tensor1D,
        refR as tf.Tensor1D,
        c.beta,
        c.labelSmoothing,
      ),
      ...ratioRewards(x, c.beta),
    };
  },
});

/** `aot_unpaired`: smoothed sigmoid on sort(ρ_w) − sort(ρ_l). */
export const aotUnpairedObjective: Objective<BetaSmoothingConfig> = pairwiseObjective({
  name: 'aot_unpaired',
  description: 'AOT, unpaired: chosen and rejected log-ratio distributions (Melnyk et al. 2024)',
  read: (r) => ({
    beta: readBeta(r),
    labelSmoothing: readSmoothing(r, 0),
    ...readModifiers(r, SORTED),
  }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return {
      losses: aotUnpairedLosses(x.chosen, x.rejected, c.beta, c.labelSmoothing),
      ...ratioRewards(x, c.beta),
    };
  },
});

/** `apo_zero`: `(1 − σ(βρ_w)) + σ(βρ_l)`. */
export const apoZeroObjective: Objective<TrlBetaConfig> = pairwiseObjective({
  name: 'apo_zero',
  description: 'APO-zero: anchored, raises chosen and lowers rejected (D’Oosterlinck et al. 2024)',
  read: (r) => ({ beta: readBeta(r), ...readModifiers(r, PLAIN) }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return { losses: apoZeroLosses(x.chosen, x.rejected, c.beta), ...ratioRewards(x, c.beta) };
  },
});

/** `apo_down`: `σ(βρ_w) + (1 − σ(β(ρ_w − ρ_l)))`. */
export const apoDownObjective: Objective<TrlBetaConfig> = pairwiseObjective({
  name: 'apo_down',
  description: 'APO-down: anchored, lowers both, rejected more (D’Oosterlinck et al. 2024)',
  read: (r) => ({ beta: readBeta(r), ...readModifiers(r, PLAIN) }),
  terms: (_p, c, ratios) => {
    const x = ratios();
    return { losses: apoDownLosses(x.chosen, x.rejected, c.beta), ...ratioRewards(x, c.beta) };
  },
});

export interface DiscopopConfig extends RatioModifiers {
  /** β > 0, default 0.1 */
  beta: number;
  /** τ > 0 of the modulation σ(βΔ/τ) (TRL `discopop_tau`), default 0.05 */
  discopopTau: number;
}

/** `discopop`: `(1 − σ(βΔ/τ))·(−logσ(βΔ)) + σ(βΔ/τ)·e^{−βΔ}`. */
export const discopopObjective: Objective<DiscopopConfig> = pairwiseObjective({
  name: 'discopop',
  description: 'DiscoPOP: log-ratio modulated loss discovered by LLM search (Lu et al. 2024)',
  read: (r) => ({
    beta: readBeta(r),
    discopopTau: r.number('discopopTau', 0.05, { gt: 0 }),
    ...readModifiers(r, F_DIV),
  }),
  terms: (_p, c, ratios) => ({
    losses: discopopLosses(ratios().delta, c.beta, c.discopopTau),
    ...ratioRewards(ratios(), c.beta),
  }),
});

/** `sigmoid_norm`: `−logσ(β·(s(ρ_w)/|y_w| − s(ρ_l)/|y_l|))`, DPO on per-token log-ratios. */
export const sigmoidNormObjective: Objective<TrlBetaConfig> = pairwiseObjective({
  name: 'sigmoid_norm',
  description: 'DPO on length-normalized (per-token) log-ratios',
  read: (r) => ({ beta: readBeta(r), ...readModifiers(r, F_DIV) }),

  terms: (p, c, ratios) => {
    const x = ratios();
    const delta = tf.sub(
      perToken(x.chosenScore, p.chosenLengths),
      perToken(x.rejectedScore, p.rejectedLengths),
    ) as tf.Tensor1D;
    return { losses: sigmoidLosses(delta, c.beta), ...ratioRewards(x, c.beta) };
  },
});

export const SFT_METRICS = ['nll_loss', 'logps/chosen', 'logps/rejected'] as const;

/**
 * `sft`: NLL of the chosen responses, the token mean over the batch `−Σ logpθ(y_w) / Σ|y_w|`
 * (TRL's `sft` loss type). Reference-free; no config. Combine it with a preference loss.
 */
export const sftObjective: Objective<Record<string, never>> = Object.freeze<
  Objective<Record<string, never>>
>({
  name: 'sft',
  description: 'SFT: negative log-likelihood of the chosen responses',
  feedback: ['pairwise'] as const,
  metricNames: SFT_METRICS,
  parseConfig: (raw: unknown) => parseWith('sft', raw, () => ({})),
  feedbackFor: () => ['pairwise'] as const,
  needs: () => Object.freeze({ ...PAIRWISE_NEEDS, reference: false }),
  loss(inputs) {
    return computeLoss('sft', inputs, 'pairwise', (p) => {
      const nll = sftLoss(p.policyChosenLogps, p.chosenLengths);
      return {
        loss: nll,
        metrics: {
          nll_loss: nll,
          'logps/chosen': p.policyChosenLogps,
          'logps/rejected': p.policyRejectedLogps,
        },
      };
    });
  },
});

export const ORPO_METRICS = [
  ...PAIRWISE_METRIC_NAMES,
  'nll_loss',
  'log_odds_ratio',
  'log_odds_chosen',
] as const;

export interface OrpoConfig extends RatioModifiers {
  /** λ of the odds-ratio term (TRL ORPO's `beta`), > 0, default 0.1 */
  beta: number;
}

/**
 * `orpo` (Hong et al. 2024; TRL `experimental.orpo`): `NLL(y_w) − β·mean logσ(ℓ)`, ℓ the
 * log-odds ratio of mean token log-probs ({@link orpoLogOdds}); NLL as in {@link sftLoss}.
 * No reference model. Metrics as TRL's: rewards β·mean logp, `logps/*` are means.
 */
export const orpoObjective: Objective<OrpoConfig> = pairwiseObjective<OrpoConfig>({
  name: 'orpo',
  description: 'ORPO: odds-ratio preference term plus NLL, no reference model (Hong et al. 2024)',
  read: (r) => ({ beta: readBeta(r) }),
  needs: { reference: false },
  metricNames: ORPO_METRICS,
  logps: (p) => ({
    chosen: perToken(p.policyChosenLogps, p.chosenLengths),
    rejected: perToken(p.policyRejectedLogps, p.rejectedLengths),
  }),
  terms: (p, c) => {
    const mw = perToken(p.policyChosenLogps, p.chosenLengths);
    const ml = perToken(p.policyRejectedLogps, p.rejectedLengths);
    const logOdds = orpoLogOdds(mw, ml);
    const ratio = tf.neg(tf.softplus(tf.neg(logOdds)));
    const nll = sftLoss(p.policyChosenLogps, p.chosenLengths);
    return {
      losses: tf.sub(nll, tf.mul(c.beta, ratio)) as tf.Tensor1D,
      chosen: tf.mul(c.beta, mw),
      rejected: tf.mul(c.beta, ml),
      metrics: { nll_loss: nll, log_odds_ratio: ratio, log_odds_chosen: logOdds },
    };
  },
});

export const CPO_LOSS_TYPES = ['sigmoid', 'hinge', 'ipo', 'simpo'] as const;
export const CPO_METRICS = [...PAIRWISE_METRIC_NAMES, 'nll_loss'] as const;

export interface CpoConfig extends RatioModifiers {
  /** CPO's preference loss (TRL CPO `loss_type`), default `sigmoid` */
  lossType: (typeof CPO_LOSS_TYPES)[number];
  /** β > 0, default 0.1 */
  beta: number;
  /** ε ∈ [0, 0.5) for `sigmoid` / `simpo`, default 0 */
  labelSmoothing: number;
  /** weight of the chosen NLL (TRL `cpo_alpha`), ≥ 0, default 1 */
  cpoAlpha: number;
  /** SimPO margin γ (TRL `simpo_gamma`), ≥ 0, default 0.5; `lossType: simpo` only */
  simpoGamma: number;
  /** AlphaPO reward shape α (TRL `alpha`), default 0 (log-prob rewards) */
  alpha: number;
}

/**
 * `cpo` (Xu et al. 2024, "Contrastive Preference Optimization"; TRL `experimental.cpo`):
 * a reference-free preference loss on m = logpθ(y_w) − logpθ(y_l) (per-token means for
 * `ipo` and `simpo`) plus `cpoAlpha`·NLL(y_w):
 * `sigmoid` `−(1−ε)logσ(βm) − ε·logσ(−βm)`, `hinge` `max(0, 1 − βm)`, `ipo` `(m − 1/(2β))²`,
 * `simpo` the sigmoid form on m − γ/β. With α ≠ 0 (AlphaPO) each log-prob ℓ becomes the
 * reward `(1 − e^{−αℓ})/α` first.
 */
export const cpoObjective: Objective<CpoConfig> = pairwiseObjective<CpoConfig>({
  name: 'cpo',
  description: 'CPO: reference-free preference loss plus NLL on the chosen (Xu et al. 2024)',
  read: (r) => {
    const lossType = r.oneOf('lossType', 'sigmoid', CPO_LOSS_TYPES);
    const smoothed = lossType === 'sigmoid' || lossType === 'simpo';
    const labelSmoothing = readSmoothing(r, 0);
    if (!smoothed && labelSmoothing > 0)
      r.fail('labelSmoothing', `is not used by lossType '${lossType}' (TRL ignores it): remove it`);
    const simpoGamma = r.number('simpoGamma', 0.5, { min: 0 });
    if (lossType !== 'simpo' && simpoGamma !== 0.5)
      r.fail('simpoGamma', `is used only with lossType 'simpo', not '${lossType}'`);
    return {
      lossType,
      beta: readBeta(r),
      labelSmoothing,
      cpoAlpha: r.number('cpoAlpha', 1, { min: 0 }),
      simpoGamma,
      alpha: r.number('alpha', 0),
    };
  },
  needs: { reference: false },
  metricNames: CPO_METRICS,
  terms: (p, c) => {
    const mean = c.lossType === 'ipo' || c.lossType === 'simpo';
    const lw = mean ? perToken(p.policyChosenLogps, p.chosenLengths) : p.policyChosenLogps;
    const ll = mean ? perToken(p.policyRejectedLogps, p.rejectedLengths) : p.policyRejectedLogps;
    // AlphaPO's p^{−α} = e^{−αℓ}, the exponent capped at 80 (TRL overflows to ∞ past ~88)
    const shape = (x: tf.Tensor1D) =>
      c.alpha === 0
        ? x
        : (tf.div(
            tf.sub(1, tf.exp(tf.minimum(tf.mul(-c.alpha, x), EXP_CAP))),
            c.alpha,
          ) as tf.Tensor1D);
    const rw = shape(lw);
    const rl = shape(ll);
    let m = tf.sub(rw, rl) as tf.Tensor1D;
    let losses: tf.Tensor1D;
    if (c.lossType === 'hinge') losses = hingeLosses(m, c.beta);
    else if (c.lossType === 'ipo') losses = ipoLosses(m, c.beta);
    else {
      if (c.lossType === 'simpo') m = tf.sub(m, c.simpoGamma / c.beta) as tf.Tensor1D;
      losses = sigmoidLosses(m, c.beta, c.labelSmoothing);
    }
    const nll = sftLoss(p.policyChosenLogps, p.chosenLengths);
    return {
      losses: c.cpoAlpha === 0 ? losses : (tf.add(losses, tf.mul(c.cpoAlpha, nll)) as tf.Tensor1D),
      chosen: tf.mul(c.beta, rw),
      rejected: tf.mul(c.beta, rl),
      metrics: { nll_loss: c.cpoAlpha === 0 ? tf.scalar(0) : nll },
    };
  },
  logps: (p, c) =>
    c.lossType === 'ipo' || c.lossType === 'simpo'
      ? {
          chosen: perToken(p.policyChosenLogps, p.chosenLengths),
          rejected: perToken(p.policyRejectedLogps, p.rejectedLengths),
        }
      : { chosen: p.policyChosenLogps, rejected: p.policyRejectedLogps },
});
