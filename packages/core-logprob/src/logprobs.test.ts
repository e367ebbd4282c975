import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { buildBatch, disposeBatch, type TokenExample, toTensors } from './batch.js';
import {
  disposeLogprobs,
  selectedLogprobs,
  sequenceLogprobs,
  sequenceLogprobsFromLogits,
  tokenLogprobs,
} from './logprobs.js';
import { expectClose, expectNoLeaks, logSumExp64, numericGrad, rng } from './testing.js';

/** float64 oracle: log-softmax of row `logits[b][t]` read at `target`. */
function oracleTokenLogp(logits: number[][][], b: number, t: number, target: number): number {
  const row = logits[b]![t]!;
  return row[target]! - logSumExp64(row);
}

function randomLogits(B: number, T: number, V: number, seed: number, scale = 3): number[][][] {
  const r = rng(seed);
  return Array.from({ length: B }, () =>
    Array.from({ length: T }, () => Array.from({ length: V }, () => scale * r.normal())),
  );
}

const examples: TokenExample[] = [
  { prompt: [1, 4, 2], response: [5, 6, 7, 3] },
  { prompt: [1], response: [8, 9] },
  { prompt: [1, 2, 3, 4, 5], response: [6] },
];

// wasm, cpu, and the tensorflow backend when this run uses it (its CI pass): there the gradient
// path is TensorFlow's fused kernel
const backends = [...new Set(['wasm', 'cpu', tf.getBackend()])] as (
  | 'wasm'
  | 'cpu'
  | 'tensorflow'
)[];

