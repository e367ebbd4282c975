/**
 * The reference model's side of a run: a fingerprint of its weights (the cache key, so a
 * retrained model at the same path never reuses stale log-probs and a copied checkout reuses
 * valid ones), and its log-probs of token rows, computed off the tape in batches.
 */
import { createHash } from 'node:crypto';
import { buildBatch, sequenceLogprobs, type TokenExample, toTensors } from '@alignjs/core-logprob';
import type { CausalLM } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';

/**
 * sha256 over the model's parameters (names, shapes, float32 bytes, in name order) and its
 * config: equal weights give equal fingerprints wherever they were loaded from. Adapters
 * are not included (a LoRA run's reference is the base model with adapters off).
 */
export function weightsFingerprint(model: CausalLM): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.config.raw));
  for (const name of [...model.params.keys()].sort()) {
    const v = model.params.get(name)!;
    const data = v.dataSync() as Float32Array;
    h.update(`${name}:${v.shape.join('x')}:`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** Per-row response and prompt log-prob sums of `rows` under `model`, no gradient. */
export function scoreRows(
  model: CausalLM,
  rows: readonly TokenExample[],
  o: { padTokenId: number; batchSize: number; onProgress?: (done: number, total: number) => void },
): { sum: Float32Array; prompt: Float32Array } {
  const sum = new Float32Array(rows.length);
  const prompt = new Float32Array(rows.length);
  const B = Math.max(1, o.batchSize);
  const call = model.lora.size ? model.callWithoutAdapters : model.call;
  for (let i = 0; i < rows.length; i += B) {
    const part = rows.slice(i, i + B);
    const batch = toTensors(buildBatch(part, { padTokenId: o.padTokenId }));
    const lp = sequenceLogprobs(call, batch, { noGrad: true });
    sum.set(lp.responseSum.dataSync(), i);
    prompt.set(lp.promptSum.dataSync(), i);
    tf.dispose([...Object.values(lp), ...Object.values(batch)]);
    o.onProgress?.(Math.min(i + B, rows.length), rows.length);
  }
  return { sum, prompt };
}
