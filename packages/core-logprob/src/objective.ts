import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from './grad.js';
import { hostCopyOf, hostValues, withHostCopy } from './host.js';
import { readTidy } from './math.js';

/**
 * The data an objective learns from (the trainer detects it from the dataset's fields):
 * - `pairwise`: `{prompt, chosen, rejected}` (optional scores)
 * - `binary`: `{prompt, completion, label}` thumbs up/down
 * - `score`: `{prompt, completion, score}`
 * - `multi`: `{prompt, completions: [...], scores: [...]}`, K responses per prompt
 */
export type FeedbackKind = 'pairwise' | 'binary' | 'score' | 'multi';

/** The tensor layout a loss consumes (see the `*Inputs` types). */
export type InputKind = 'pairwise' | 'pointwise' | 'multi' | 'cross';

/**
 * Pairwise inputs: every tensor `[B]`, log-probs are **sums** over response tokens.
 * `ref*` are detached reference log-probs (omit them only for reference-free losses).
 */
export interface PairwiseInputs {
  kind: 'pairwise';
  policyChosenLogps: tf.Tensor1D;
  policyRejectedLogps: tf.Tensor1D;
  refChosenLogps?: tf.Tensor1D;
  refRejectedLogps?: tf.Tensor1D;
  /** response token counts */
  chosenLengths: tf.Tensor1D;
  rejectedLengths: tf.Tensor1D;
  /** data scores on the dataset's own scale (Uni-DPO, PRO) */
  chosenScores?: tf.Tensor1D;
  rejectedScores?: tf.Tensor1D;
  /**
   * WPO (`needs.wpoWeights`): per response, the mean over its tokens of
   * `log p(y_t) − log Σ_v p(v)²` under the policy, computed without gradient
   */
  chosenWpoLogps?: tf.Tensor1D;
  rejectedWpoLogps?: tf.Tensor1D;
}

/** One response per row (binary or scored feedback), every tensor `[B]`. */
export interface PointwiseInputs {
  kind: 'pointwise';
  policyLogps: tf.Tensor1D;
  refLogps?: tf.Tensor1D;
  lengths: tf.Tensor1D;
  /** 1 desirable / 0 undesirable */
  labels?: tf.Tensor1D;
  /** explicit scores or rewards */
  scores?: tf.Tensor1D;
  /** per row: 1 if the row is binary feedback, 0 if scored (UNA mixed batches) */
  isBinary?: tf.Tensor1D;
  /** KTO's KL estimate: log-probs of mismatched (x_i, y_j≠i) pairs, `[B]` */
  klPolicyLogps?: tf.Tensor1D;
  klRefLogps?: tf.Tensor1D;
}

/** K responses per prompt, `[B, K]` tensors; `mask` is 1 where a slot holds a response. */
export interface MultiInputs {
  kind: 'multi';
  policyLogps: tf.Tensor2D;
  refLogps: tf.Tensor2D;
  lengths: tf.Tensor2D;
  scores: tf.Tensor2D;
  mask: tf.Tensor2D;
  /** [B] Σ log p(prompt tokens after the first) — RAO's partition estimate */
  policyPromptLogps?: tf.Tensor1D;
  refPromptLogps?: tf.Tensor1D;
}

/** VAR's cross inputs: row = prompt i, column = response j. */
export interface CrossInputs {
  kind: 'cross';
  /** [B] policy log-probs of each row's own response */
  policyLogps: tf.Tensor1D;
  /** [B] token counts of each response */
  lengths: tf.Tensor1D;
  /** [B, B] logp_ref(y_j | x_i) */
  refCrossLogps: tf.Tensor2D;
  /** [B, B] r(x_i, y_j) (VAR's exact `cross` mode) */
  crossRewards?: tf.Tensor2D;
  /** [B] r(x_j, y_j), taken as given for every prompt (VAR's `diagonal` mode) */
  rewards?: tf.Tensor1D;
}

export type ObjectiveInputs = PairwiseInputs | PointwiseInputs | MultiInputs | CrossInputs;

/**
 * What an objective needs the trainer to compute for it. The trainer reads every field:
 * the layout it builds, whether it loads and runs a reference model, which extra rows and
 * numbers it attaches to each fixed batch.
 */
