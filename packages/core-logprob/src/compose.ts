import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from './grad.js';
import type { FeedbackKind, LossOutput, Objective, ObjectiveNeeds } from './objective.js';

/** One part of a weighted combination. */
export interface WeightedPart {
  objective: Objective<object>;
  /** the part's weight w_i (finite, ≥ 0) */
  weight: number;
  /** metric prefix; default the objective's name (`dpo`, then `dpo_2` for a repeat) */
  prefix?: string;
}

/** The parsed config of a combination: each part's own parsed config, in order. */
export interface WeightedConfig {
  parts: readonly object[];
}

/**
 * The objective `L = Σ_i w_i·L_i` (TRL's `loss_type: [...]` with `loss_weights`, MPO's
 * recipe). Each part keeps its own config; `parseConfig` takes a list of the parts' raw
 * configs (or `{parts: [...]}`). Metrics come back under each part's prefix
 * (`bco_pair/rewards/chosen`, …) with the part's unweighted loss as `<prefix>/loss`.
 * `needs` is the union of the parts' needs; the parts must agree on the input layout and on
 * anything that changes the shared log-probs (`ldAlpha`).
 */
export function weightedSum(
  parts: readonly WeightedPart[],
  name = 'weighted',
): Objective<WeightedConfig> {
  if (parts.length === 0) throw new Error(`${name}: needs at least one objective`);
  const seen = new Map<string, number>();
  const prefixes = parts.map((p, i) => {
    if (!Number.isFinite(p.weight) || p.weight < 0)
      throw new Error(
        `${name}: weight of part ${i} (${p.objective.name}) must be a finite number >= 0, got ${p.weight}`,
      );
    const base = p.prefix ?? p.objective.name;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}_${n}`;
  });
  const label = parts.map((p) => p.objective.name).join(' + ');
  const feedback = parts
    .map((p) => p.objective.feedback)
    .reduce((a, b) => a.filter((k) => b.includes(k)));
  const objective: Objective<WeightedConfig> = {
    name,
    description: `weighted sum: ${parts.map((p, i) => `${p.weight}·${prefixes[i]}`).join(' + ')}`,
    feedback,
    metricNames: parts.flatMap((p, i) => [
      `${prefixes[i]}/loss`,
      ...p.objective.metricNames.map((m) => `${prefixes[i]}/${m}`),
    ]),
    parseConfig(raw: unknown): Readonly<WeightedConfig> {
      const list =
        raw === undefined || raw === null
          ? parts.map(() => ({}))
          : Array.isArray(raw)
            ? raw
            : (raw as { parts?: unknown }).parts;
      if (!Array.isArray(list) || list.length !== parts.length)
        throw new Error(
          `${name} config: expected a list of ${parts.length} part configs (${label}), got ${JSON.stringify(raw)}`,
        );
      const config = Object.freeze({
        parts: Object.freeze(parts.map((p, i) => p.objective.parseConfig(list[i] ?? {}))),
      });
      objective.needs(config); // checks that the parts agree
      return config;
    },
    feedbackFor(config) {
      return parts
        .map((p, i) => p.objective.feedbackFor(config.parts[i]!))
        .reduce((a, b) => a.filter((k) => b.includes(k))) as readonly FeedbackKind[];
    },
    needs(config): ObjectiveNeeds {
      const all = parts.map((p, i) => p.objective.needs(config.parts[i]!));
      const first = all[0]!;
      const merged: ObjectiveNeeds = { ...first };
      all.forEach((n, i) => {
        if (n.inputs !== first.inputs)
          throw new Error(
            `${name}: '${prefixes[i]}' takes ${n.inputs} inputs but '${prefixes[0]}' takes ${first.inputs}; a weighted sum needs one input layout`,
          );
        if (n.ldAlpha !== first.ldAlpha)
          throw new Error(
            `${name}: 'ldAlpha' changes the log-probs every part shares, so the parts must agree: '${prefixes[0]}' has ${first.ldAlpha ?? 'none'}, '${prefixes[i]}' has ${n.ldAlpha ?? 'none'} (set it on every part that accepts it, or on none)`,
          );
        merged.reference ||= n.reference;
        merged.promptLogps ||= n.promptLogps;
        merged.rewards ||= n.rewards;
        merged.mismatchedPairs ||= n.mismatchedPairs;
        if (n.wpoWeights) merged.wpoWeights = true;
      });
      return Object.freeze(merged);
    },
    loss(inputs, config): LossOutput {
      return tf.tidy(() => {
        const metrics: Record<string, tf.Scalar> = {};
        const losses = parts.map((p, i) => {
          const out = p.objective.loss(inputs, config.parts[i]!);
          for (const [k, v] of Object.entries(out.metrics)) metrics[`${prefixes[i]}/${k}`] = v;
          return out.loss;
        });
        losses.forEach((l, i) => {
          metrics[`${prefixes[i]}/loss`] = stopGradient(l);
        });
        const weighted = losses.map((l, i) => tf.mul(l, parts[i]!.weight));
        const total = (weighted.length === 1 ? weighted[0]! : tf.addN(weighted)) as tf.Scalar;
        return { loss: total, metrics };
      });
    },
  };
  return Object.freeze(objective);
}
