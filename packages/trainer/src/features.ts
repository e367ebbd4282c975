/**
 * From a batch of tokenized examples to an objective's inputs: which (prompt, response)
 * rows the policy must score, and how per-row log-probs assemble into the `*Inputs` layout
 * the objective's `needs(config).inputs` names.
 */

import type { ObjectiveInputs, ObjectiveNeeds } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import type { DataKind } from './data.js';
import type { Row, TokenizedExample } from './tokenize.js';

/** Per-row numbers the policy (differentiable) or the reference (cached) provides. */
export interface RowLogps {
  /** [N] response sums */
  sum: tf.Tensor1D;
  /** [N] prompt sums (tokens after the first) */
  prompt: tf.Tensor1D;
  /** [N] WPO mean aligned log-probs (policy only, when `needs.wpoWeights`) */
  wpo?: tf.Tensor1D;
}

/** Explicit reward for (prompt text, response text), or undefined to use data scores. */
export type RewardFn = (prompt: string, response: string) => number;

export interface BatchPlan {
  /** rows the policy and the reference score, in order */
  rows: Row[];
  /** [rows.length] response token counts */
  lengths: number[];
  /**
   * builds the objective's inputs from policy and reference per-row log-probs (inside a
   * tidy); `ref` is absent for reference-free objectives
   */
  assemble(policy: RowLogps, ref: RowLogps | undefined, refCross?: tf.Tensor2D): ObjectiveInputs;
  /** for cross inputs: the B×B (prompt i, response j) rows for the reference, row i·B + j */
  crossRows?: Row[];
}

const vec = (xs: number[]) => tf.tensor1d(xs, 'float32');

/** `values[rows]` as a product with a 0/1 selection matrix (tfjs-wasm has no gather gradient). */
function pickRows(values: tf.Tensor1D, rows: number[], n: number): tf.Tensor1D {
  const sel = new Float32Array(rows.length * n);
  rows.forEach((r, i) => {
    sel[i * n + r] = 1;
  });
  return tf.reshape(tf.matMul(tf.tensor2d(sel, [rows.length, n]), tf.reshape(values, [n, 1])), [
    rows.length,
  ]) as tf.Tensor1D;
}

/**
 * Plans one batch. `dataKind` is the dataset's feedback kind; `needs` the objective's.
 * Supported conversions: pairwise data → pairwise inputs, or multi (K = 2, needs scores);
 * binary/score data → pointwise inputs (KTO also gets mismatched (x_i, y_{i−1}) rows, as TRL), or
 * multi with K = 1, or cross (VAR); multi data → multi inputs, or cross over all its rows.
 */
export function planBatch(
  batch: TokenizedExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  reward?: RewardFn,
): BatchPlan {
  const plan = planLayout(batch, dataKind, needs, reward);
  if (needs.inputs === 'pairwise') return plan;
  return {
    ...plan,
    assemble: (p, r, cross) => {
      if (!r) throw new Error(`internal: ${needs.inputs} inputs need reference log-probs`);
      return plan.assemble(p, r, cross);
    },
  };
}

