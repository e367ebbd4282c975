import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { sliceRuns, swapForm } from './wasm-kernels.js';

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

/** The slice begin/size of a row-major `values` of `shape`, index by index (the oracle). */
function slice64(values: number[], shape: number[], begin: number[], size: number[]): number[] {
  const out: number[] = [];
  const n = size.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let src = 0;
    let stride = 1;
    const idx: number[] = [];
    for (let a = shape.length - 1; a >= 0; a--) {
      idx[a] = (rest % size[a]!) + begin[a]!;
      rest = Math.floor(rest / size[a]!);
    }
    for (let a = shape.length - 1; a >= 0; a--) {
      src += idx[a]! * stride;
      stride *= shape[a]!;
    }
    out.push(values[src]!);
  }
  return out;
}

describe('patched wasm Slice and SplitV kernels, strided', () => {
  it('reads a slice as contiguous runs: the axes after the last cut one ride along', () => {
    const runs = (sh: number[], b: number[], z: number[]) => {
      const r = sliceRuns(sh, b, z);
      return (
        r && {
          count: r.count,
          length: r.length,
          offsets: [...Array(r.count)].map((_, i) => r.offset(i)),
        }
      );
    };
    // last-axis split of [2, 3, 24] at 8: 6 runs of 8, one per row
    expect(runs([2, 3, 24], [0, 0, 8], [2, 3, 8])).toEqual({
      count: 6,
      length: 8,
      offsets: [8, 32, 56, 80, 104, 128],
    });
    // a middle axis cut, the last whole: 2 runs of 2 × 24
    expect(runs([2, 3, 24], [0, 1, 0], [2, 2, 24])).toEqual({
      count: 2,
      length: 48,
      offsets: [24, 96],
    });
    // contiguous: one run
    expect(runs([4, 6, 5], [1, 0, 0], [2, 6, 5])).toEqual({ count: 1, length: 60, offsets: [30] });
    // runs of 3 elements: left to the stock kernel
    expect(runs([4, 6, 5], [0, 0, 1], [4, 6, 3])).toBeUndefined();
    expect(runs([3, 4], [0, 0], [0, 4])).toEqual({ count: 0, length: 0, offsets: [] });
  });

  it('equal an index-by-index slice on many shapes and dtypes, and SplitV its pieces, no leaks', async () => {
    await initBackend({ backend: 'wasm' });
    expect(tf.getKernel('Slice', 'wasm')?.kernelFunc.name).toBe('sliceOnHeap');
    expect(tf.getKernel('SplitV', 'wasm')?.kernelFunc.name).toBe('splitOnHeap');
    let seed = 5;
    const rand = (k: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % k;
    };
    const before = tf.memory().numTensors;
    for (let trial = 0; trial < 200; trial++) {
      const rank = 1 + rand(5);
      const shape = Array.from({ length: rank }, () => 1 + rand(rank > 3 ? 5 : 12));
      const begin = shape.map((d) => rand(d));
      const size = shape.map((d, a) => rand(d - begin[a]! + 1));
      // make most trials non-empty
      if (trial % 10) for (const a of size.keys()) size[a] = Math.max(1, size[a]!);
      const dtype = (['float32', 'int32', 'bool'] as const)[trial % 3]!;
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) =>
        dtype === 'bool' ? ((i * 7) % 3 === 0 ? 1 : 0) : dtype === 'int32' ? i - 40 : i * 0.25 - 9,
      );
      const x = tf.tensor(values, shape, dtype);
      const y = tf.slice(x, begin, size);
      expect(Array.from(y.dataSync()), `${dtype} ${shape} ${begin} ${size}`).toEqual(
        slice64(values, shape, begin, size),
      );
      // SplitV along a random axis into up to three pieces
      const axis = rand(rank);
      const d = shape[axis]!;
      const cut = [rand(d + 1)];
      const sizes = d - cut[0]! > 1 ? [cut[0]!, 1, d - cut[0]! - 1] : [cut[0]!, d - cut[0]!];
      const pieces = tf.split(x, sizes, axis);
      let at = 0;
      for (const [k, piece] of pieces.entries()) {
        const b = shape.map((_, a) => (a === axis ? at : 0));
        const z = shape.map((dd, a) => (a === axis ? sizes[k]! : dd));
        expect(Array.from(piece.dataSync()), `split ${shape} axis ${axis} piece ${k}`).toEqual(
          slice64(values, shape, b, z),
        );
        at += sizes[k]!;
      }
      tf.dispose([x, y, ...pieces]);
    }
    expect(tf.memory().numTensors).toBe(before);
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

/** `x` (row-major `shape`) permuted by `perm`, index by index: the oracle. */
function naiveTranspose(x: number[], shape: number[], perm: number[]): number[] {
  const outShape = perm.map((a) => shape[a]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const idx = outShape.map(() => 0);
  for (let k = 0; k < x.length; k++) {
    out.push(x[idx.reduce((o, v, j) => o + v * strides[perm[j]!]!, 0)]!);
    for (let j = outShape.length - 1; j >= 0; j--) {
      if (++idx[j]! < outShape[j]!) break;
      idx[j] = 0;
    }
  }
  return out;
}

describe('patched wasm Transpose kernel', () => {
  it('reads one-swap permutations as [batch, R, C, inner] and leaves the rest to the stock kernel', () => {
    expect(swapForm([8192, 256], [1, 0])).toEqual({ batch: 1, R: 8192, C: 256, inner: 1 });
    expect(swapForm([4, 4, 64, 32], [0, 1, 3, 2])).toEqual({ batch: 16, R: 64, C: 32, inner: 1 });
    expect(swapForm([2, 64, 4, 16], [0, 2, 1, 3])).toEqual({ batch: 2, R: 64, C: 4, inner: 16 });
    expect(swapForm([3, 4, 5], [1, 0, 2])).toEqual({ batch: 1, R: 3, C: 4, inner: 5 });
    expect(swapForm([3, 4, 5], [2, 0, 1])).toEqual({ batch: 1, R: 12, C: 5, inner: 1 });
    expect(swapForm([3, 1, 5], [2, 1, 0])).toEqual({ batch: 1, R: 3, C: 5, inner: 1 });
    expect(swapForm([3, 4, 5], [0, 1, 2])).toEqual({ batch: 1, R: 1, C: 60, inner: 1 });
    expect(swapForm([3, 4, 5], [2, 1, 0])).toBeUndefined();
    expect(swapForm([2, 3, 4, 5], [1, 0, 3, 2])).toBeUndefined();
  });

  it('equals an index-by-index transpose on swaps, rotations, size-1 axes, stock cases and empty tensors, bit for bit', async () => {
    await initBackend({ backend: 'wasm' });
    expect(tf.getKernel('Transpose', 'wasm')?.kernelFunc.name).toBe('blockedTranspose');
    const cases: [number[], number[]][] = [
      [
        [70, 45],
        [1, 0],
      ], // tall, tiles with ragged edges
      [
        [33, 97],
        [1, 0],
      ], // wide
      [
        [3, 37, 29],
        [0, 2, 1],
      ], // batched
      [
        [2, 9, 3, 20],
        [0, 2, 1, 3],
      ], // head split: inner ≥ 16 copied whole
      [
        [2, 9, 3, 5],
        [0, 2, 1, 3],
      ], // short inner run
      [
        [4, 6, 5],
        [2, 0, 1],
      ], // rotation: one swap after merging
      [
        [4, 1, 6, 1],
        [2, 1, 3, 0],
      ], // size-1 axes
      [
        [4, 6, 5],
        [0, 1, 2],
      ], // identity: a copy
      [
        [4, 6, 5],
        [2, 1, 0],
      ], // reversal: stock kernel
      [
        [2, 3, 4, 5],
        [3, 2, 0, 1],
      ], // stock kernel
      [
        [0, 5],
        [1, 0],
      ], // empty
    ];
    for (const dtype of ['float32', 'int32'] as const) {
      for (const [shape, perm] of cases) {
        const n = shape.reduce((a, b) => a * b, 1);
        const values = Array.from({ length: n }, (_, i) =>
          dtype === 'int32' ? i - 7 : i * 0.25 - 3,
        );
        const before = tf.memory().numTensors;
        const x = tf.tensor(values, shape, dtype);
        const y = tf.transpose(x, perm);
        expect(y.shape).toEqual(perm.map((a) => shape[a]));
        expect(y.dtype).toBe(dtype);
        expect(Array.from(y.dataSync()), `${dtype} ${shape} ${perm}`).toEqual(
          naiveTranspose(values, shape, perm),
        );
        tf.dispose([x, y]);
        expect(tf.memory().numTensors).toBe(before);
      }
    }
    // NaN payloads and -0 survive: the copy moves bits, not numbers
    const bits = new Int32Array([0x7fa00001, 0x80000000, 0x7f800000, 0xff800001, 1, 2]);
    const x = tf.tensor(new Float32Array(bits.buffer), [2, 3]);
    const y = tf.transpose(x);
    const got = new Int32Array((y.dataSync() as Float32Array).slice().buffer);
    expect(Array.from(got)).toEqual([bits[0], bits[3], bits[1], bits[4], bits[2], bits[5]]);
    tf.dispose([x, y]);
  });

  it('gives the gradient of a transpose (the inverse permutation) through the patched kernel', async () => {
    await initBackend({ backend: 'wasm' });
    const shape = [2, 3, 4];
    const w = Array.from({ length: 24 }, (_, i) => i + 1);
    const x = tf.tensor(
      Array.from({ length: 24 }, (_, i) => i / 10),
      shape,
    );
    const wt = tf.tensor(naiveTranspose(w, shape, [2, 0, 1]), [4, 2, 3]);
    // f(x) = Σ transpose(x)·w': ∂f/∂x = w, placed back by the inverse permutation
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.transpose(v, [2, 0, 1]), wt)))(x);
    expect(Array.from(g.dataSync())).toEqual(w);
    tf.dispose([x, wt, g]);
  });
});