export interface ObjectiveNeeds {
  /** tensor layout of `loss`'s inputs (`cross` implies the B×B reference rows) */
  inputs: InputKind;
  /** reference-model log-probs (false: no reference model is loaded or run) */
  reference: boolean;
  /**
   * prompt log-probs (policy and reference) from the same forward pass; every prompt must
   * start with the same token (RAO's partition estimate conditions on it), which the data
   * layer checks and truncation keeps
   */
  promptLogps: boolean;
  /** explicit rewards or scores (from data, a reward model or a function) */
  rewards: boolean;
  /** KTO-style mismatched pairs for a KL estimate */
  mismatchedPairs: boolean;
  /**
   * LD-DPO (TRL `ld_alpha`, pairwise only): response log-prob sums, policy and reference,
   * weigh tokens past the pair's shared length min(|y_w|, |y_l|) by this α. Absent: plain sums.
   */
  ldAlpha?: number;
  /** WPO: the trainer supplies `chosenWpoLogps` / `rejectedWpoLogps` */
  wpoWeights?: boolean;
}

/**
 * What `loss` returns: a scalar to minimize and detached metrics as scalar tensors, all owned
 * by the caller. Metrics stay on the device so a training loop reads them once per log
 * interval; {@link readLoss} reads loss and metrics as numbers (one device read) and frees them.
 */
export interface LossOutput {
  loss: tf.Scalar;
  metrics: Record<string, tf.Scalar>;
}

/**
 * The contract every loss package implements, so the trainer composes losses without
 * knowing them.
 */
export interface Objective<C> {
  /** the name users type in configs (`dpo`, `unidpo`, `rao`, …) */
  readonly name: string;
  /** one line for `--help` and reports */
  readonly description: string;
  /** data kinds accepted (for some objectives, `config` narrows it: see `needs`) */
  readonly feedback: readonly FeedbackKind[];
  /** every metric name `loss` can report */
  readonly metricNames: readonly string[];
  /** validated, frozen config; throws naming the field, the value and the allowed range */
  parseConfig(raw: unknown): Readonly<C>;
  /** data kinds accepted under this config */
  feedbackFor(config: Readonly<C>): readonly FeedbackKind[];
  needs(config: Readonly<C>): ObjectiveNeeds;
  /**
   * scalar loss (mean over examples) and detached metric tensors; disposes its intermediates
   * and reads nothing from the device for inputs whose data tensors carry host copies
   */
  loss(inputs: ObjectiveInputs, config: Readonly<C>): LossOutput;
}

/** Narrows inputs to the kind a loss expects, with an error that says what came instead. */
export function expectInputs<K extends InputKind>(
  objective: string,
  inputs: ObjectiveInputs,
  kind: K,
): Extract<ObjectiveInputs, { kind: K }> {
  if (inputs?.kind !== kind) {
    throw new Error(
      `${objective}: expects ${kind} inputs, got ${inputs?.kind ?? typeof inputs} (see the Objective input field names in @alignjs/core-logprob)`,
    );
  }
  return inputs as Extract<ObjectiveInputs, { kind: K }>;
}

/** Throws if an optional input the objective needs is missing. */
export function requireInput<T>(
  objective: string,
  field: string,
  value: T | undefined,
  why: string,
): T {
  if (value === undefined || value === null) {
    throw new Error(`${objective}: input '${field}' is required (${why})`);
  }
  return value;
}

/**
 * Runs a loss body in `tf.tidy`: it returns the scalar loss and metrics (tensors, whose mean
 * is taken, or numbers); both come back as tensors and every intermediate is freed.
 */
export function runLoss(
  body: () => { loss: tf.Scalar; metrics: Record<string, tf.Tensor | number> },
): LossOutput {
  return tf.tidy(() => {
    const out = body();
    const metrics: Record<string, tf.Scalar> = {};
    for (const [k, v] of Object.entries(out.metrics))
      metrics[k] =
        typeof v === 'number'
          ? tf.scalar(v)
          : (stopGradient(tf.mean(tf.cast(v, 'float32'))) as tf.Scalar);
    return { loss: out.loss, metrics };
  });
}

/** Loss and metrics as numbers in one device read; disposes `out`'s tensors. */
export function readLoss(out: LossOutput): { loss: number; metrics: Record<string, number> } {
  const names = Object.keys(out.metrics);
  const values = readTidy(() => tf.stack([out.loss, ...names.map((n) => out.metrics[n]!)]));
  tf.dispose([out.loss, ...Object.values(out.metrics)]);
  return {
    loss: values[0]!,
    metrics: Object.fromEntries(names.map((n, i) => [n, values[i + 1]!])),
  };
}

/**
 * Throws if any entry of `[B]` `values` is not > 0 (zero-length responses break means). Reads
 * the host copy ({@link hostValues}): no device read for tensors the data layer made.
 */
