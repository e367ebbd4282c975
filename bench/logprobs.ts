/**
 * bench/logprobs: the memory-lean log-prob path (chunked gather − logsumexp, custom
 * chunked gradient) next to `logSoftmax`-then-gather, at B=4, T=256, V=32000 on the wasm
 * backend (ALIGNJS_BACKEND overrides). Prints time (median of repeats) and peak tensor
 * bytes above what existed before the call (tf.profile) of each, and their ratio, all measured in this one run.
 *
 *   npm run build && npx tsx bench/logprobs.ts [--quick]
 */

import { initBackend, selectedLogprobs } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const B = 4;
const T = quick ? 64 : 256;
const V = quick ? 8000 : 32000;
const REPEATS = quick ? 2 : 3;

function naive(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const lsm = tf.logSoftmax(logits, -1);
    const oh = tf.cast(tf.oneHot(tf.reshape(targets, [B * T]), V), 'float32');
    return tf.reshape(tf.sum(tf.mul(tf.reshape(lsm, [B * T, V]), oh), 1), [B, T]) as tf.Tensor2D;
  });
}

function naiveGather(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const lsm = tf.reshape(tf.logSoftmax(logits, -1), [B * T * V]);
    const idx = tf.add(
      tf.mul(tf.range(0, B * T, 1, 'int32'), tf.scalar(V, 'int32')),
      tf.reshape(targets, [B * T]),
    );
    return tf.reshape(tf.gather(lsm, idx), [B, T]) as tf.Tensor2D;
  });
}

async function measure(
  label: string,
  fn: () => tf.Tensor,
): Promise<{ label: string; ms: number; peakMB: number }> {
  const times: number[] = [];
  let peak = 0;
  for (let r = 0; r < REPEATS; r++) {
    const start = tf.memory().numBytes;
    const t0 = performance.now();
    const prof = await tf.profile(() => {
      const out = fn();
      out.dataSync();
      out.dispose();
    });
    times.push(performance.now() - t0);
    peak = Math.max(peak, prof.peakBytes - start);
  }
  return { label, ms: median(times), peakMB: peak / 2 ** 20 };
}

async function main(): Promise<void> {
  const info = await initBackend({ backend: (process.env.ALIGNJS_BACKEND as 'wasm') ?? 'wasm' });
  const logits = tf.randomNormal([B, T, V], 0, 2, 'float32', 1) as tf.Tensor3D;
  const targets = tf.randomUniform([B, T], 0, V, 'int32', 2) as tf.Tensor2D;
  const w = tf.randomNormal([B, T], 0, 1, 'float32', 3);
  const grad = (f: (l: tf.Tensor3D, t: tf.Tensor2D) => tf.Tensor2D) =>
    tf.grad((l: tf.Tensor) => tf.sum(tf.mul(f(l as tf.Tensor3D, targets), w)));
  const lean = (l: tf.Tensor3D, t: tf.Tensor2D) => selectedLogprobs(l, t, { chunkSize: 32 });
  const rows = [
    await measure('forward: lean (chunk 32)', () => lean(logits, targets)),
    await measure('forward: logSoftmax + gather', () => naiveGather(logits, targets)),
    await measure('forward: logSoftmax + one-hot', () => naive(logits, targets)),
    await measure('fwd+bwd: lean (chunk 32)', () => grad(lean)(logits)),
    // tfjs-wasm has no gather gradient (UnsortedSegmentSum), so the differentiable baseline
    // picks the target with a one-hot product.
    await measure('fwd+bwd: logSoftmax + one-hot', () => grad(naive)(logits)),
  ];
  const base = (prefix: string) =>
    rows.find((r) => r.label.startsWith(prefix) && r.label.includes('logSoftmax'))!;
  const logitsMB = (B * T * V * 4) / 2 ** 20;
  const out = rows.map((r) => {
    const ref = base(r.label.split(':')[0]!);
    return [
      r.label,
      r.ms.toFixed(0),
      r.peakMB.toFixed(0),
      (r.ms / ref.ms).toFixed(2),
      (r.peakMB / ref.peakMB).toFixed(2),
    ];
  });
  console.log(
    `bench/logprobs — backend ${info.backend}${info.wasm ? ` (simd ${info.wasm.simd})` : ''}, B=${B} T=${T} V=${V}, logits ${logitsMB.toFixed(0)} MB, median of ${REPEATS}`,
  );
  console.log(table(['path', 'ms', 'peak extra MB', 'time ratio', 'peak ratio'], out));
  await recordResult('logprobs', { backend: info.backend, B, T, V, repeats: REPEATS, rows });
  await writeSection(
    'logprobs',
    `## Log-prob core (${info.backend}, B=${B} T=${T} V=${V}, median of ${REPEATS}, ${new Date().toISOString()})\n\n${table(['path', 'ms', 'peak extra MB', 'time ratio', 'peak ratio'], out)}`,
  );
  tf.dispose([logits, targets, w]);
}

await main();
