/**
 * The one home of each input layout's builder: from tokenized examples to the rows a model
 * scores and, given those rows' log-probs, the `*Inputs` an objective consumes (the types
 * and each field's role are in `objective.ts`). A plan is made once per fixed batch: its data
 * tensors (lengths, labels, scores, masks, selection matrices) and the reference log-probs
 * attached to it are uploaded once, with host copies, and reused every step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TokenExample } from './batch.js';
import { hostTensor } from './host.js';
import type { FeedbackKind, InputKind, ObjectiveInputs, ObjectiveNeeds } from './objective.js';

/** A dataset's kind: one feedback kind, or binary and score records mixed (UNA's mixed mode). */
export type DataKind = FeedbackKind | 'mixed';

/** One example as the layouts take it: token ids and the numbers that came with it. */
export interface LayoutExample {
  /** the record's own kind (a mixed file holds binary and score records) */
  kind: FeedbackKind;
  /** line in the data file, for errors */
  line: number;
  prompt: readonly number[];
  /** pairwise: [chosen, rejected]; binary/score: [completion]; multi: the completions */
  responses: readonly (readonly number[])[];
  /** pairwise: [score_chosen, score_rejected] when known; score: [score]; multi: one per response */
  scores?: readonly number[];
  label?: 0 | 1;
}

/** Per-row log-probs of a plan's rows: the policy's (differentiable) or the reference's. */
export interface RowLogps {
  /** [N] response sums */
  sum: tf.Tensor1D;
  /** [N] prompt sums (tokens after the first) */
  prompt: tf.Tensor1D;
  /** [N] WPO mean aligned log-probs (policy only, when `needs.wpoWeights`) */
  wpo?: tf.Tensor1D;
}

/** Reference numbers of a plan's rows, from the reference pass or its cache. */
export interface ReferenceValues {
  /** per row of `rows`: response sums and prompt sums */
  sum: Float32Array;
  prompt: Float32Array;
  /** per row of `crossRows` (cross layout): response sums, row i·N + j */
  cross?: Float32Array;
}

export interface LayoutPlan {
  readonly kind: InputKind;
  /** rows the policy (and the reference) score, in order */
  readonly rows: readonly TokenExample[];
  /** cross layout: the N×N (prompt i, response j) rows only the reference scores, row i·N + j */
  readonly crossRows?: readonly TokenExample[];
  /** whether reference values are attached */
  readonly hasReference: boolean;
  /** attaches (or replaces) the reference's numbers: uploaded once, used by every `assemble` */
  setReference(values: ReferenceValues): void;
  /** the objective's inputs from the policy's log-probs of `rows` (call inside a tidy) */
  assemble(policy: RowLogps): ObjectiveInputs;
  /** frees the plan's tensors */
  dispose(): void;
}

/** Extra numbers a layout may take: VAR's r(x_i, y_j) for every pair of the batch's rows. */
export interface LayoutExtras {
  crossRewards?: readonly (readonly number[])[];
}

type Builder = (
  examples: readonly LayoutExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  extras: LayoutExtras,
) => Pick<LayoutPlan, 'kind' | 'rows' | 'crossRows'> & {
  tensors: tf.Tensor[];
  assemble(policy: RowLogps, ref: AttachedRef | undefined): ObjectiveInputs;
};

interface AttachedRef {
  sum: tf.Tensor1D;
  prompt: tf.Tensor1D;
  cross?: tf.Tensor2D;
}

const lengthsOf = (rows: readonly TokenExample[]) => rows.map((r) => r.response.length);

/**
 * A constant 0/1 selection `[rows.length, n]`: output i takes input `rows[i]`, or is 0 where
 * `rows[i]` is −1 (a product, since tfjs-wasm has no gather gradient).
 */
function selection(rows: readonly number[], n: number): tf.Tensor2D {
  const sel = new Float32Array(rows.length * n);
  rows.forEach((r, i) => {
    if (r >= 0) sel[i * n + r] = 1;
  });
  return hostTensor(sel, [rows.length, n]);
}

