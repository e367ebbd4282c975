import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { variableGrads } from './grad.js';

const made: tf.Variable[] = [];
const variable = (values: number[], shape: number[], trainable = true) => {
  const init = tf.tensor(values, shape);
  const v = tf.variable(init, trainable);
  init.dispose();
  made.push(v);
  return v;
};
const seq = (n: number, scale: number) =>
  Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + scale) * scale);

afterEach(() => {
  tf.dispose(made.splice(0));
});

/** Same op twice: identity whose gradient hands back the incoming `dy` object itself. */
const passThrough = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor],
})) as unknown as Parameters<typeof tf.customGrad>[0]);
/** a + b whose gradient is the same `dy` object for both inputs. */
const sharedGrad = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.add(a, b),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [dy as tf.Tensor, dy as tf.Tensor],
})) as unknown as Parameters<typeof tf.customGrad>[0]);

describe('variableGrads (frees as the backward pass goes)', () => {
  it('gives exactly tf.variableGrads’s value and gradients on a graph with every tape shape', () => {
    const w1 = variable(seq(24, 0.5), [4, 6]);
    const w2 = variable(seq(24, 0.3), [6, 4]);
    const b = variable(seq(2, 1), [2]);
    const frozen = variable(seq(16, 0.2), [4, 4], false);
    const unused = variable([1, 2, 3], [3]);
    const x = tf.tensor(seq(20, 1.3), [5, 4]);
    const loss = () => {
      const h = tf.tanh(tf.matMul(x, w1)); // consumed three times
      const r = tf.add(x, tf.matMul(h, w2));
      const [p] = tf.split(r, 2, 1); // a multi-output op with one output unused
      return tf.addN([
        tf.sum(tf.mul(p!, b)),
        tf.mean(passThrough(r) as tf.Tensor),
        tf.sum(sharedGrad(r, tf.mul(r, 2)) as tf.Tensor),
        tf.sum(tf.matMul(r, frozen)),
        tf.sum(tf.mul(h, h)),
        tf.mean(h),
      ]) as tf.Scalar;
    };
    const vars = [w1, w2, b, frozen, unused];
    const expected = tf.variableGrads(loss, vars);
    const before = tf.memory().numTensors;
    const got = variableGrads(loss, vars);
    // the value and one gradient per trainable variable f depends on; nothing else left
    expect(tf.memory().numTensors - before).toBe(1 + 3);
    expect(Object.keys(got.grads).sort()).toEqual([w1.name, w2.name, b.name].sort());
    expect(got.value.dataSync()).toEqual(expected.value.dataSync());
    for (const v of [w1, w2, b]) {
      expect(Array.from(got.grads[v.name]!.dataSync())).toEqual(
        Array.from(expected.grads[v.name]!.dataSync()),
      );
    }
    tf.dispose([got.value, expected.value, x]);
    tf.dispose(Object.values(got.grads));
    tf.dispose(Object.values(expected.grads).filter((g) => g != null));
  });

  it('adds next to nothing to memory in the backward pass, where tfjs holds every gradient', async () => {
    // A chain of L layers x ← tanh(x·W) on [m, n] activations. tfjs's backward keeps the
    // gradient of every x_i and x·W_i (2L activations) and every saved activation until it
    // ends; this one frees each as soon as the op that produced it has run its backward.
    const L = 12;
    const m = 64;
    const n = 32;
    const act = m * n * 4;
    const ws = Array.from({ length: L }, (_, i) => variable(seq(n * n, 0.2 + i / 100), [n, n]));
    const x0 = tf.tensor(seq(m * n, 1), [m, n]);
    const loss = () => {
      let x: tf.Tensor = x0;
      for (const w of ws) x = tf.tanh(tf.matMul(x, w));
      return tf.sum(x) as tf.Scalar;
    };
    /** bytes the backward pass holds at its peak above what it starts with, in activations */
    type Grads = (f: () => tf.Scalar, vars: tf.Variable[]) => ReturnType<typeof variableGrads>;
    const backwardGrowth = async (grads: Grads) => {
      let out: ReturnType<typeof variableGrads> | undefined;
      const { kernels } = await tf.profile(() => {
        out = grads(loss, ws);
      });
      tf.dispose([out!.value, ...Object.values(out!.grads)]);
      // the loss's Sum is the forward pass's last kernel
      const backward = kernels.slice(kernels.findIndex((k) => k.name === 'Sum') + 1);
      const bytes = backward.map((k) => k.totalBytesSnapshot);
      return (Math.max(...bytes) - bytes[0]!) / act;
    };
    const ours = await backwardGrowth(variableGrads);
    const theirs = await backwardGrowth(tf.variableGrads);
    x0.dispose();
    // a few temporaries of one layer's backward (dx, dW, tanh's 1 − y² and its product)
    expect(ours).toBeLessThanOrEqual(5);
    // the check can tell the two apart: tfjs's backward grows by ~2L activations
    expect(theirs).toBeGreaterThan(2 * L);
  });

  it('leaves nothing behind and names the problem when f returns no scalar', () => {
    const w = variable([1, 2], [2]);
    const frozen = variable([1], [1], false);
    const before = tf.memory().numTensors;
    expect(() => variableGrads(() => tf.mul(w, 2) as unknown as tf.Scalar, [w])).toThrow(
      /must return a scalar tensor, got rank 1/,
    );
    expect(() => variableGrads(() => tf.scalar(3), [w])).toThrow(
      /does not depend on any of the trainable variables/,
    );
    expect(() => variableGrads(() => tf.sum(w) as tf.Scalar, [frozen])).toThrow(
      /none of the 1 variables is trainable/,
    );
    expect(tf.memory().numTensors).toBe(before);
    // the engine's tape is closed: an ordinary gradient still works afterwards
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, t)))(tf.tensor([3]));
    expect(Array.from(g.dataSync())).toEqual([6]);
  });

  it('inside another gradient computation, defers to tf.variableGrads', () => {
    const w = variable([0.5, -1], [2]);
    // d/dt Σ ∂/∂w (Σ w²·t) = d/dt Σ 2w·t = Σ 2w, a second-order gradient through the inner call
    const outer = tf.grad((t: tf.Tensor) => {
      const { value, grads } = variableGrads(
        () => tf.sum(tf.mul(tf.square(w), t)) as tf.Scalar,
        [w],
      );
      value.dispose();
      return tf.sum(grads[w.name]!);
    });
    const d = outer(tf.scalar(2));
    expect(d.dataSync()[0]).toBeCloseTo(2 * (0.5 - 1), 6);
  });
});