export function requirePositive(objective: string, field: string, values: tf.Tensor): void {
  const v = hostValues(values);
  for (let i = 0; i < v.length; i++) {
    if (!(v[i]! > 0)) {
      throw new Error(
        `${objective}: input '${field}' must be > 0 for every row, row ${i} is ${v[i]} (zero-length responses must be rejected at the data layer)`,
      );
    }
  }
}

/** Throws if `[B]` tensors in `fields` disagree in shape with the first one. */
export function requireSameShape(
  objective: string,
  fields: Record<string, tf.Tensor | undefined>,
): void {
  let first: [string, number[]] | undefined;
  for (const [name, t] of Object.entries(fields)) {
    if (!t) continue;
    if (!first) first = [name, t.shape];
    else if (t.shape.join() !== first[1].join()) {
      throw new Error(
        `${objective}: input '${name}' has shape [${t.shape}] but '${first[0]}' has [${first[1]}]`,
      );
    }
  }
}

/** What an input field is: produced by the policy (differentiated) or data (detached). */
export type InputRole = 'policy' | 'data';
type Roles<T> = { readonly [K in Exclude<keyof T, 'kind'>]-?: InputRole };

/**
 * The role of every field of every layout. The types make it complete: a field added to an
 * `*Inputs` interface without a role here does not compile, and {@link detachInputs} refuses
 * a tensor under a field its layout does not declare (instead of silently detaching it).
 */
export const INPUT_ROLES: {
  readonly pairwise: Roles<PairwiseInputs>;
  readonly pointwise: Roles<PointwiseInputs>;
  readonly multi: Roles<MultiInputs>;
  readonly cross: Roles<CrossInputs>;
} = Object.freeze({
  pairwise: {
    policyChosenLogps: 'policy',
    policyRejectedLogps: 'policy',
    refChosenLogps: 'data',
    refRejectedLogps: 'data',
    chosenLengths: 'data',
    rejectedLengths: 'data',
    chosenScores: 'data',
    rejectedScores: 'data',
    chosenWpoLogps: 'data',
    rejectedWpoLogps: 'data',
  },
  pointwise: {
    policyLogps: 'policy',
    refLogps: 'data',
    lengths: 'data',
    labels: 'data',
    scores: 'data',
    isBinary: 'data',
    klPolicyLogps: 'policy',
    klRefLogps: 'data',
  },
  multi: {
    policyLogps: 'policy',
    refLogps: 'data',
    lengths: 'data',
    scores: 'data',
    mask: 'data',
    policyPromptLogps: 'policy',
    refPromptLogps: 'data',
  },
  cross: {
    policyLogps: 'policy',
    lengths: 'data',
    refCrossLogps: 'data',
    crossRewards: 'data',
    rewards: 'data',
  },
});

/**
 * The inputs with every data tensor (reference log-probs, lengths, scores, rewards, masks)
 * behind `stopGradient` (keeping its host copy), so no gradient ever reaches the reference
 * model or the data, whatever the caller passed; policy tensors pass through. A tensor under
 * a field the layout does not declare is an error. Call it inside the loss's `tf.tidy`.
 */
export function detachInputs<T extends ObjectiveInputs>(inputs: T): T {
  const roles = INPUT_ROLES[inputs.kind] as Readonly<Record<string, InputRole>>;
  const out: Record<string, unknown> = { ...inputs };
  for (const [k, v] of Object.entries(inputs)) {
    if (!(v instanceof tf.Tensor)) continue;
    const role = roles[k];
    if (!role)
      throw new Error(
        `${inputs.kind} inputs have no field '${k}' (fields: ${Object.keys(roles).join(', ')})`,
      );
    if (role === 'data') {
      const host = hostCopyOf(v);
      out[k] = host ? withHostCopy(stopGradient(v), host) : stopGradient(v);
    }
  }
  return out as T;
}

/**
 * The body of every `Objective.loss`: checks the input kind, detaches every non-policy
 * input ({@link detachInputs}), runs `body` in a `tf.tidy` and reads the metrics
 * ({@link runLoss}). Errors thrown by `body` free its tensors.
 */
export function computeLoss<K extends InputKind>(
  objective: string,
  inputs: ObjectiveInputs,
  kind: K,
  body: (p: Extract<ObjectiveInputs, { kind: K }>) => {
    loss: tf.Scalar;
    metrics: Record<string, tf.Tensor | number>;
  },
): LossOutput {
  const checked = expectInputs(objective, inputs, kind);
  return runLoss(() => body(detachInputs(checked)));
}
