/**
 * bench/forward: tokens/s of a forward pass and of forward + backward (mean NLL, gradients
 * of every parameter) on the built-in tiny model and on a GPT-2-small-shaped random model,
 * on the wasm backend (ALIGNJS_BACKEND overrides). Median of repeats, one run.
 *
 *   npm run build && npx tsx bench/forward.ts [--quick]
 */

import {
  buildBatch,
  initBackend,
  readTidy,
  sequenceLogprobs,
  toTensors,
} from '@alignjs/core-logprob';
import { CausalLM, loadModel, parseModelConfig, tinyModelDir } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';
import { median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const REPEATS = quick ? 1 : 3;

async function measure(
  model: CausalLM,
  B: number,
  T: number,
): Promise<{ fwd: number; fwdBwd: number }> {
  const ids = Array.from({ length: B }, (_, b) =>
    Array.from(
      { length: T },
      (_, t) => 1 + ((b * 7919 + t * 104729) % (model.config.vocabSize - 1)),
    ),
  );
  const batch = toTensors(
    buildBatch(
      ids.map((r) => ({ prompt: r.slice(0, 1), response: r.slice(1) })),
      { padTokenId: 0 },
    ),
  );
  const vars = model.trainableVariables();
  const fwd: number[] = [];
  const both: number[] = [];
  for (let r = 0; r <= REPEATS; r++) {
    let t0 = performance.now();
    readTidy(() => model.call(batch.inputIds, batch.attentionMask));
    const f = performance.now() - t0;
    t0 = performance.now();
    const g = tf.variableGrads(
      () => tf.neg(tf.mean(sequenceLogprobs(model.call, batch).responseSum)) as tf.Scalar,
      vars,
    );
    g.value.dataSync();
    tf.dispose([g.value, ...Object.values(g.grads)]);
    const fb = performance.now() - t0;
    if (r > 0) {
      fwd.push(f);
      both.push(fb);
    }
  }
  tf.dispose(Object.values(batch));
  return { fwd: (B * T) / (median(fwd) / 1000), fwdBwd: (B * T) / (median(both) / 1000) };
}

async function main(): Promise<void> {
  const info = await initBackend({ backend: (process.env.ALIGNJS_BACKEND as 'wasm') ?? 'wasm' });
  const rows: string[][] = [];
  const results: Record<string, unknown> = {};
  const tiny = await loadModel(tinyModelDir());
  const t = await measure(tiny, 8, 64);
  rows.push(['built-in tiny (Llama, 144k params)', '8×64', t.fwd.toFixed(0), t.fwdBwd.toFixed(0)]);
  results.tiny = t;
  tiny.dispose();
  const gpt2 = CausalLM.random(
    parseModelConfig({
      model_type: 'gpt2',
      vocab_size: 50257,
      n_positions: 1024,
      n_embd: 768,
      n_layer: quick ? 2 : 12,
      n_head: 12,
    }),
    0,
  );
  // B=1, T=64: forward + backward of 124M parameters must stay under the ~2 GiB the wasm
  // backend addresses correctly (past it, uploads and reads return garbage).
  const g = await measure(gpt2, 1, quick ? 32 : 64);
  rows.push([
    `GPT-2 small shape (${(gpt2.numParameters / 1e6).toFixed(0)}M params${quick ? ', 2 layers' : ''})`,
    quick ? '1×32' : '1×64',
    g.fwd.toFixed(0),
    g.fwdBwd.toFixed(0),
  ]);
  results.gpt2small = g;
  gpt2.dispose();
  console.log(`bench/forward — backend ${info.backend}, median of ${REPEATS}`);
  console.log(table(['model', 'batch×seq', 'forward tok/s', 'fwd+bwd tok/s'], rows));
  await recordResult('forward', { backend: info.backend, quick, results });
  await writeSection(
    'forward',
    `## Forward and forward + backward (${info.backend}, median of ${REPEATS}, ${new Date().toISOString()})\n\n${table(['model', 'batch×seq', 'forward tok/s', 'fwd+bwd tok/s'], rows)}`,
  );
}

await main();
