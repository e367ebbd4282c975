/**
 * The shared shape of every pairwise objective in this package: config reading with TRL's
 * log-ratio modifiers (`fDivergenceType`, `useWeighting`, `ldAlpha`, `referenceFree`), the
 * log-ratios and scores the loss terms consume, WPO weighting, TRL's metrics.
 */
import {
  type ConfigReader,
  computeLoss,
  type Objective,
  type ObjectiveNeeds,
  PAIRWISE_METRIC_NAMES,
  type PairwiseInputs,
  pairwiseMetricTensors,
  parseWith,
  requireInput,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { F_DIVERGENCES, type FDivergence, fDivergenceScores, wpoWeights } from './trl-losses.js';

export const PAIRWISE_METRICS = [...PAIRWISE_METRIC_NAMES] as const;

export const PAIRWISE_NEEDS: ObjectiveNeeds = Object.freeze({
  inputs: 'pairwise',
  reference: true,
  promptLogps: false,
  rewards: false,
  mismatchedPairs: false,
});

/**
 * TRL's options that change the log-ratios or weight the per-pair losses. An objective's
 * parsed config holds only the ones it accepts (absent = neutral).
 */
export interface RatioModifiers {
  /** f-DPO divergence (TRL `f_divergence_type`), default `reverse_kl` (plain DPO) */
  fDivergenceType?: FDivergence;
  /** α of `alpha_divergence` (TRL `f_alpha_divergence_coef`), default 0.5 */
  fAlphaDivergenceCoef?: number;
  /** WPO weighting (TRL `use_weighting`), default false */
  useWeighting?: boolean;
  /** LD-DPO (TRL `ld_alpha`, in [0, 1]): tokens past the pair's shared length weigh α; default off */
  ldAlpha?: number;
  /** log-ratios against a uniform reference (ρ = logpθ), no reference model; default false */
  referenceFree?: boolean;
}

/** Which modifiers an objective accepts (TRL allows f-divergences on some loss types only). */
export interface ModifierSupport {
  fDivergence?: boolean;
  weighting?: boolean;
  ldAlpha?: boolean;
  referenceFree?: boolean;
}

/** Reads the modifiers an objective supports (the others are not config fields of it). */
export function readModifiers(r: ConfigReader, s: ModifierSupport): RatioModifiers {
  const m: RatioModifiers = {};
  if (s.fDivergence) {
    m.fDivergenceType = r.oneOf('fDivergenceType', 'reverse_kl', F_DIVERGENCES);
    m.fAlphaDivergenceCoef = r.number('fAlphaDivergenceCoef', 0.5, { gt: 0 });
  }
  if (s.weighting) m.useWeighting = r.boolean('useWeighting', false);
  if (s.ldAlpha) {
    const v = r.optionalNumber('ldAlpha', { min: 0, max: 1 });
    if (v !== undefined) m.ldAlpha = v;
    else r.mark('ldAlpha');
  }
  if (s.referenceFree) m.referenceFree = r.boolean('referenceFree', false);
  return m;
}

/** The needs implied by the modifiers. */
export function modifierNeeds(m: RatioModifiers): Partial<ObjectiveNeeds> {
  return {
    ...(m.referenceFree ? { reference: false } : {}),
    ...(m.useWeighting ? { wpoWeights: true } : {}),
    ...(m.ldAlpha !== undefined ? { ldAlpha: m.ldAlpha } : {}),
  };
}

/** Log-ratios ρ and f-divergence scores s(ρ) of a pairwise batch (all `[B]`). */
export interface PairRatios {
  /** ρ_w = logpθ(y_w) − logp_ref(y_w) (sums; ld-weighted when `ldAlpha` is set) */
  chosen: tf.Tensor1D;
  rejected: tf.Tensor1D;
  /** s(ρ_w), s(ρ_l): equal to ρ for reverse KL */
  chosenScore: tf.Tensor1D;
  rejectedScore: tf.Tensor1D;
  /** Δ = s(ρ_w) − s(ρ_l) */
  delta: tf.Tensor1D;
}

/** ρ and s(ρ) for a batch; reference-free mode takes logp_ref = 0. */
export function pairRatios(objective: string, p: PairwiseInputs, m: RatioModifiers): PairRatios {
  let chosen = p.policyChosenLogps;
  let rejected = p.policyRejectedLogps;
  if (!m.referenceFree) {
    const why = 'reference log-probs (or set referenceFree)';
    chosen = tf.sub(chosen, requireInput(objective, 'refChosenLogps', p.refChosenLogps, why));
    rejected = tf.sub(
      rejected,
      requireInput(objective, 'refRejectedLogps', p.refRejectedLogps, why),
    );
  }
  const f = m.fDivergenceType ?? 'reverse_kl';
  const chosenScore = fDivergenceScores(chosen, f, m.fAlphaDivergenceCoef);
  const rejectedScore = fDivergenceScores(rejected, f, m.fAlphaDivergenceCoef);
  return {
    chosen,
    rejected,
    chosenScore,
    rejectedScore,
    delta: tf.sub(chosenScore, rejectedScore),
  };
}

/** `x / max(len, 1)`, TRL's per-token average (lengths are checked at the data layer). */
export function perToken(x: tf.Tensor1D, lengths: tf.Tensor1D): tf.Tensor1D {
  return tf.div(x, tf.maximum(lengths, 1));
}

export interface PairwiseTerms {
  /** [B] per-example losses (before WPO weighting) */
  losses: tf.Tensor1D;
  /** [B] implicit rewards reported as `rewards/*` (detached by the factory) */
  chosen: tf.Tensor1D;
  rejected: tf.Tensor1D;
  /** extra metrics (scalars or tensors whose mean is reported) */
  metrics?: Record<string, tf.Tensor>;
}

export interface PairwiseSpec<C extends RatioModifiers> {
  name: string;
  description: string;
  read: (r: ConfigReader) => C;
  needs?: Partial<ObjectiveNeeds>;
  metricNames?: readonly string[];
  terms: (p: PairwiseInputs, c: Readonly<C>, ratios: () => PairRatios) => PairwiseTerms;
  /** `logps/*` metrics from these instead of the policy sums (ORPO: means) */
  logps?: (p: PairwiseInputs, c: Readonly<C>) => { chosen: tf.Tensor1D; rejected: tf.Tensor1D };
}

/**
 * A pairwise `Objective`: loss = mean over pairs of `terms(...).losses`, times the WPO
 * weights when `useWeighting` is on; TRL's pairwise metrics.
 */
export function pairwiseObjective<C extends RatioModifiers>(spec: PairwiseSpec<C>): Objective<C> {
  const objective: Objective<C> = {
    name: spec.name,
    description: spec.description,
    feedback: ['pairwise'] as const,
    metricNames: spec.metricNames ?? PAIRWISE_METRICS,
    parseConfig: (raw: unknown) => parseWith(spec.name, raw, spec.read),
    feedbackFor: () => ['pairwise'] as const,
    needs: (c) => Object.freeze({ ...PAIRWISE_NEEDS, ...spec.needs, ...modifierNeeds(c) }),
    loss(inputs, config) {
      return computeLoss(spec.name, inputs, 'pairwise', (p) => {
        let cached: PairRatios | undefined;
        const ratios = () => {
          cached ??= pairRatios(spec.name, p, config);
          return cached;
        };
        const t = spec.terms(p, config, ratios);
        let losses = t.losses;
        if (config.useWeighting) {
          const why = "WPO weights (the trainer computes them when 'useWeighting' is on)";
          losses = tf.mul(
            losses,
            wpoWeights(
              requireInput(spec.name, 'chosenWpoLogps', p.chosenWpoLogps, why),
              requireInput(spec.name, 'rejectedWpoLogps', p.rejectedWpoLogps, why),
            ),
          );
        }
        const logps = spec.logps?.(p, config) ?? {
          chosen: p.policyChosenLogps,
          rejected: p.policyRejectedLogps,
        };
        return {
          loss: tf.mean(losses) as tf.Scalar,
          metrics: {
            ...pairwiseMetricTensors(
              stopGradient(t.chosen),
              stopGradient(t.rejected),
              logps.chosen,
              logps.rejected,
            ),
            ...t.metrics,
          },
        };
      });
    },
  };
  return Object.freeze(objective);
}

/** β > 0 with the objective's default. */
export const readBeta = (r: ConfigReader, fallback = 0.1) => r.number('beta', fallback, { gt: 0 });
/** ε ∈ [0, 0.5) with the objective's default. */
export const readSmoothing = (r: ConfigReader, fallback: number) =>
  r.number('labelSmoothing', fallback, { min: 0, lt: 0.5 });

/** Rewards β·ρ, as TRL reports them for every DPO loss type. */
export function ratioRewards(r: PairRatios, beta: number) {
  return { chosen: tf.mul(beta, r.chosen), rejected: tf.mul(beta, r.rejected) } as {
    chosen: tf.Tensor1D;
    rejected: tf.Tensor1D;
  };
}