const select = (sel: tf.Tensor2D, values: tf.Tensor1D): tf.Tensor1D =>
  tf.reshape(tf.matMul(sel, tf.reshape(values, [-1, 1])), [sel.shape[0]]) as tf.Tensor1D;

function requireRef(kind: InputKind, ref: AttachedRef | undefined): AttachedRef {
  if (!ref) throw new Error(`${kind} inputs need reference log-probs: none are attached`);
  return ref;
}

/** Pairwise data → `[B]` chosen/rejected inputs; rows are [chosen rows; rejected rows]. */
const pairwise: Builder = (batch, dataKind, needs) => {
  if (dataKind !== 'pairwise')
    throw new Error(`pairwise inputs need pairwise data, got ${dataKind}`);
  const B = batch.length;
  // LD-DPO: tokens past the pair's shared length min(|y_w|, |y_l|) weigh α (TRL ld_alpha)
  const tail = (e: LayoutExample) =>
    needs.ldAlpha === undefined
      ? {}
      : {
          tailWeight: {
            after: Math.min(e.responses[0]!.length, e.responses[1]!.length),
            alpha: needs.ldAlpha,
          },
        };
  const rows: TokenExample[] = [0, 1].flatMap((k) =>
    batch.map((e) => ({ prompt: e.prompt, response: e.responses[k]!, ...tail(e) })),
  );
  const scored = batch.every((e) => e.scores);
  if (needs.rewards && !scored) {
    const e = batch.find((x) => !x.scores)!;
    throw new Error(
      `line ${e.line}: this objective needs scores: 'score_chosen' and 'score_rejected' on every record (or a reward function)`,
    );
  }
  const lengths = lengthsOf(rows);
  const chosenLengths = hostTensor<tf.Rank.R1>(lengths.slice(0, B), [B]);
  const rejectedLengths = hostTensor<tf.Rank.R1>(lengths.slice(B), [B]);
  const scores = scored
    ? {
        chosenScores: hostTensor<tf.Rank.R1>(
          batch.map((e) => e.scores![0]!),
          [B],
        ),
        rejectedScores: hostTensor<tf.Rank.R1>(
          batch.map((e) => e.scores![1]!),
          [B],
        ),
      }
    : undefined;
  const halves = (t: tf.Tensor1D) => tf.split(t, 2) as [tf.Tensor1D, tf.Tensor1D];
  return {
    kind: 'pairwise',
    rows,
    tensors: [chosenLengths, rejectedLengths, ...Object.values(scores ?? {})],
    assemble: (p, r) => {
      const [pc, pr] = halves(p.sum);
      const ref = r ? halves(r.sum) : undefined;
      const wpo = p.wpo ? halves(p.wpo) : undefined;
      return {
        kind: 'pairwise',
        policyChosenLogps: pc,
        policyRejectedLogps: pr,
        ...(ref ? { refChosenLogps: ref[0], refRejectedLogps: ref[1] } : {}),
        ...(wpo ? { chosenWpoLogps: wpo[0], rejectedWpoLogps: wpo[1] } : {}),
        chosenLengths,
        rejectedLengths,
        ...scores,
      };
    },
  };
};

/**
 * Binary / score data → `[B]` pointwise inputs, row by row (a mixed file holds both). KTO's
 * KL estimate also scores prompt i with completion i − 1 of the batch (cyclic), as TRL
 * 1.13's KTO collator builds its mismatched pairs (`completions[-1:] + completions[:-1]`).
 */
