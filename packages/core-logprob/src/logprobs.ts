import * as tf from '@tensorflow/tfjs-core';
import { SEGMENT, type TokenBatch } from './batch.js';
import { detach, stopGradient } from './grad.js';
import { hostValues } from './host.js';

/** Any causal language model: `[B, T]` ids and mask in, `[B, T, V]` next-token logits out. */
export type CausalLM = (inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D) => tf.Tensor3D;

export interface LogprobOptions {
  /** also compute {@link SequenceLogprobs.responseWpoMean} (WPO weights) */
  wpo?: boolean;
  /**
   * Time positions per chunk. Peak extra memory is about one `[B, chunk, V]` block instead
   * of a full `[B, T, V]` log-softmax copy. Default 64; `Infinity` computes in one block.
   */
  chunkSize?: number;
}

/** Per-sequence results for a token batch (response and prompt parts from one pass). */
export interface SequenceLogprobs {
  /** [B, T] log p(x_t | x_<t) at each scored position t, 0 elsewhere */
  tokenLogps: tf.Tensor2D;
  /** [B] Σ over response tokens */
  responseSum: tf.Tensor1D;
  /** [B] number of scored response tokens */
  responseLength: tf.Tensor1D;
  /** [B] responseSum / responseLength */
  responseMean: tf.Tensor1D;
  /** [B] Σ over prompt tokens after the first one: log p(x_{2:} | x_1) */
  promptSum: tf.Tensor1D;
  /** [B] number of scored prompt tokens (prompt length − 1, or 0) */
  promptLength: tf.Tensor1D;
  /** [B] promptSum / max(promptLength, 1) */
  promptMean: tf.Tensor1D;
  /**
   * [B] WPO's mean aligned log-prob of the response (only with the `wpo` option), no gradient:
   * mean over response tokens of `log p(y_t) − log Σ_v p(v)²`
   */
  responseWpoMean?: tf.Tensor1D;
}

const DEFAULT_CHUNK = 64;

function chunkOf(opts: LogprobOptions | undefined, T: number): number {
  const c = opts?.chunkSize ?? DEFAULT_CHUNK;
  if (!(c >= 1)) throw new Error(`chunkSize must be >= 1, got ${c}`);
  return Number.isFinite(c) ? Math.min(Math.floor(c), T) : T;
}

/**
 * `out[b, t] = logits[b, t, targets[b, t]] − logsumexp_v logits[b, t, v]`, computed over
 * the time axis in chunks, with a custom gradient `dy·(onehot − softmax)` built chunk by
 * chunk too, so neither pass holds a full log-softmax copy of the logits.
 *
 * @param logits  [B, T, V]
 * @param targets [B, T] int32 token ids in [0, V)
 * @returns       [B, T]
 */
