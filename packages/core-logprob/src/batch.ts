import * as tf from '@tensorflow/tfjs-core';
import { withHostCopy } from './host.js';

/** Segment ids in a token batch: padding is neither prompt nor response. */
export const SEGMENT = { pad: 0, prompt: 1, response: 2 } as const;

export type Padding = 'right' | 'left';
/** Which end of an over-long prompt survives (TRL's `truncation_mode`). Responses always keep their start. */
export type TruncationMode = 'keep_end' | 'keep_start';

export interface BatchOptions {
  /** token id written into padding positions (masked out everywhere) */
  padTokenId: number;
  /** default `right` (training); `left` for generation */
  padding?: Padding;
  /** prompt + response tokens at most (TRL `max_length`) */
  maxLength?: number;
  /** prompt tokens at most (TRL `max_prompt_length`) */
  maxPromptLength?: number;
  /** default `keep_end`: keep the last prompt tokens, as TRL does */
  truncationMode?: TruncationMode;
  /**
   * `keep_end` keeps the prompt's first token too (its BOS or shared first token, which RAO's
   * partition estimate needs), then the last ones
   */
  keepFirstPromptToken?: boolean;
}

/** One tokenized example: prompt ids then response ids. */
export interface TokenExample {
  prompt: readonly number[];
  response: readonly number[];
  /**
   * LD-DPO (TRL `ld_alpha`): response tokens from index `after` on (0-based, after
   * truncation) weigh `alpha` in the response log-prob sum; earlier ones weigh 1
   */
  tailWeight?: { after: number; alpha: number };
}

/** A padded batch on the host, before it becomes tensors. Row-major `[B, T]` arrays. */
export interface TokenBatchData {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  /** SEGMENT per position */
  segments: Int32Array;
  /** prompt tokens kept per row (after truncation) */
  promptLengths: number[];
  /** response tokens kept per row (after truncation) */
  responseLengths: number[];
  /** whether the row lost tokens to truncation */
  truncated: boolean[];
  /** per-position weight of response tokens in the sums (only when an example has `tailWeight`) */
  responseWeights?: Float32Array;
}

/** The tensors a causal model and the log-prob functions consume. */
export interface TokenBatch {
  /** [B, T] int32 */
  inputIds: tf.Tensor2D;
  /** [B, T] int32, 1 on real tokens */
  attentionMask: tf.Tensor2D;
  /** [B, T] int32, SEGMENT ids */
  segments: tf.Tensor2D;
  /** [B, T] float32 weights of response tokens in the sums (LD-DPO); absent = all 1 */
  responseWeights?: tf.Tensor2D;
}

function checkInt(name: string, v: number | undefined, min: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`batch option ${name} must be an integer >= ${min}, got ${v}`);
  }
}

/** A prompt cut to `keep` tokens: its start (`keep_start`) or its end (`keep_end`, optionally keeping the first token). */
export function truncatePrompt(
  p: readonly number[],
  keep: number,
  mode: TruncationMode,
  keepFirst = false,
): number[] {
  if (p.length <= keep) return [...p];
  if (mode === 'keep_start') return p.slice(0, keep);
  if (keepFirst && keep >= 1) return [p[0]!, ...p.slice(p.length - (keep - 1))];
  return p.slice(p.length - keep);
}

/**
 * Truncates one example as TRL does: the prompt to `maxPromptLength` (keeping its end by
 * default), then the response (keeping its start) so prompt + response fit `maxLength`. A
 * response never drops below one token: if the prompt alone fills `maxLength`, the prompt
 * is cut further.
 */
export function truncateExample(
  ex: TokenExample,
  opts: Pick<
    BatchOptions,
    'maxLength' | 'maxPromptLength' | 'truncationMode' | 'keepFirstPromptToken'
  >,
): { prompt: number[]; response: number[]; truncated: boolean } {
  const mode = opts.truncationMode ?? 'keep_end';
  const first = opts.keepFirstPromptToken ?? false;
  let prompt =
    opts.maxPromptLength !== undefined
      ? truncatePrompt(ex.prompt, opts.maxPromptLength, mode, first)
      : [...ex.prompt];
  let response = [...ex.response];
  if (opts.maxLength !== undefined && prompt.length + response.length > opts.maxLength) {
    if (prompt.length > opts.maxLength - 1) {
      prompt = truncatePrompt(prompt, opts.maxLength - 1, mode, first);
    }
    response = response.slice(0, opts.maxLength - prompt.length);
  }
  const truncated = prompt.length !== ex.prompt.length || response.length !== ex.response.length;
  return { prompt, response, truncated };
}

/**
 * Pads token examples into one `[B, T]` batch with a prompt/response segment mask.
 * Errors name the example index: an empty response, a row with no tokens, bad ids.
 */
