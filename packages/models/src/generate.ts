import { mulberry32, readTidy } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { type CausalLM, disposeCache, type KVCache } from './model.js';

export interface GenerateOptions {
  /** tokens to generate at most (default 32) */
  maxNewTokens?: number;
  /** 0 or `greedy: true` → argmax; otherwise softmax(logits / temperature). Default 1 */
  temperature?: number;
  greedy?: boolean;
  /** keep the k most likely tokens (0 = off) */
  topK?: number;
  /** nucleus sampling: keep the smallest set with probability ≥ p (1 = off) */
  topP?: number;
  /** seed of the per-row samplers (row i uses seed + i, so batching does not change samples) */
  seed?: number;
  /** generation stops at any of these ids (included in the output) */
  stopTokenIds?: readonly number[];
  /** generation stops once the decoded continuation contains one (cut before it); needs `decode` */
  stopStrings?: readonly string[];
  decode?: (ids: readonly number[]) => string;
  /** id written into left padding (default 0; never attended) */
  padTokenId?: number;
  /** use the KV cache (default true); false recomputes the full forward every step */
  useCache?: boolean;
}

export interface GenerateResult {
  /** new tokens per prompt (a stop token, or the tokens completing a stop string, included) */
  ids: number[][];
  /** decoded continuation per prompt, when `decode` was given (cut before a stop string) */
  texts?: string[];
  /** why each row ended */
  finish: ('stop_token' | 'stop_string' | 'length')[];
}

/** Picks the next token from one row of logits (host side, float64). */
export function sampleToken(
  logits: Float32Array | number[],
  o: GenerateOptions,
  random: () => number,
): number {
  const temperature = o.temperature ?? 1;
  if (o.greedy || temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let idx = Array.from(logits.keys());
  idx.sort((a, b) => logits[b]! - logits[a]!);
  if (o.topK && o.topK > 0) idx = idx.slice(0, o.topK);
  const max = logits[idx[0]!]!;
  let probs = idx.map((i) => Math.exp((logits[i]! - max) / temperature));
  let z = probs.reduce((s, p) => s + p, 0);
  probs = probs.map((p) => p / z);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && cum < topP) cum += probs[keep++]!;
    idx = idx.slice(0, Math.max(1, keep));
    probs = probs.slice(0, idx.length);
    z = probs.reduce((s, p) => s + p, 0);
    probs = probs.map((p) => p / z);
  }
  let u = random();
  for (let k = 0; k < probs.length; k++) {
    u -= probs[k]!;
    if (u <= 0) return idx[k]!;
  }
  return idx[probs.length - 1]!;
}

/**
 * Generates continuations of token prompts, batched with left padding and a KV cache.
 * Output equals step-by-step full-forward decoding (`useCache: false`), and a batch equals
 * its prompts generated one by one.
 */
export function generate(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  o: GenerateOptions = {},
): GenerateResult {
  if (prompts.length === 0) return { ids: [], finish: [] };
  prompts.forEach((p, i) => {
    if (p.length === 0)
      throw new Error(`generate: prompt ${i} is empty (it needs at least one token, e.g. BOS)`);
  });
  if (o.stopStrings?.length && !o.decode)
    throw new Error('generate: stopStrings need a decode function');
  const maxNew = o.maxNewTokens ?? 32;
  const pad = o.padTokenId ?? 0;
  const stopIds = new Set(o.stopTokenIds ?? []);
  const B = prompts.length;
  const T0 = Math.max(...prompts.map((p) => p.length));
  const randoms = prompts.map((_, i) => mulberry32((o.seed ?? 0) + i));
  // Host-side running state: full ids and mask, left padded.
  const rows = prompts.map((p) => [...new Array<number>(T0 - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [
    ...new Array<number>(T0 - p.length).fill(0),
    ...new Array<number>(p.length).fill(1),
  ]);
  const out: number[][] = prompts.map(() => []);
  const finish: GenerateResult['finish'] = prompts.map(() => 'length');
  const done = prompts.map(() => false);
  const texts: string[] = prompts.map(() => '');
  const useCache = o.useCache ?? true;
  let cache: KVCache | undefined;
  let feed = rows.map((r) => [...r]);
  for (let step = 0; step < maxNew && done.some((d) => !d); step++) {
    const ids = tf.tensor2d(feed, undefined, 'int32');
    const m = tf.tensor2d(mask, undefined, 'int32');
    const res = model.forward(ids, m, useCache ? { cache, useCache: true } : {});
    const T = ids.shape[1];
    const flat = readTidy(() =>
      tf.reshape(tf.slice(res.logits, [0, T - 1, 0], [B, 1, -1]), [B, -1]),
    ) as Float32Array;
    const V = flat.length / B;
    const last = rows.map((_, b) => flat.subarray(b * V, (b + 1) * V));
    tf.dispose([ids, m, res.logits]);
    disposeCache(cache);
    cache = res.cache;
    const next = last.map((row, b) => (done[b] ? pad : sampleToken(row, o, randoms[b]!)));
    next.forEach((t, b) => {
      rows[b]!.push(t);
      mask[b]!.push(1);
      if (done[b]) return;
      out[b]!.push(t);
      if (stopIds.has(t)) {
        done[b] = true;
        finish[b] = 'stop_token';
      } else if (o.stopStrings?.length) {
        const text = o.decode!(out[b]!);
        const hit = o.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0);
        if (hit.length) {
          done[b] = true;
          finish[b] = 'stop_string';
          texts[b] = text.slice(0, Math.min(...hit));
        }
      }
    });
    feed = useCache ? next.map((t) => [t]) : rows.map((r) => [...r]);
  }
  disposeCache(cache);
  if (o.decode) {
    out.forEach((ids, b) => {
      if (finish[b] !== 'stop_string') texts[b] = o.decode!(ids);
    });
    return { ids: out, texts, finish };
  }
  return { ids: out, finish };
}