describe.each(backends)('log-probs on %s', (backend) => {
  it('starts the backend', async () => {
    const info = await initBackend({ backend });
    expect(info.backend).toBe(backend);
  });

  for (const padding of ['right', 'left'] as const) {
    it(`per-token log-probs equal a float64 log-softmax oracle (${padding} padding)`, () => {
      const data = buildBatch(examples, { padTokenId: 0, padding });
      const { batchSize: B, seqLen: T } = data;
      const V = 13;
      const logits64 = randomLogits(B, T, V, 7);
      const batch = toTensors(data);
      const logits = tf.tensor3d(logits64);
      const lp = expectNoLeaks(() =>
        tokenLogprobs(logits, batch.inputIds, batch.attentionMask, { chunkSize: 2 }),
      );
      const got = lp.arraySync();
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const at = b * T + t;
          const real = data.attentionMask[at] === 1 && t > 0 && data.attentionMask[at - 1] === 1;
          const expected = real ? oracleTokenLogp(logits64, b, t - 1, data.inputIds[at]!) : 0;
          expectClose(got[b]![t]!, expected, { atol: 1e-5, rtol: 1e-5, label: `[${b},${t}]` });
        }
      }
      tf.dispose([lp, logits]);
      disposeBatch(batch);
    });
  }

  it('prompt and response sums match a hand-built case', () => {
    // Hand case: uniform logits over V = 4 except chosen positions; every scored token has
    // log-prob log(1/4) unless boosted. Row 0: prompt [1,2], response [3,0]: scored prompt
    // tokens = 1 (token 2), scored response tokens = 2.
    const data = buildBatch(
      [
        { prompt: [1, 2], response: [3, 0] },
        { prompt: [2], response: [1, 1, 1] },
      ],
      {
        padTokenId: 0,
      },
    );
    const batch = toTensors(data);
    const logits = tf.zeros([2, 4, 4]) as tf.Tensor3D;
    const out = expectNoLeaks(() => sequenceLogprobsFromLogits(logits, batch));
    const l4 = Math.log(0.25);
    expectClose(out.responseSum.dataSync(), [2 * l4, 3 * l4]);
    expectClose(out.responseLength.dataSync(), [2, 3]);
    expectClose(out.responseMean.dataSync(), [l4, l4]);
    expectClose(out.promptSum.dataSync(), [l4, 0]);
    expectClose(out.promptLength.dataSync(), [1, 0]);
    disposeLogprobs(out);
    tf.dispose(logits);
    disposeBatch(batch);
  });

  it('chunked equals unchunked to float32 rounding', () => {
    const data = buildBatch(examples, { padTokenId: 0, padding: 'left' });
    const logits = tf.tensor3d(randomLogits(data.batchSize, data.seqLen, 37, 3, 10));
    const batch = toTensors(data);
    const whole = sequenceLogprobsFromLogits(logits, batch, {
      chunkSize: Number.POSITIVE_INFINITY,
    });
    for (const chunkSize of [1, 3, 4]) {
      const part = sequenceLogprobsFromLogits(logits, batch, { chunkSize });
      expectClose(part.tokenLogps.dataSync(), whole.tokenLogps.dataSync(), {
        atol: 2e-5,
        rtol: 1e-6,
      });
      expectClose(part.responseSum.dataSync(), whole.responseSum.dataSync(), {
        atol: 5e-5,
        rtol: 1e-6,
      });
      disposeLogprobs(part);
    }
    disposeLogprobs(whole);
    tf.dispose(logits);
    disposeBatch(batch);
  });

  it('gradient of the response sum matches float64 finite differences', () => {
    const data = buildBatch(examples.slice(0, 2), { padTokenId: 0 });
    const { batchSize: B, seqLen: T } = data;
    const V = 10;
    const logits64 = randomLogits(B, T, V, 11, 1);
    const flat = logits64.flat(2);
    // float64 oracle of Σ_b responseSum_b · (b + 1) as a function of the flat logits.
    const oracle = (x: number[]) => {
      let s = 0;
      for (let b = 0; b < B; b++) {
        for (let t = 1; t < T; t++) {
          const at = b * T + t;
          if (data.segments[at] !== 2 || data.attentionMask[at - 1] !== 1) continue;
          const row = x.slice((b * T + t - 1) * V, (b * T + t) * V);
          s += (b + 1) * (row[data.inputIds[at]!]! - logSumExp64(row));
        }
      }
      return s;
    };
    const expected = numericGrad(oracle, flat, 1e-6);
    const batch = toTensors(data);
    const weights = tf.tensor1d(Array.from({ length: B }, (_, b) => b + 1));
    const x = tf.tensor3d(logits64);
    for (const chunkSize of [2, Number.POSITIVE_INFINITY]) {
      const g = expectNoLeaks(() =>
        tf.grad((l: tf.Tensor) => {
          const r = sequenceLogprobsFromLogits(l as tf.Tensor3D, batch, { chunkSize });
          return tf.sum(tf.mul(r.responseSum, weights));
        })(x),
      );
      expectClose(g.dataSync(), expected, {
        atol: 2e-5,
        rtol: 1e-4,
        label: `grad chunk=${chunkSize}`,
      });
      g.dispose();
    }
    tf.dispose([x, weights]);
    disposeBatch(batch);
  });

  it('the backward pass holds at most three [rows, V] blocks at a time', async () => {
    // one chunk of B·T rows: the gradient dy·(onehot − softmax) is built from five
    // vocabulary-sized temporaries; freeing each once the next exists keeps three alive
    const [B, T, V] = [2, 8, 3000];
    const block = B * T * V * 4;
    const x = tf.tensor3d(randomLogits(B, T, V, 5).flat(2), [B, T, V]);
    const targets = tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i * 37) % V),
      [B, T],
      'int32',
    );
    const base = tf.memory().numBytes;
    let g: tf.Tensor | undefined;
    const { peakBytes } = await tf.profile(() => {
      g = tf.grad((l: tf.Tensor) =>
        tf.sum(
          selectedLogprobs(l as tf.Tensor3D, targets, { chunkSize: Number.POSITIVE_INFINITY }),
        ),
      )(x);
    });
    // tf.memory() counts every tensor object's bytes, views too: the [B·T, V] view of the
    // logits is one block, three live temporaries the rest (all seven at once before: 8)
    expect((peakBytes - base) / block).toBeLessThan(4.2);
    tf.dispose([x, targets, g!]);
  });

  it('selectedLogprobs rejects mismatched shapes', () => {
    const l = tf.zeros([2, 3, 4]) as tf.Tensor3D;
    const t = tf.zeros([2, 2], 'int32') as tf.Tensor2D;
    expect(() => selectedLogprobs(l, t)).toThrow(/does not match/);
    tf.dispose([l, t]);
  });

  it('sequenceLogprobs runs a model; noGrad detaches; no leaks', () => {
    const data = buildBatch(examples, { padTokenId: 0 });
    const batch = toTensors(data);
    const table = tf.variable(tf.randomNormal([16, 16], 0, 1, 'float32', 5));
    // A bigram "model": logits at t are the table row of token t (one-hot matmul, since
    // tfjs-wasm has no gather gradient).
    const model = (ids: tf.Tensor2D) => {
      const [b, t] = ids.shape;
      const oh = tf.cast(tf.oneHot(tf.reshape(ids, [b * t]), 16), 'float32');
      return tf.reshape(tf.matMul(oh, table), [b, t, 16]) as tf.Tensor3D;
    };
    const gradOf = (noGrad: boolean) =>
      tf.tidy(() => {
        const { grads, value } = tf.variableGrads(() => {
          const r = sequenceLogprobs(model, batch, { noGrad });
          return tf.sum(r.responseSum) as tf.Scalar;
        }, [table]);
        return [value, grads[table.name]!] as const;
      });
    const before = tf.memory().numTensors;
    const [v1, g1] = gradOf(false);
    const [v2, g2] = gradOf(true);
    expect(v1.dataSync()[0]).toBeCloseTo(v2.dataSync()[0]!, 5);
    const maxAbs = (g: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!);
    expect(maxAbs(g1)).toBeGreaterThan(0);
    expect(maxAbs(g2)).toBe(0);
    tf.dispose([v1, g1, v2, g2]);
    expect(tf.memory().numTensors).toBe(before);
    table.dispose();
    disposeBatch(batch);
  });

  for (const padding of ['right', 'left'] as const) {
    it(`LD-DPO tail weights and WPO aligned means equal float64 oracles (${padding} padding)`, () => {
      const ex: TokenExample[] = [
        { prompt: [1, 4, 2], response: [5, 6, 7, 3], tailWeight: { after: 2, alpha: 0.3 } },
        { prompt: [1], response: [8, 9], tailWeight: { after: 2, alpha: 0.3 } },
        { prompt: [1, 2], response: [6, 2, 9] },
      ];
      const data = buildBatch(ex, { padTokenId: 0, padding });
      const { batchSize: B, seqLen: T } = data;
      const V = 11;
      const logits64 = randomLogits(B, T, V, 13);
      const batch = toTensors(data);
      const logits = tf.tensor3d(logits64);
      const lp = expectNoLeaks(() =>
        sequenceLogprobsFromLogits(logits, batch, { chunkSize: 2, wpo: true }),
      );
      for (let b = 0; b < B; b++) {
        const start = padding === 'left' ? T - ex[b]!.prompt.length - ex[b]!.response.length : 0;
        let sum = 0;
        let aligned = 0;
        ex[b]!.response.forEach((id, j) => {
          const t = start + ex[b]!.prompt.length + j; // position of response token j
          const row = logits64[b]![t - 1]!;
          const l = row[id]! - logSumExp64(row);
          const w = ex[b]!.tailWeight && j >= ex[b]!.tailWeight!.after ? 0.3 : 1;
          sum += w * l;
          aligned += l - (logSumExp64(row.map((z) => 2 * z)) - 2 * logSumExp64(row));
        });
        const n = ex[b]!.response.length;
        expectClose(lp.responseSum.dataSync()[b]!, sum, { atol: 1e-5, label: `sum ${b}` });
        expectClose(lp.responseLength.dataSync()[b]!, n, { atol: 0, label: `len ${b}` });
        expectClose(lp.responseWpoMean!.dataSync()[b]!, aligned / n, {
          atol: 1e-5,
          label: `wpo ${b}`,
        });
      }
      // WPO means carry no gradient: adding them leaves the gradient of the sums unchanged
      const gradOf = (withWpo: boolean) =>
        tf.grad((x: tf.Tensor) => {
          const r = sequenceLogprobsFromLogits(x as tf.Tensor3D, batch, { wpo: true });
          return withWpo
            ? tf.add(tf.sum(r.responseSum), tf.sum(r.responseWpoMean!))
            : tf.sum(r.responseSum);
        })(logits);
      const [g, g0] = [gradOf(true), gradOf(false)];
      expect(Array.from(g.dataSync())).toEqual(Array.from(g0.dataSync()));
      tf.dispose(g0);
      tf.dispose(g);
      disposeLogprobs(lp);
      logits.dispose();
      disposeBatch(batch);
    });
  }

  it('rejects a row with nothing to score', () => {
    const batch = {
      inputIds: tf.tensor2d(
        [
          [1, 2],
          [0, 0],
        ],
        [2, 2],
        'int32',
      ),
      attentionMask: tf.tensor2d(
        [
          [1, 1],
          [0, 0],
        ],
        [2, 2],
        'int32',
      ),
      segments: tf.tensor2d(
        [
          [1, 2],
          [0, 0],
        ],
        [2, 2],
        'int32',
      ),
    };
    const logits = tf.zeros([2, 2, 3]) as tf.Tensor3D;
    const before = tf.memory().numTensors;
    expect(() => sequenceLogprobsFromLogits(logits, batch)).toThrow(
      /row 1 of the batch is all padding/,
    );
    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(batch);
    logits.dispose();
  });
});

afterAll(async () => {
  await initBackend();
});