const pointwise: Builder = (batch, dataKind, needs) => {
  if (dataKind !== 'binary' && dataKind !== 'score' && dataKind !== 'mixed')
    throw new Error(`pointwise inputs need binary or score data, got ${dataKind}`);
  const B = batch.length;
  const own = batch.map((e) => ({ prompt: e.prompt, response: e.responses[0]! }));
  const kl = needs.mismatchedPairs
    ? batch.map((e, i) => ({ prompt: e.prompt, response: batch[(i - 1 + B) % B]!.responses[0]! }))
    : [];
  const rows = [...own, ...kl];
  const vec = (xs: number[]) => hostTensor<tf.Rank.R1>(xs, [B]);
  const data = {
    lengths: vec(lengthsOf(own)),
    labels: vec(batch.map((e) => (e.kind === 'binary' ? e.label! : 0))),
    isBinary: vec(batch.map((e) => (e.kind === 'binary' ? 1 : 0))),
    ...(batch.some((e) => e.kind === 'score')
      ? { scores: vec(batch.map((e) => (e.kind === 'score' ? e.scores![0]! : 0))) }
      : {}),
  };
  return {
    kind: 'pointwise',
    rows,
    tensors: Object.values(data),
    assemble: (p, r) => {
      const ref = requireRef('pointwise', r);
      const take = (t: tf.Tensor1D, s: number) => tf.slice(t, [s], [B]) as tf.Tensor1D;
      return {
        kind: 'pointwise',
        policyLogps: take(p.sum, 0),
        refLogps: take(ref.sum, 0),
        ...data,
        ...(needs.mismatchedPairs
          ? { klPolicyLogps: take(p.sum, B), klRefLogps: take(ref.sum, B) }
          : {}),
      };
    },
  };
};

/** Multi data (or pairwise with scores, K = 2; binary/score, K = 1) → `[B, K]` inputs. */
const multi: Builder = (batch) => {
  const groups = batch.map((e) => {
    if (!e.scores)
      throw new Error(
        `line ${e.line}: multi inputs need a score per response (score_chosen/score_rejected on pairwise data, or a reward function)`,
      );
    return e.responses.map((resp, k) => ({ resp, score: e.scores![k]! }));
  });
  const B = batch.length;
  const K = Math.max(...groups.map((g) => g.length));
  const rows: TokenExample[] = [];
  const slot: number[] = [];
  groups.forEach((g, i) => {
    g.forEach((x, k) => {
      rows.push({ prompt: batch[i]!.prompt, response: x.resp });
      slot.push(i * K + k);
    });
  });
  const N = rows.length;
  const lengths = lengthsOf(rows);
  const grid = (f: (i: number, k: number) => number) =>
    hostTensor<tf.Rank.R2>(
      Array.from({ length: B * K }, (_, s) => f(Math.floor(s / K), s % K)),
      [B, K],
    );
  // [B·K, N]: slot s takes row n; firstRow: each prompt's first row (its prompt log-probs)
  const toGrid = selection(
    Array.from({ length: B * K }, (_, s) => slot.indexOf(s)),
    N,
  );
  const firstRow = selection(
    groups.map((_, i) => slot.findIndex((s) => Math.floor(s / K) === i)),
    N,
  );
  const data = {
    lengths: grid((i, k) => (k < groups[i]!.length ? lengths[slot.indexOf(i * K + k)]! : 1)),
    scores: grid((i, k) => groups[i]![k]?.score ?? 0),
    mask: grid((i, k) => (k < groups[i]!.length ? 1 : 0)),
  };
  const gridOf = (t: tf.Tensor1D) => tf.reshape(select(toGrid, t), [B, K]) as tf.Tensor2D;
  return {
    kind: 'multi',
    rows,
    tensors: [toGrid, firstRow, ...Object.values(data)],
    assemble: (p, r) => {
      const ref = requireRef('multi', r);
      return {
        kind: 'multi',
        policyLogps: gridOf(p.sum),
        refLogps: gridOf(ref.sum),
        ...data,
        policyPromptLogps: select(firstRow, p.prompt),
        refPromptLogps: select(firstRow, ref.prompt),
      };
    },
  };
};

