import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';

const cases: [number[], number[], number[]][] = [
  [
    [4, 6, 5],
    [1, 0, 0],
    [2, 6, 5],
  ], // contiguous rows
  [
    [4, 6, 5],
    [1, 2, 0],
    [1, 3, 5],
  ], // contiguous inside one row
  [
    [4, 6, 5],
    [0, 1, 0],
    [4, 2, 5],
  ], // strided: stock kernel
  [
    [4, 6, 5],
    [0, 0, 1],
    [4, 6, 3],
  ], // strided
  [[30], [7], [11]],
  [
    [3, 4],
    [0, 0],
    [0, 4],
  ], // empty
];

describe('patched wasm Slice kernel', () => {
  it('equals the cpu backend on contiguous, strided and empty slices, float and int', async () => {
    for (const dtype of ['float32', 'int32'] as const) {
      for (const [shape, begin, size] of cases) {
        const n = shape.reduce((a, b) => a * b, 1);
        const values = Array.from({ length: n }, (_, i) => (dtype === 'int32' ? i : i * 0.5 - 3));
        await initBackend({ backend: 'cpu' });
        const expected = tf.tidy(() =>
          Array.from(tf.slice(tf.tensor(values, shape, dtype), begin, size).dataSync()),
        );
        await initBackend({ backend: 'wasm' });
        const got = tf.tidy(() =>
          Array.from(tf.slice(tf.tensor(values, shape, dtype), begin, size).dataSync()),
        );
        expect(got, `${dtype} ${shape} ${begin} ${size}`).toEqual(expected);
      }
    }
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('patched wasm BatchMatMul kernel', () => {
  it('equals a float64 product on batched shapes above and below its threshold, transposed and broadcast', async () => {
    await initBackend({ backend: 'wasm' });
    // [a shape, b shape, transposeA, transposeB]
    const cases: [number[], number[], boolean, boolean][] = [
      [[2, 3, 64, 48], [2, 3, 48, 40], false, false], // patched: 6 matrices of 64·48·40 MACs
      [[5, 40, 64], [5, 64, 24], false, false], // patched, rank 3
      [[4, 8, 6], [4, 6, 5], false, false], // small: stock loop
      [[3, 64, 48], [3, 40, 48], false, true], // transposed: stock
      [[3, 48, 64], [3, 48, 40], true, false], // transposed: stock
      [[3, 64, 48], [1, 48, 40], false, false], // broadcast batch: stock
      [[64, 48], [48, 40], false, false], // unbatched: stock (XNNPACK)
    ];
    let seed = 1;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647 - 0.5;
    };
    for (const [sa, sb, ta, tb] of cases) {
      const av = Array.from({ length: sa.reduce((x, y) => x * y, 1) }, rand);
      const bv = Array.from({ length: sb.reduce((x, y) => x * y, 1) }, rand);
      // Float64 oracle on [batch, M, K] · [batch|1, K, N] after applying the transposes.
      const mat = (v: number[], s: number[], t: boolean, i: number) => {
        const [r, c] = s.slice(-2) as [number, number];
        const off = (s.length > 2 && s.slice(0, -2).reduce((x, y) => x * y, 1) > 1 ? i : 0) * r * c;
        return (p: number, q: number) => (t ? v[off + q * c + p]! : v[off + p * c + q]!);
      };
      const M = ta ? sa.at(-1)! : sa.at(-2)!;
      const K = ta ? sa.at(-2)! : sa.at(-1)!;
      const N = tb ? sb.at(-2)! : sb.at(-1)!;
      const batch = Math.max(
        sa.slice(0, -2).reduce((x, y) => x * y, 1),
        sb.slice(0, -2).reduce((x, y) => x * y, 1),
      );
      const want: number[] = [];
      for (let i = 0; i < batch; i++) {
        const A = mat(av, sa, ta, i);
        const B = mat(bv, sb, tb, i);
        for (let p = 0; p < M; p++)
          for (let q = 0; q < N; q++) {
            let acc = 0;
            for (let k = 0; k < K; k++) acc += A(p, k) * B(k, q);
            want.push(acc);
          }
      }
      const before = tf.memory().numTensors;
      const a = tf.tensor(av, sa);
      const b = tf.tensor(bv, sb);
      const c = tf.matMul(a, b, ta, tb);
      const got = Array.from(c.dataSync());
      tf.dispose([a, b, c]);
      expect(tf.memory().numTensors).toBe(before);
      expect(got.length).toBe(want.length);
      const worst = Math.max(...got.map((g, i) => Math.abs(g - want[i]!)));
      expect(worst, `${sa} · ${sb} tA=${ta} tB=${tb}`).toBeLessThan(1e-4);
    }
  });
});

describe('patched wasm Identity and same-dtype Cast kernels', () => {
  it('share the input memory: no new buffers, values survive the source, all freed at the end', async () => {
    await initBackend({ backend: 'wasm' });
    const buffers = () => tf.memory().numDataBuffers;
    const start = buffers();
    const x = tf.tensor([1.5, -2, 3.25, 4], [2, 2]);
    expect(buffers()).toBe(start + 1);
    const c = tf.clone(x);
    const same = tf.cast(x, 'float32');
    expect(buffers()).toBe(start + 1);
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual([1.5, -2, 3.25, 4]);
    expect(Array.from(same.dataSync())).toEqual([1.5, -2, 3.25, 4]);
    expect(same.shape).toEqual([2, 2]);
    c.dispose();
    expect(buffers()).toBe(start + 1);
    same.dispose();
    expect(buffers()).toBe(start);
  });

  it('still convert on a dtype change, and gradients through saved tensors equal the hand derivative', async () => {
    await initBackend({ backend: 'wasm' });
    const before = tf.memory().numTensors;
    const v = [0.5, -1.25, 2, -3.75];
    const i = tf.tensor(v);
    const asInt = tf.cast(i, 'int32');
    expect(asInt.dtype).toBe('int32');
    expect(Array.from(asInt.dataSync())).toEqual([0, -1, 2, -3]);
    const back = tf.cast(asInt, 'float32');
    expect(Array.from(back.dataSync())).toEqual([0, -1, 2, -3]);
    // f(x) = Σ x·exp(x): the tape saves x and exp(x) (clones through Identity); f' = (1 + x)·eˣ
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, tf.exp(x))))(i);
    const got = Array.from(g.dataSync());
    for (const [k, x] of v.entries()) expect(got[k]).toBeCloseTo((1 + x) * Math.exp(x), 5);
    tf.dispose([i, asInt, back, g]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
