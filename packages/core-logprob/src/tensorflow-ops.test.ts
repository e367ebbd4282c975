import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  cachedBf16Weights,
  handToTensorflow,
  matMulBf16,
  releaseBf16Weights,
  sumOfSquares,
} from './tensorflow-ops.js';
import { expectClose } from './testing.js';

const tensorflow = () => tf.getBackend() === 'tensorflow';

/** float32 → bfloat16 → float32, round to nearest even (the oracle's rounding, on the bits). */
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16) << 16;
  return f[0]!;
}

/** `op(a)·op(b)` in float64 of row-major `[m, k]`/`[k, n]` operands (transposes applied here). */
function product(
  a: number[],
  b: number[],
  [m, k, n]: number[],
  ta: boolean,
  tb: boolean,
): number[] {
  const A = (i: number, p: number) => (ta ? a[p * m! + i]! : a[i * k! + p]!);
  const B = (p: number, j: number) => (tb ? b[j * k! + p]! : b[p * n! + j]!);
  const out: number[] = [];
  for (let i = 0; i < m!; i++)
    for (let j = 0; j < n!; j++) {
      let s = 0;
      for (let p = 0; p < k!; p++) s += A(i, p) * B(p, j);
      out.push(s);
    }
  return out;
}

const values = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * (1 + (i % 5)));

describe('bfloat16 matmuls (tensorflow backend)', () => {
  it('off tensorflow: refused, naming the backend', () => {
    if (tensorflow()) return;
    const a = tf.ones([2, 2]);
    expect(() => matMulBf16(a, a)).toThrow(/need the tensorflow backend.*this run is on/);
    a.dispose();
  });

  it('equal the float64 product of the bfloat16-rounded operands, rounded to bfloat16 (transposes, broadcast batch)', () => {
    if (!tensorflow()) return;
    const [m, k, n] = [5, 37, 6];
    const a0 = values(m * k, 1);
    const b0 = values(k * n, 2);
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const a = tf.tensor2d(a0, ta ? [k, m] : [m, k]);
      const b = tf.tensor2d(b0, tb ? [n, k] : [k, n]);
      const before = tf.memory().numTensors;
      const got = matMulBf16(a, b, ta, tb);
      expect(got.dtype).toBe('float32');
      expect(got.shape).toEqual([m, n]);
      expect(tf.memory().numTensors).toBe(before + 1);
      const want = product(a0.map(bf16), b0.map(bf16), [m, k, n], ta, tb);
      // float32 accumulation, then one bfloat16 rounding of the result (8 bits: 2⁻⁸ relative)
      const g = got.dataSync();
      for (const [i, w] of want.entries())
        expect(Math.abs(g[i]! - w), `${ta}/${tb} [${i}]`).toBeLessThanOrEqual(
          Math.abs(w) * 2 ** -8 + 1e-5,
        );
      // the inputs' rounding is visible: not the float32 product
      const f32 = product(a0, b0, [m, k, n], ta, tb);
      expect(want.some((w, i) => Math.abs(w - f32[i]!) > 1e-3)).toBe(true);
      tf.dispose([a, b, got]);
    }
    // a rank-3 operand against a rank-2 one broadcasts as BatchMatMulV2 does
    const x = tf.tensor3d([...a0.slice(0, m * k), ...a0.slice(0, m * k).map((v) => -v)], [2, m, k]);
    const w = tf.tensor2d(b0, [k, n]);
    const y = matMulBf16(x, w);
    expect(y.shape).toEqual([2, m, n]);
    const half = Array.from(y.dataSync());
    expectClose(
      half.slice(m * n),
      half.slice(0, m * n).map((v) => -v),
      { atol: 0, label: 'broadcast' },
    );
    tf.dispose([x, w, y]);
  });

  it("a weight's cast is reused until it changes: new values are used, release frees and recasts", () => {
    if (!tensorflow()) return;
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const w = tf.variable(tf.tensor2d([1, 0, 0, 1], [2, 2]));
    const first = matMulBf16(x, w);
    expect(Array.from(first.dataSync())).toEqual([1, 2, 3, 4]);
    // the tape's saved copy of a weight shares its data (and its cached cast)
    const copy = tf.clone(w);
    const again = matMulBf16(x, copy, false, true);
    expect(Array.from(again.dataSync())).toEqual([1, 2, 3, 4]);
    const next = tf.tensor2d([2, 0, 0, 2], [2, 2]);
    w.assign(next);
    const changed = matMulBf16(x, w);
    expect(Array.from(changed.dataSync())).toEqual([2, 4, 6, 8]);
    releaseBf16Weights();
    const after = matMulBf16(x, w);
    expect(Array.from(after.dataSync())).toEqual([2, 4, 6, 8]);
    releaseBf16Weights();
    tf.dispose([x, w, first, copy, again, next, changed, after]);
  });

  it('caches the casts of trainable weights only: a frozen weight is cast per product', () => {
    if (!tensorflow()) return;
    releaseBf16Weights();
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const w = tf.variable(tf.tensor2d([1, 0, 0, 1], [2, 2]));
    const frozen = tf.variable(tf.tensor2d([0, 1, 1, 0], [2, 2]), false);
    const a = matMulBf16(x, frozen);
    expect(Array.from(a.dataSync())).toEqual([2, 1, 4, 3]);
    expect(cachedBf16Weights()).toBe(0);
    const b = matMulBf16(x, w);
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3, 4]);
    expect(cachedBf16Weights()).toBe(1);
    releaseBf16Weights();
    expect(cachedBf16Weights()).toBe(0);
    tf.dispose([x, w, frozen, a, b]);
  });
});