export function selectedLogprobs(
  logits: tf.Tensor3D,
  targets: tf.Tensor2D,
  options?: LogprobOptions,
): tf.Tensor2D {
  const [B, T, V] = logits.shape;
  if (targets.shape[0] !== B || targets.shape[1] !== T) {
    throw new Error(`targets shape [${targets.shape}] does not match logits [${logits.shape}]`);
  }
  // Chunks are row ranges of the flattened [B·T, V] view: contiguous, so a slice is one
  // block copy (a strided time slice of [B, T, V] is ~3× slower on wasm). `chunk` time
  // steps of every row make B·chunk rows, the same peak as a [B, chunk, V] block.
  const N = B * T;
  const rowsPerChunk = chunkOf(options, T) * B;
  const spans: [number, number][] = [];
  for (let s = 0; s < N; s += rowsPerChunk) spans.push([s, Math.min(rowsPerChunk, N - s)]);
  const flatTargets = (t: tf.Tensor) => tf.reshape(t, [N]);

  const forward = (x: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2 = tf.reshape(x, [N, V]);
    const tgtAll = flatTargets(targets);
    const picked: tf.Tensor[] = [];
    const lses: tf.Tensor[] = [];
    for (const [s, c] of spans) {
      const [p, l] = tf.tidy(() => {
        const xs = spans.length === 1 ? x2 : tf.slice(x2, [s, 0], [c, V]);
        const tgt = tf.slice(tgtAll, [s], [c]);
        const lse = tf.logSumExp(xs, 1);
        // Flat gather at n·V + target_n: reads c numbers, copies nothing of size V.
        const flatIndex = tf.add(tf.mul(tf.range(0, c, 1, 'int32'), tf.scalar(V, 'int32')), tgt);
        const at = tf.gather(tf.reshape(xs, [c * V]), flatIndex);
        return [tf.sub(at, lse), lse];
      });
      picked.push(p!);
      lses.push(l!);
    }
    const value = tf.reshape(spans.length === 1 ? picked[0]! : tf.concat(picked, 0), [B, T]);
    const lse = spans.length === 1 ? lses[0]! : tf.concat(lses, 0);
    // Save the targets too: the caller may dispose its copy before the backward pass.
    save([x2, lse, tgtAll]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs2, lseAll, tgtSaved] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dyFlat = tf.reshape(dy as tf.Tensor, [N]);
        const wasm = tf.getBackend() === 'wasm';
        const parts: tf.Tensor[] = [];
        for (const [s, c] of spans) {
          parts.push(
            tf.tidy(() => {
              // Each [c, V] temporary is freed as soon as the next one exists: at most three
              // live at once (a tidy alone would hold all six until the chunk ends).
              const whole = spans.length === 1;
              const xc = whole ? xs2 : tf.slice(xs2, [s, 0], [c, V]);
              const lc = tf.reshape(tf.slice(lseAll, [s], [c]), [c, 1]);
              const dyc = tf.reshape(tf.slice(dyFlat, [s], [c]), [c, 1]);
              const shifted = tf.sub(xc, lc);
              if (!whole) xc.dispose();
              const softmax = tf.exp(shifted);
              shifted.dispose();
              // On wasm an int32 one-hot then a cast: its OneHot kernel writes wrong values
              // for float32. Elsewhere float32 directly (one vocabulary-sized pass fewer).
              const tc = tf.slice(tgtSaved, [s], [c]);
              let onehot: tf.Tensor;
              if (wasm) {
                const onehotInt = tf.oneHot(tc, V);
                onehot = tf.cast(onehotInt, 'float32');
                onehotInt.dispose();
              } else onehot = tf.oneHot(tc, V, 1, 0, 'float32');
              const diff = tf.sub(onehot, softmax);
              tf.dispose([onehot, softmax]);
              return tf.mul(diff, dyc);
            }),
          );
        }
        const grad = tf.reshape(parts.length === 1 ? parts[0]! : tf.concat(parts, 0), [B, T, V]);
        if (parts.length > 1) tf.dispose(parts);
        return [grad];
      },
    };
  };
  const f = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Tensor2D;
}

/**
 * Per-token log-probs of the next token: `out[b, t] = log p(ids[b, t] | ids[b, <t])` for
 * t ≥ 1 (`out[b, 0] = 0`). Positions whose token or predecessor is padding are set to 0.
 *
 * @param logits        [B, T, V] (logits at position t predict token t + 1)
 * @param inputIds      [B, T] int32
 * @param attentionMask [B, T]
 */
export function tokenLogprobs(
  logits: tf.Tensor3D,
  inputIds: tf.Tensor2D,
  attentionMask: tf.Tensor2D,
  options?: LogprobOptions,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = inputIds.shape;
    if (T < 2) return tf.zeros([B, T]) as tf.Tensor2D;
    // targets[t] = ids[t + 1]; the last column predicts nothing (its value is discarded).
    const targets = tf.concat(
      [tf.slice(inputIds, [0, 1], [B, T - 1]), tf.zeros([B, 1], 'int32')],
      1,
    ) as tf.Tensor2D;
    const shifted = selectedLogprobs(logits, tf.cast(targets, 'int32'), options);
    const lp = tf.concat([tf.zeros([B, 1]), tf.slice(shifted, [0, 0], [B, T - 1])], 1);
    return tf.mul(lp, scoredMask(attentionMask)) as tf.Tensor2D;
  });
}

/**
 * WPO's per-position denominator `log Σ_v p(v)² = lse(2z) − 2·lse(z)` of the distribution
 * that predicts token t (from the logits at t − 1; position 0 gets 0), computed off the tape
 * in row chunks so no more than one `[B·chunk, V]` block lives at a time.
 *
 * @param logits [B, T, V]
 * @returns      [B, T]
 */
export function wpoLogDenominators(logits: tf.Tensor3D, options?: LogprobOptions): tf.Tensor2D {
  return detach(() => {
    const [B, T, V] = logits.shape;
    const N = B * T;
    const rows = chunkOf(options, T) * B;
    const flat = tf.reshape(logits, [N, V]);
    const parts: tf.Tensor[] = [];
    for (let s = 0; s < N; s += rows) {
      const c = Math.min(rows, N - s);
      parts.push(
        tf.tidy(() => {
          const z = tf.slice(flat, [s, 0], [c, V]);
          return tf.sub(tf.logSumExp(tf.mul(z, 2), 1), tf.mul(2, tf.logSumExp(z, 1)));
        }),
      );
    }
    const d = tf.reshape(parts.length === 1 ? parts[0]! : tf.concat(parts, 0), [B, T]);
    if (T < 2) return tf.zerosLike(d) as tf.Tensor2D;
    return tf.concat([tf.zeros([B, 1]), tf.slice(d, [0, 0], [B, T - 1])], 1) as tf.Tensor2D;
  });
}