function planLayout(
  batch: TokenizedExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  reward?: RewardFn,
): BatchPlan {
  const B = batch.length;
  const lens = (rows: Row[]) => rows.map((r) => r.response.length);
  if (needs.inputs === 'pairwise') {
    if (dataKind !== 'pairwise')
      throw new Error(`pairwise inputs need pairwise data, got ${dataKind}`);
    // LD-DPO: tokens past the pair's shared length min(|y_w|, |y_l|) weigh α (TRL ld_alpha)
    const tail = (e: TokenizedExample) =>
      needs.ldAlpha === undefined
        ? {}
        : {
            tailWeight: {
              after: Math.min(e.responses[0]!.length, e.responses[1]!.length),
              alpha: needs.ldAlpha,
            },
          };
    const rows: Row[] = [
      ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[0]!, ...tail(e) })),
      ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[1]!, ...tail(e) })),
    ];
    const lengths = lens(rows);
    // scores from the data, or from the reward function on (prompt, chosen/rejected)
    const scores = batch.every((e) => e.scores)
      ? batch.map((e) => e.scores!)
      : reward
        ? batch.map((e) => [
            reward(e.promptText, e.responseTexts[0]!),
            reward(e.promptText, e.responseTexts[1]!),
          ])
        : undefined;
    if (needs.rewards && !scores) {
      const e = batch.find((x) => !x.scores)!;
      throw new Error(
        `line ${e.line}: this objective needs scores: 'score_chosen' and 'score_rejected' on every record (or a reward function)`,
      );
    }
    const scored = scores !== undefined;
    return {
      rows,
      lengths,
      assemble: (p, r) => {
        const [pc, pr] = tf.split(p.sum, 2) as [tf.Tensor1D, tf.Tensor1D];
        const ref = r ? (tf.split(r.sum, 2) as [tf.Tensor1D, tf.Tensor1D]) : undefined;
        const wpo = p.wpo ? (tf.split(p.wpo, 2) as [tf.Tensor1D, tf.Tensor1D]) : undefined;
        return {
          kind: 'pairwise',
          policyChosenLogps: pc,
          policyRejectedLogps: pr,
          ...(ref ? { refChosenLogps: ref[0], refRejectedLogps: ref[1] } : {}),
          ...(wpo ? { chosenWpoLogps: wpo[0], rejectedWpoLogps: wpo[1] } : {}),
          chosenLengths: vec(lengths.slice(0, B)),
          rejectedLengths: vec(lengths.slice(B)),
          ...(scored
            ? {
                chosenScores: vec(scores!.map((x) => x[0]!)),
                rejectedScores: vec(scores!.map((x) => x[1]!)),
              }
            : {}),
        };
      },
    };
  }
  if (needs.inputs === 'pointwise') {
    if (dataKind !== 'binary' && dataKind !== 'score' && dataKind !== 'mixed')
      throw new Error(`pointwise inputs need binary or score data, got ${dataKind}`);
    const own = batch.map((e) => ({ prompt: e.prompt, response: e.responses[0]! }));
    // KTO's KL estimate: prompt i with completion i − 1 of the batch (cyclic), as TRL 1.13's
    // KTO collator builds its mismatched pairs (`completions[-1:] + completions[:-1]`).
    const kl = needs.mismatchedPairs
      ? batch.map((e, i) => ({
          prompt: e.prompt,
          response: batch[(i - 1 + B) % B]!.responses[0]!,
        }))
      : [];
    const rows = [...own, ...kl];
    const lengths = lens(rows);
    // scores (or rewards) once per plan, not per step
    const scoreValues = batch.some((e) => e.kind === 'score')
      ? batch.map((e) =>
          e.kind !== 'score'
            ? 0
            : reward
              ? reward(e.promptText, e.responseTexts[0]!)
              : e.scores![0]!,
        )
      : undefined;
    return {
      rows,
      lengths,
      assemble: (p, r) => {
        const take = (t: tf.Tensor1D, s: number) => tf.slice(t, [s], [B]) as tf.Tensor1D;
        const inputs: ObjectiveInputs = {
          kind: 'pointwise',
          policyLogps: take(p.sum, 0),
          refLogps: take(r!.sum, 0),
          lengths: vec(lengths.slice(0, B)),
          // row by row (a mixed file holds both): binary rows carry labels, score rows scores
          labels: vec(batch.map((e) => (e.kind === 'binary' ? e.label! : 0))),
          isBinary: vec(batch.map((e) => (e.kind === 'binary' ? 1 : 0))),
          ...(scoreValues ? { scores: vec(scoreValues) } : {}),
        };
        if (needs.mismatchedPairs) {
          inputs.klPolicyLogps = take(p.sum, B);
          inputs.klRefLogps = take(r!.sum, B);
        }
        return inputs;
      },
    };
  }
  if (needs.inputs === 'multi') {
    const groups = batch.map((e) => {
      if (dataKind === 'pairwise' && !e.scores && !reward)
        throw new Error(
          `line ${e.line}: multi inputs from pairwise data need score_chosen/score_rejected (or a reward function)`,
        );
      return e.responses.map((resp, k) => ({
        resp,
        score: reward ? reward(e.promptText, e.responseTexts[k]!) : e.scores![k]!,
      }));
    });
    const K = Math.max(...groups.map((g) => g.length));
    const rows: Row[] = [];
    const slot: number[] = [];
    groups.forEach((g, i) => {
      g.forEach((x, k) => {
        rows.push({ prompt: batch[i]!.prompt, response: x.resp });
        slot.push(i * K + k);
      });
    });
    const lengths = lens(rows);
    const N = rows.length;
    const select = new Float32Array(B * K * N);
    slot.forEach((s, n) => {
      select[s * N + n] = 1;
    });
    const firstRow = groups.map((_, i) => slot.findIndex((s) => Math.floor(s / K) === i));
    const grid = (f: (i: number, k: number) => number) =>
      tf.tensor2d(
        Array.from({ length: B }, (_, i) => Array.from({ length: K }, (_, k) => f(i, k))),
      );
    const toGrid = (t: tf.Tensor1D) =>
      tf.reshape(tf.matMul(tf.tensor2d(select, [B * K, N]), tf.reshape(t, [N, 1])), [
        B,
        K,
      ]) as tf.Tensor2D;
    return {
      rows,
      lengths,
      assemble: (p, r) => ({
        kind: 'multi',
        policyLogps: toGrid(p.sum),
        refLogps: toGrid(r!.sum),
        lengths: grid((i, k) => (k < groups[i]!.length ? lengths[slot.indexOf(i * K + k)]! : 1)),
        scores: grid((i, k) => groups[i]![k]?.score ?? 0),
        mask: grid((i, k) => (k < groups[i]!.length ? 1 : 0)),
        policyPromptLogps: pickRows(p.prompt, firstRow, N),
        refPromptLogps: pickRows(r!.prompt, firstRow, N),
      }),
    };
  }
  // cross (VAR): every (prompt, completion) row of the batch — all K completions of multi
  // data, the chosen one of a pair, the one of binary/score data — against every response.
  const items = batch.flatMap((e) =>
    (dataKind === 'multi' ? e.responses.map((_, k) => k) : [0]).map((k) => ({
      row: { prompt: e.prompt, response: e.responses[k]! },
      p: e.promptText,
      r: e.responseTexts[k]!,
      reward: reward
        ? reward(e.promptText, e.responseTexts[k]!)
        : (e.scores?.[k] ?? (e.label !== undefined ? e.label : Number.NaN)),
      line: e.line,
    })),
  );
  const bad = items.find((x) => !Number.isFinite(x.reward));
  if (bad)
    throw new Error(
      `line ${bad.line}: VAR needs a reward per response: scores in the data or a reward function`,
    );
  const pairs = items.map((x) => x.row);
  const rewards = items.map((x) => x.reward);
  const crossRows: Row[] = [];
  for (const a of pairs)
    for (const b of pairs) crossRows.push({ prompt: a.prompt, response: b.response });
  // r(x_i, y_j) once per plan (plans are made once per fixed batch), not once per step
  const crossRewards = reward ? items.map((a) => items.map((b) => reward(a.p, b.r))) : undefined;
  const lengths = lens(pairs);
  return {
    rows: pairs,
    lengths,
    crossRows,
    assemble: (p, _r, refCross) => ({
      kind: 'cross',
      policyLogps: p.sum,
      lengths: vec(lengths),
      refCrossLogps: refCross!,
      rewards: vec(rewards),
      ...(crossRewards ? { crossRewards: tf.tensor2d(crossRewards) } : {}),
    }),
  };
}