export function buildBatch(examples: readonly TokenExample[], opts: BatchOptions): TokenBatchData {
  if (examples.length === 0) throw new Error('buildBatch: no examples');
  checkInt('padTokenId', opts.padTokenId, 0);
  checkInt('maxLength', opts.maxLength, 1);
  checkInt('maxPromptLength', opts.maxPromptLength, 0);
  const padding = opts.padding ?? 'right';
  if (padding !== 'right' && padding !== 'left') {
    throw new Error(`batch option padding must be 'right' or 'left', got '${padding}'`);
  }
  const mode = opts.truncationMode ?? 'keep_end';
  if (mode !== 'keep_end' && mode !== 'keep_start') {
    throw new Error(
      `batch option truncationMode must be 'keep_end' or 'keep_start', got '${mode}'`,
    );
  }
  const rows = examples.map((ex, i) => {
    if (ex.response.length === 0) {
      throw new Error(`example ${i}: empty response (a response needs at least one token)`);
    }
    if (ex.prompt.length === 0 && ex.response.length < 2) {
      throw new Error(
        `example ${i}: empty prompt and a one-token response leave no token to score (the first token of a row has no prediction)`,
      );
    }
    for (const [field, ids] of [
      ['prompt', ex.prompt],
      ['response', ex.response],
    ] as const) {
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0) {
          throw new Error(`example ${i}: ${field} token id ${id} is not a non-negative integer`);
        }
      }
    }
    return { ...truncateExample(ex, { ...opts, truncationMode: mode }), tail: ex.tailWeight };
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.prompt.length + r.response.length));
  const inputIds = new Int32Array(B * T).fill(opts.padTokenId);
  const attentionMask = new Int32Array(B * T);
  const segments = new Int32Array(B * T);
  const weighted = rows.some((r) => r.tail);
  const responseWeights = weighted ? new Float32Array(B * T) : undefined;
  rows.forEach((r, b) => {
    const n = r.prompt.length + r.response.length;
    const start = padding === 'left' ? T - n : 0;
    const ids = [...r.prompt, ...r.response];
    for (let k = 0; k < n; k++) {
      const at = b * T + start + k;
      inputIds[at] = ids[k]!;
      attentionMask[at] = 1;
      segments[at] = k < r.prompt.length ? SEGMENT.prompt : SEGMENT.response;
      if (responseWeights && k >= r.prompt.length) {
        const j = k - r.prompt.length;
        responseWeights[at] = r.tail && j >= r.tail.after ? r.tail.alpha : 1;
      }
    }
  });
  return {
    batchSize: B,
    seqLen: T,
    inputIds,
    attentionMask,
    segments,
    promptLengths: rows.map((r) => r.prompt.length),
    responseLengths: rows.map((r) => r.response.length),
    truncated: rows.map((r) => r.truncated),
    ...(responseWeights ? { responseWeights } : {}),
  };
}

/**
 * Uploads a host batch as int32 tensors, each registered with its host copy (so position ids
 * and row checks need no device read). The caller owns (and disposes) them.
 */
export function toTensors(data: TokenBatchData): TokenBatch {
  const shape: [number, number] = [data.batchSize, data.seqLen];
  return {
    inputIds: withHostCopy(tf.tensor2d(data.inputIds, shape, 'int32'), data.inputIds),
    attentionMask: withHostCopy(
      tf.tensor2d(data.attentionMask, shape, 'int32'),
      data.attentionMask,
    ),
    segments: withHostCopy(tf.tensor2d(data.segments, shape, 'int32'), data.segments),
    ...(data.responseWeights
      ? { responseWeights: tf.tensor2d(data.responseWeights, shape, 'float32') }
      : {}),
  };
}

export function disposeBatch(batch: TokenBatch): void {
  tf.dispose(Object.values(batch));
}

/** A pairwise example as TRL's DPO data has it, tokenized. */
export interface PairExample {
  prompt: readonly number[];
  chosen: readonly number[];
  rejected: readonly number[];
}

/**
 * The concatenated pairwise batch: rows `0..B-1` are prompt+chosen, rows `B..2B-1` are
 * prompt+rejected, one padded length, so one forward pass scores both. Split results with
 * {@link splitPairwise}.
 */
export function buildPairwiseBatch(
  pairs: readonly PairExample[],
  opts: BatchOptions,
): TokenBatchData {
  return buildBatch(
    [
      ...pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })),
      ...pairs.map((p) => ({ prompt: p.prompt, response: p.rejected })),
    ],
    opts,
  );
}

/** Splits a tensor whose first axis is `[chosen rows; rejected rows]` into its halves. */
export function splitPairwise<T extends tf.Tensor>(t: T): { chosen: T; rejected: T } {
  const n = t.shape[0]!;
  if (n % 2 !== 0) throw new Error(`splitPairwise: first axis has odd size ${n}`);
  const [chosen, rejected] = tf.split(t, 2, 0) as [T, T];
  return { chosen, rejected };
}

