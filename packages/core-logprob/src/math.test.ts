import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { stopGradient } from './grad.js';
import {
  bernoulliKL,
  implicitReward,
  logSigmoid,
  logSumExp,
  pairwiseMetricTensors,
  readMetrics,
  readTidy,
} from './math.js';
import {
  bernoulliKL64,
  expectClose,
  expectNoLeaks,
  logSigmoid64,
  logSumExp64,
  numericGrad,
  sigmoid64,
  vec,
} from './testing.js';

const zs = [-1e4, -1e3, -50, -3, -0.5, 0, 0.5, 3, 50, 1e3, 1e4];

describe('math utilities', () => {
  it('readTidy reads the result and leaves no tensor behind', () => {
    const x = vec([1, -2, 3]);
    const before = tf.memory().numTensors;
    const out = readTidy(() => tf.mul(tf.add(x, 1), 2));
    expect(Array.from(out)).toEqual([4, -2, 8]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => readTidy(() => tf.div(x, tf.zeros([4])))).toThrow();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('logSigmoid is finite and matches float64 at extremes', () => {
    const z = vec(zs);
    const out = expectNoLeaks(() => logSigmoid(z));
    expectClose(out.dataSync(), zs.map(logSigmoid64), { atol: 1e-6, rtol: 1e-6 });
    const g = tf.grad((x: tf.Tensor) => tf.sum(logSigmoid(x)))(z);
    const gv = g.dataSync();
    expect(Array.from(gv).every(Number.isFinite)).toBe(true);
    expectClose(
      gv,
      zs.map((v) => sigmoid64(-v)),
      { atol: 1e-6 },
    );
    tf.dispose([z, out, g]);
  });

  it('logSumExp subtracts the max (no overflow at 1e4)', () => {
    const rows = [
      [1e4, 1e4 - 1, -1e4],
      [0.1, 0.2, 0.3],
    ];
    const out = logSumExp(tf.tensor2d(rows), 1);
    expectClose(out.dataSync(), rows.map(logSumExp64), { rtol: 1e-6 });
    out.dispose();
  });

  it('bernoulliKL K(z) ≥ 0, zero at 0, equals the float64 definition, finite gradient', () => {
    const z = vec(zs);
    const k = expectNoLeaks(() => bernoulliKL(z));
    expectClose(k.dataSync(), zs.map(bernoulliKL64), { atol: 1e-5, rtol: 1e-6 });
    expect(Array.from(k.dataSync()).every((v) => v >= -1e-7)).toBe(true);
    // dK/dz = σ(z) − ½
    const g = tf.grad((x: tf.Tensor) => tf.sum(bernoulliKL(x)))(z);
    expectClose(
      g.dataSync(),
      zs.map((v) => sigmoid64(v) - 0.5),
      { atol: 1e-6 },
    );
    const fd = numericGrad((x) => bernoulliKL64(x[0]!), [0.7]);
    const g1 = tf.grad((x: tf.Tensor) => tf.sum(bernoulliKL(x)))(vec([0.7]));
    expectClose(g1.dataSync(), fd, { atol: 1e-5 });
    tf.dispose([z, k, g, g1]);
  });

  it('implicit reward, metrics and stopGradient', () => {
    const pc = vec([-3, -5]);
    const pr = vec([-4, -4]);
    const rc = implicitReward(pc, vec([-3.5, -5.5]), 0.1);
    const rr = implicitReward(pr, vec([-4, -3]), 0.1);
    const m = readMetrics(pairwiseMetricTensors(rc, rr, pc, pr));
    expect(m['rewards/chosen']).toBeCloseTo(0.05, 6);
    expect(m['rewards/rejected']).toBeCloseTo(-0.05, 6);
    expect(m['rewards/margins']).toBeCloseTo(0.1, 6);
    expect(m['rewards/accuracies']).toBe(1);
    expect(m['logps/chosen']).toBe(-4);
    expect(readMetrics({ a: 2 })).toEqual({ a: 2 });
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(stopGradient(x), x)))(vec([3]));
    expect(g.dataSync()[0]).toBe(3);
  });
});

describe('detach', () => {
  it('computes gates from trainable inputs with ops that have no gradient', async () => {
    const { detach } = await import('./grad.js');
    const x = vec([1, -2, 3]);
    const g = tf.grad((v: tf.Tensor) => {
      const gate = detach(() => tf.cast(tf.greater(v, 0), 'float32'));
      return tf.sum(tf.mul(gate, tf.square(v)));
    })(x);
    expectClose(g.dataSync(), [2, 0, 6]);
    const before = tf.memory().numTensors;
    const d = detach(() => tf.add(x, 1));
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([x, g, d]);
  });
});