/**
 * Cross (VAR): every (prompt, completion) row of the batch — all K completions of multi data,
 * the chosen one of a pair, the one of binary/score data — against every response. The
 * reward of a row is its score (or label); `extras.crossRewards` gives r(x_i, y_j).
 */
const cross: Builder = (batch, dataKind, _needs, extras) => {
  const items = batch.flatMap((e) =>
    (dataKind === 'multi' ? e.responses.map((_, k) => k) : [0]).map((k) => ({
      row: { prompt: e.prompt, response: e.responses[k]! },
      reward: e.scores?.[k] ?? (e.label !== undefined ? e.label : Number.NaN),
      line: e.line,
    })),
  );
  const bad = items.find((x) => !Number.isFinite(x.reward));
  if (bad)
    throw new Error(
      `line ${bad.line}: VAR needs a reward per response: scores in the data or a reward function`,
    );
  const rows = items.map((x) => x.row);
  const N = rows.length;
  const crossRows: TokenExample[] = [];
  for (const a of rows)
    for (const b of rows) crossRows.push({ prompt: a.prompt, response: b.response });
  const cr = extras.crossRewards;
  if (cr && (cr.length !== N || cr.some((r) => r.length !== N)))
    throw new Error(`crossRewards must be ${N}×${N} (one per pair of the batch's rows)`);
  const data = {
    lengths: hostTensor<tf.Rank.R1>(lengthsOf(rows), [N]),
    rewards: hostTensor<tf.Rank.R1>(
      items.map((x) => x.reward),
      [N],
    ),
    ...(cr ? { crossRewards: hostTensor<tf.Rank.R2>(cr.flat(), [N, N]) } : {}),
  };
  return {
    kind: 'cross',
    rows,
    crossRows,
    tensors: Object.values(data),
    assemble: (p, r) => {
      const ref = requireRef('cross', r);
      if (!ref.cross)
        throw new Error('cross inputs need the reference log-probs of the cross rows');
      return { kind: 'cross', policyLogps: p.sum, refCrossLogps: ref.cross, ...data };
    },
  };
};

/** The builder of every layout, by `needs.inputs`. */
export const LAYOUTS: Readonly<Record<InputKind, Builder>> = Object.freeze({
  pairwise,
  pointwise,
  multi,
  cross,
});

/**
 * Plans one fixed batch for an objective: checks that the data fit the layout `needs.inputs`
 * names (errors name the example's line), uploads the data tensors once, and returns the
 * rows to score and the assembler. Dispose the plan when the batch is no longer used.
 */
export function planLayout(
  examples: readonly LayoutExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  extras: LayoutExtras = {},
): LayoutPlan {
  if (examples.length === 0) throw new Error('planLayout: empty batch');
  const built = LAYOUTS[needs.inputs](examples, dataKind, needs, extras);
  let ref: AttachedRef | undefined;
  const freeRef = () => {
    if (ref) tf.dispose([ref.sum, ref.prompt, ...(ref.cross ? [ref.cross] : [])]);
    ref = undefined;
  };
  return {
    kind: built.kind,
    rows: built.rows,
    ...(built.crossRows ? { crossRows: built.crossRows } : {}),
    get hasReference() {
      return ref !== undefined;
    },
    setReference(v) {
      const n = built.rows.length;
      if (v.sum.length !== n || v.prompt.length !== n)
        throw new Error(`setReference: ${v.sum.length} values for ${n} rows`);
      freeRef();
      const m = built.crossRows?.length;
      if (m !== undefined && v.cross?.length !== m)
        throw new Error(`setReference: the cross layout needs ${m} cross-row values`);
      ref = {
        sum: hostTensor(v.sum, [n]),
        prompt: hostTensor(v.prompt, [n]),
        ...(m !== undefined ? { cross: hostTensor(v.cross!, [n, n]) } : {}),
      } as AttachedRef;
    },
    assemble: (policy) => built.assemble(policy, ref),
    dispose() {
      freeRef();
      tf.dispose(built.tensors);
    },
  };
}