/** Row `i·B + j` of a cross batch holds prompt `i` with response `j`. */
export function crossRow(i: number, j: number, batchSize: number): number {
  return i * batchSize + j;
}

/**
 * VAR's cross batch: every prompt `i` of a batch with every response `j` (B×B rows, row
 * `i·B + j`; see {@link crossRow}). Reshape per-row results with {@link toCrossMatrix}.
 */
export function buildCrossBatch(
  examples: readonly TokenExample[],
  opts: BatchOptions,
): TokenBatchData {
  const rows: TokenExample[] = [];
  for (const a of examples)
    for (const b of examples) rows.push({ prompt: a.prompt, response: b.response });
  return buildBatch(rows, opts);
}

/** `[B·B]` per-row values of a cross batch → `[B, B]` (row = prompt, column = response). */
export function toCrossMatrix(values: tf.Tensor1D): tf.Tensor2D {
  const n = values.shape[0];
  const b = Math.round(Math.sqrt(n));
  if (b * b !== n) throw new Error(`toCrossMatrix: ${n} rows is not a square B×B cross batch`);
  return tf.reshape(values, [b, b]);
}

/** K responses for one prompt (UltraFeedback-style); K may differ between prompts. */
export interface MultiExample {
  prompt: readonly number[];
  responses: readonly (readonly number[])[];
}

/** A multi-response batch: one row per (prompt, response); `slots` maps rows into `[B, K]`. */
export interface MultiBatchData extends TokenBatchData {
  prompts: number;
  /** the largest K in the batch */
  k: number;
  /** for row n: [prompt index, response slot] */
  slots: [number, number][];
  /** [B·K] 1 where the slot holds a response */
  mask: Float32Array;
}

export function buildMultiBatch(
  examples: readonly MultiExample[],
  opts: BatchOptions,
): MultiBatchData {
  const rows: TokenExample[] = [];
  const slots: [number, number][] = [];
  examples.forEach((ex, i) => {
    if (ex.responses.length === 0) throw new Error(`example ${i}: no responses`);
    ex.responses.forEach((r, k) => {
      rows.push({ prompt: ex.prompt, response: r });
      slots.push([i, k]);
    });
  });
  const k = Math.max(...examples.map((e) => e.responses.length));
  const mask = new Float32Array(examples.length * k);
  for (const [i, s] of slots) mask[i * k + s] = 1;
  return { ...buildBatch(rows, opts), prompts: examples.length, k, slots, mask };
}

/**
 * `[N]` per-row values of a multi batch → `[B, K]`, zero in empty slots. Differentiable:
 * a product with a constant 0/1 selection matrix (tfjs-wasm has no gather gradient).
 */
export function toMultiMatrix(
  values: tf.Tensor1D,
  layout: Pick<MultiBatchData, 'prompts' | 'k' | 'slots'>,
): tf.Tensor2D {
  return tf.tidy(() => {
    const n = layout.slots.length;
    if (values.shape[0] !== n) {
      throw new Error(`toMultiMatrix: ${values.shape[0]} values for ${n} rows`);
    }
    const select = new Float32Array(layout.prompts * layout.k * n);
    layout.slots.forEach(([i, s], row) => {
      select[(i * layout.k + s) * n + row] = 1;
    });
    const picked = tf.matMul(
      tf.tensor2d(select, [layout.prompts * layout.k, n]),
      tf.reshape(values, [n, 1]),
    );
    return tf.reshape(picked, [layout.prompts, layout.k]) as tf.Tensor2D;
  });
}

/**
 * RAO needs every prompt to start with the same token `t0` (BOS or the chat template's
 * first token): the prompt log-ratio is taken over the tokens after it. Returns `t0` or
 * throws naming the first row that differs.
 */
export function sharedFirstToken(data: TokenBatchData): number {
  let first: number | undefined;
  for (let b = 0; b < data.batchSize; b++) {
    let tok: number | undefined;
    for (let t = 0; t < data.seqLen; t++) {
      const at = b * data.seqLen + t;
      if (data.attentionMask[at] === 1) {
        if (data.segments[at] === SEGMENT.prompt) tok = data.inputIds[at];
        break;
      }
    }
    if (tok === undefined)
      throw new Error(
        `row ${b}: empty prompt; RAO needs a prompt starting with a shared first token`,
      );
    if (first === undefined) first = tok;
    else if (tok !== first) {
      throw new Error(
        `row ${b}: prompt starts with token ${tok} but row 0 starts with ${first}; RAO needs a shared first token (BOS or the chat template's first token)`,
      );
    }
  }
  return first!;
}