describe('sumOfSquares', () => {
  it('is Σx² in float64 on every backend (L2Loss on tensorflow), leaking nothing', () => {
    const xs = values(1000, 3);
    const x = tf.tensor2d(xs, [40, 25]);
    const before = tf.memory().numTensors;
    const s = sumOfSquares(x);
    expect(s.shape).toEqual([]);
    const want = xs.reduce((acc, v) => acc + Math.fround(v) ** 2, 0);
    expect(Math.abs(s.dataSync()[0]! - want) / want).toBeLessThan(1e-6);
    s.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('sums over a list of tensors (the gradient norm), one scalar, leaking nothing', () => {
    const parts = [values(7, 5), values(300, 6), values(1, 7)];
    const ts = [tf.tensor1d(parts[0]!), tf.tensor2d(parts[1]!, [20, 15]), tf.scalar(parts[2]![0]!)];
    const before = tf.memory().numTensors;
    const s = sumOfSquares(ts);
    expect(s.shape).toEqual([]);
    const want = parts.flat().reduce((acc, v) => acc + Math.fround(v) ** 2, 0);
    expect(Math.abs(s.dataSync()[0]! - want) / want).toBeLessThan(1e-6);
    s.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => sumOfSquares([])).toThrow('no tensors');
    tf.dispose(ts);
  });
});

describe('handToTensorflow', () => {
  it("on tensorflow tfjs-node's record of the tensor no longer holds the JS array; values kept; elsewhere a no-op", () => {
    const arr = new Float32Array([1, 2, 3]);
    const t = tf.tensor(arr);
    // tfjs-node's own record (the mechanism: it defers the copy to TensorFlow to the first op)
    const record = () =>
      (
        tf.backend() as unknown as { tensorMap?: { get(id: object): { values: unknown } } }
      ).tensorMap?.get(t.dataId);
    if (tensorflow()) expect(record()!.values).toBe(arr);
    const before = tf.memory().numTensors;
    handToTensorflow(t);
    expect(tf.memory().numTensors).toBe(before);
    if (tensorflow()) expect(record()!.values).toBeNull();
    expect(Array.from(t.dataSync())).toEqual([1, 2, 3]);
    t.dispose();
  });
});
