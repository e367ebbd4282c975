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
