import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { hostTensor, hostValues } from './host.js';
import { planLayout } from './layouts.js';
import { computeLoss, detachInputs, type ObjectiveNeeds } from './objective.js';
import { vec } from './testing.js';

beforeAll(async () => {
  await initBackend();
});

const needs = (inputs: ObjectiveNeeds['inputs'], extra: Partial<ObjectiveNeeds> = {}) =>
  ({
    inputs,
    reference: true,
    promptLogps: false,
    rewards: false,
    mismatchedPairs: false,
    ...extra,
  }) as ObjectiveNeeds;

describe('input roles', () => {
  it('a tensor under an undeclared field is an error, not a silent detach', () => {
    const x = {
      kind: 'pairwise' as const,
      policyChosenLogps: vec([1]),
      policyRejectedLogps: vec([2]),
      chosenLengths: vec([1]),
      rejectedLengths: vec([1]),
      policyChosenMeans: vec([3]),
    };
    expect(() => tf.tidy(() => detachInputs(x as never))).toThrow(
      /pairwise inputs have no field 'policyChosenMeans'/,
    );
    tf.dispose(Object.values(x).filter((v) => v instanceof tf.Tensor) as tf.Tensor[]);
  });

  it('policy fields keep their gradient, data fields get none', () => {
    const [w, l, r] = [vec([0.5]), vec([-0.5]), vec([0.1])];
    const [gw, gr] = tf.grads(
      (a: tf.Tensor, ref: tf.Tensor) =>
        computeLoss(
          't',
          {
            kind: 'pairwise',
            policyChosenLogps: a as tf.Tensor1D,
            policyRejectedLogps: l,
            refChosenLogps: ref as tf.Tensor1D,
            refRejectedLogps: r,
            chosenLengths: vec([1]),
            rejectedLengths: vec([1]),
          },
          'pairwise',
          (p) => ({
            loss: tf.sum(tf.mul(p.policyChosenLogps, p.refChosenLogps!)) as tf.Scalar,
            metrics: {},
          }),
        ).loss,
    )([w, r]);
    expect(gw!.dataSync()[0]).toBeCloseTo(0.1, 6);
    expect(gr!.dataSync()[0]).toBe(0);
    tf.dispose([w, l, r, gw!, gr!]);
  });
});

describe('host copies', () => {
  it('hostValues returns the registered copy without reading the device', () => {
    const t = hostTensor([1, 2, 3], [3]);
    const b = tf.backend() as unknown as { readSync: (...a: unknown[]) => unknown };
    const orig = b.readSync;
    let reads = 0;
    b.readSync = (...a) => {
      reads++;
      return orig.apply(b, a);
    };
    try {
      expect(Array.from(hostValues(t))).toEqual([1, 2, 3]);
      expect(reads).toBe(0);
      const plain = tf.tensor1d([4, 5]);
      expect(Array.from(hostValues(plain))).toEqual([4, 5]);
      expect(reads).toBe(1);
      plain.dispose();
    } finally {
      b.readSync = orig;
      t.dispose();
    }
  });
});

describe('layouts', () => {
  const ex = (line: number, responses: number[][], scores?: number[]) => ({
    kind: 'multi' as const,
    line,
    prompt: [1, 2],
    responses,
    ...(scores ? { scores } : {}),
  });

  it('multi: rows per response, [B, K] grids with empty slots masked, prompt log-probs of each first row', () => {
    const before = tf.memory().numTensors;
    const plan = planLayout(
      [ex(1, [[10], [11], [12]], [0.9, 0.5, 0.1]), ex(2, [[13], [14, 15]], [0.2, 0.8])],
      'multi',
      needs('multi'),
    );
    expect(plan.rows.map((r) => r.response)).toEqual([[10], [11], [12], [13], [14, 15]]);
    plan.setReference({
      sum: Float32Array.from([-1, -2, -3, -4, -5]),
      prompt: Float32Array.from([-0.5, -0.5, -0.5, -0.7, -0.7]),
    });
    const policy = { sum: vec([1, 2, 3, 4, 5]), prompt: vec([0.1, 0.1, 0.1, 0.2, 0.2]) };
    const x = tf.tidy(() => plan.assemble(policy) as never) as Record<string, tf.Tensor>;
    expect(x.policyLogps!.arraySync()).toEqual([
      [1, 2, 3],
      [4, 5, 0],
    ]);
    expect(x.refLogps!.arraySync()).toEqual([
      [-1, -2, -3],
      [-4, -5, 0],
    ]);
    expect(x.mask!.arraySync()).toEqual([
      [1, 1, 1],
      [1, 1, 0],
    ]);
    expect(x.lengths!.arraySync()).toEqual([
      [1, 1, 1],
      [1, 2, 1],
    ]);
    const pp = x.policyPromptLogps!.dataSync();
    expect(pp[0]).toBeCloseTo(0.1, 6);
    expect(pp[1]).toBeCloseTo(0.2, 6);
    // what assemble made from the policy and the reference; the data tensors are the plan's
    tf.dispose([x.policyLogps!, x.refLogps!, x.policyPromptLogps!, x.refPromptLogps!]);
    tf.dispose(Object.values(policy));
    plan.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses data that does not fit the layout, naming the line', () => {
    expect(() => planLayout([ex(7, [[10]])], 'multi', needs('multi'))).toThrow(
      /line 7: multi inputs need a score per response/,
    );
    expect(() =>
      planLayout(
        [{ ...ex(3, [[1], [2]]), kind: 'pairwise' }],
        'pairwise',
        needs('pairwise', { rewards: true }),
      ),
    ).toThrow(/line 3: this objective needs scores/);
    expect(() => planLayout([ex(1, [[1]], [1])], 'multi', needs('pairwise'))).toThrow(
      /pairwise inputs need pairwise data, got multi/,
    );
  });

  it('pointwise with KTO pairs: completion i − 1 for prompt i; disposing the plan frees its tensors', () => {
    const before = tf.memory().numTensors;
    const plan = planLayout(
      [0, 1, 2].map((i) => ({
        kind: 'binary' as const,
        line: i + 1,
        prompt: [1, i + 5],
        responses: [[20 + i]],
        label: (i % 2) as 0 | 1,
      })),
      'binary',
      needs('pointwise', { mismatchedPairs: true }),
    );
    expect(plan.rows.slice(3).map((r) => [r.prompt[1], r.response[0]])).toEqual([
      [5, 22],
      [6, 20],
      [7, 21],
    ]);
    plan.setReference({ sum: new Float32Array(6), prompt: new Float32Array(6) });
    plan.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