/** [B, T] float: 1 where token t and token t−1 are both real (t ≥ 1), i.e. t can be scored. */
export function scoredMask(attentionMask: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = attentionMask.shape;
    const m = tf.cast(attentionMask, 'float32');
    if (T < 2) return tf.zeros([B, T]) as tf.Tensor2D;
    const prev = tf.concat([tf.zeros([B, 1]), tf.slice(m, [0, 0], [B, T - 1])], 1);
    return tf.mul(m, prev) as tf.Tensor2D;
  });
}

/**
 * Rows with nothing to score are an error. Computed on the host from the batch's host copies
 * (no device read for batches made by `toTensors`).
 */
function checkRows(batch: TokenBatch): void {
  const mask = hostValues(batch.attentionMask);
  const seg = hostValues(batch.segments);
  const [B, T] = batch.attentionMask.shape;
  for (let b = 0; b < B; b++) {
    let any = false;
    let scored = 0;
    for (let t = 0; t < T; t++) {
      const at = b * T + t;
      if (mask[at] === 1) any = true;
      if (t > 0 && mask[at] === 1 && mask[at - 1] === 1 && seg[at] === SEGMENT.response) scored++;
    }
    if (!any) throw new Error(`row ${b} of the batch is all padding`);
    if (scored === 0) {
      throw new Error(
        `row ${b} has no scored response token (an empty response, or an empty prompt with a one-token response)`,
      );
    }
  }
}

/**
 * From logits and the batch, in one pass: per-token log-probs and the per-sequence sums,
 * means and token counts of the response part and of the prompt part (prompt tokens after
 * the first, which RAO's partition estimate uses). Rows with nothing to score are an error.
 */
export function sequenceLogprobsFromLogits(
  logits: tf.Tensor3D,
  batch: TokenBatch,
  options?: LogprobOptions,
): SequenceLogprobs {
  checkRows(batch);
  const result = tf.tidy(() => {
    const tokenLogps = tokenLogprobs(logits, batch.inputIds, batch.attentionMask, options);
    const scored = scoredMask(batch.attentionMask);
    const seg = batch.segments;
    const respMask = tf.mul(scored, tf.cast(tf.equal(seg, SEGMENT.response), 'float32'));
    const promptMask = tf.mul(scored, tf.cast(tf.equal(seg, SEGMENT.prompt), 'float32'));
    const weights = batch.responseWeights ? tf.mul(respMask, batch.responseWeights) : respMask;
    const responseSum = tf.sum(tf.mul(tokenLogps, weights), 1) as tf.Tensor1D;
    const responseLength = tf.sum(respMask, 1) as tf.Tensor1D;
    const wpo = options?.wpo
      ? {
          responseWpoMean: detach(
            () =>
              tf.div(
                tf.sum(
                  tf.mul(tf.sub(tokenLogps, wpoLogDenominators(logits, options)), respMask),
                  1,
                ),
                tf.maximum(responseLength, 1),
              ) as tf.Tensor1D,
          ),
        }
      : {};
    const promptSum = tf.sum(tf.mul(tokenLogps, promptMask), 1) as tf.Tensor1D;
    const promptLength = tf.sum(promptMask, 1) as tf.Tensor1D;
    return {
      tokenLogps,
      responseSum,
      responseLength,
      responseMean: tf.div(responseSum, tf.maximum(responseLength, 1)) as tf.Tensor1D,
      promptSum,
      promptLength,
      promptMean: tf.div(promptSum, tf.maximum(promptLength, 1)) as tf.Tensor1D,
      ...wpo,
    };
  });
  return result;
}

export interface SequenceLogprobOptions extends LogprobOptions {
  /**
   * Reference-model mode: results carry no gradient. (Best practice is still to run the
   * reference outside the closure you differentiate, so its forward is not recorded.)
   */
  noGrad?: boolean;
}

/** Runs a causal model on the batch and returns {@link SequenceLogprobs}; the logits are freed. */
export function sequenceLogprobs(
  model: CausalLM,
  batch: TokenBatch,
  options: SequenceLogprobOptions = {},
): SequenceLogprobs {
  const logits = model(batch.inputIds, batch.attentionMask);
  try {
    const out = sequenceLogprobsFromLogits(logits, batch, options);
    if (!options.noGrad) return out;
    const detached = tf.tidy(() => {
      const d: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(out)) d[k] = stopGradient(v);
      return d;
    }) as unknown as SequenceLogprobs;
    disposeLogprobs(out);
    return detached;
  } finally {
    logits.dispose();
  }
}

export function disposeLogprobs(r: SequenceLogprobs): void {
  tf.dispose(Object.values(r));
}
