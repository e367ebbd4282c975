// A consumer that imports only tfjs-core and a built alignjs package (no @tensorflow/tfjs
// union bundle) can take gradients: core-logprob registers them.

import { logSigmoid } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

describe('gradient registration through @alignjs/core-logprob', () => {
  it('tf.grad works for ops whose gradients tfjs-core does not register in Node', () => {
    const x = tf.tensor1d([0.5, -2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.mean(tf.mul(logSigmoid(v), tf.square(v))))(x);
    const xs = [0.5, -2, 3];
    // d/dv mean(logσ(v)·v²) = (σ(−v)·v² + 2v·logσ(v)) / 3, in float64.
    const expected = xs.map((v) => {
      const ls = v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v));
      return ((1 / (1 + Math.exp(v))) * v * v + 2 * v * ls) / 3;
    });
    const got = Array.from(g.dataSync());
    got.forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i]!, 5);
    });
    tf.dispose([x, g]);
  });
});
