// The Objective contract, checked for every objective the repo publishes.

import { OBJECTIVES } from '@alignjs/cli';
import type { Objective, ObjectiveInputs } from '@alignjs/core-logprob';
import { metricsOf, rng } from '@alignjs/core-logprob/testing';
import { dpoObjectives } from '@alignjs/loss-dpo';
import { proObjective } from '@alignjs/loss-pro';
import { raoObjective } from '@alignjs/loss-rao';
import { unaObjective } from '@alignjs/loss-una';
import { unidpoObjective } from '@alignjs/loss-unidpo';
import { varObjective } from '@alignjs/loss-var';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

type AnyObjective = Objective<object>;

/**
 * Every objective of the CLI's registry (so a newly registered one is checked with its
 * defaults), plus the configs that change an objective's input layout.
 */
/** Objectives whose defaults need a field (UNA's default feedback is scores with a range). */
const BASE: Record<string, Record<string, unknown>> = { una: { feedback: 'pairwise' } };
const cases: [AnyObjective, Record<string, unknown>][] = [
  ...Object.values(OBJECTIVES).map(
    (o) => [o, BASE[o.name] ?? {}] as [AnyObjective, Record<string, unknown>],
  ),
  [unaObjective as AnyObjective, { feedback: 'binary' }],
  [unaObjective as AnyObjective, { feedback: 'score', scoreRange: [0, 10] }],
  [unaObjective as AnyObjective, { feedback: 'mixed', scoreRange: [0, 10] }],
  [varObjective as AnyObjective, { mode: 'diagonal', lengthNormalized: true }],
  [proObjective as AnyObjective, { feedback: 'binary' }],
  [proObjective as AnyObjective, { feedback: 'scalar', scoreRange: [0, 10] }],
];

it('the registry holds every published objective', () => {
  const names = new Set(Object.values(OBJECTIVES).map((o) => o.name));
  for (const o of [
    ...Object.values(dpoObjectives),
    unidpoObjective,
    unaObjective,
    raoObjective,
    varObjective,
    proObjective,
  ])
    expect(names.has((o as AnyObjective).name), o.name).toBe(true);
});

const B = 4;
const K = 3;

/** Plausible inputs of the layout `needs(config).inputs` asks for. Returns tensors by field. */
function sampleInputs(o: AnyObjective, config: object, seed: number): ObjectiveInputs {
  const r = rng(seed);
  const logps = (n: number) => Array.from({ length: n }, () => -10 - 5 * r.uniform());
  const v = (xs: number[]) => tf.tensor1d(xs);
  const m = (n: number) => tf.tensor2d(Array.from({ length: n }, () => logps(K)));
  switch (o.needs(config).inputs) {
    case 'pairwise':
      return {
        kind: 'pairwise',
        policyChosenLogps: v(logps(B)),
        policyRejectedLogps: v(logps(B)),
        refChosenLogps: v(logps(B)),
        refRejectedLogps: v(logps(B)),
        chosenLengths: v([3, 5, 2, 7]),
        rejectedLengths: v([4, 4, 6, 1]),
        chosenScores: v([4.5, 3.5, 2, 5]),
        rejectedScores: v([1, 2, 2.5, 3]),
      };
    case 'pointwise':
      return {
        kind: 'pointwise',
        policyLogps: v(logps(B)),
        refLogps: v(logps(B)),
        lengths: v([3, 5, 2, 7]),
        labels: v([1, 0, 1, 0]),
        scores: v([1, 7, 3, 9]),
        isBinary: v([1, 0, 0, 1]),
        klPolicyLogps: v(logps(B)),
        klRefLogps: v(logps(B)),
      };
    case 'multi':
      return {
        kind: 'multi',
        policyLogps: m(B),
        refLogps: m(B),
        lengths: tf.fill([B, K], 4) as tf.Tensor2D,
        scores: tf.tensor2d([
          [1, 5, 9],
          [2, 2, 8],
          [0, 10, 0],
          [3, 4, 0],
        ]),
        mask: tf.tensor2d([
          [1, 1, 1],
          [1, 1, 0],
          [1, 1, 1],
          [1, 0, 0],
        ]),
        policyPromptLogps: v(logps(B)),
        refPromptLogps: v(logps(B)),
      };
    case 'cross':
      return {
        kind: 'cross',
        policyLogps: v(logps(B)),
        lengths: v([3, 5, 2, 7]),
        refCrossLogps: tf.tensor2d(Array.from({ length: B }, () => logps(B))),
        crossRewards: tf.tensor2d(Array.from({ length: B }, () => logps(B).map((x) => x / 10))),
        rewards: v([0.5, -1, 2, 0]),
      };
  }
}

const tensorsOf = (x: ObjectiveInputs) =>
  Object.entries(x).filter((e): e is [string, tf.Tensor] => e[1] instanceof tf.Tensor);

describe.each(cases)('%s contract', (o, raw) => {
  const label = `${o.name} ${JSON.stringify(raw)}`;

  it(`${label}: parseConfig returns a frozen config and rejects garbage`, () => {
    const c = o.parseConfig(raw);
    expect(Object.isFrozen(c)).toBe(true);
    expect(o.parseConfig(c)).toEqual(c);
    for (const bad of [42, 'beta', [1, 2], true])
      expect(() => o.parseConfig(bad)).toThrow(/config: expected an object/);
    expect(() => o.parseConfig({ ...raw, notAField: 1 })).toThrow(/unknown field 'notAField'/);
    expect(() => o.parseConfig({ ...raw, beta: -1 })).toThrow(/beta|lambda/);
    expect(o.feedbackFor(c).length).toBeGreaterThan(0);
    expect(o.feedback.length).toBeGreaterThan(0);
  });

  it(`${label}: finite scalar loss, documented finite metrics, no tensor leaks`, () => {
    const c = o.parseConfig(raw);
    const x = sampleInputs(o, c, 1);
    const before = tf.memory().numTensors;
    const out = o.loss(x, c);
    // the loss and one scalar tensor per metric, nothing else
    expect(tf.memory().numTensors).toBe(before + 1 + Object.keys(out.metrics).length);
    expect(out.loss.rank).toBe(0);
    expect(Number.isFinite(out.loss.dataSync()[0])).toBe(true);
    expect(Object.keys(out.metrics).length).toBeGreaterThan(0);
    for (const t of Object.values(out.metrics)) expect(t.rank).toBe(0);
    for (const [k, v] of Object.entries(metricsOf(out))) {
      expect(o.metricNames, `${k} is not documented`).toContain(k);
      expect(Number.isFinite(v), k).toBe(true);
    }
    out.loss.dispose();
    tf.dispose(tensorsOf(x).map((e) => e[1]));
  });

  it(`${label}: gradients reach policy inputs and never reference inputs`, () => {
    const c = o.parseConfig(raw);
    const x = sampleInputs(o, c, 2);
    const entries = tensorsOf(x).filter(([k]) => k.startsWith('policy') || k.startsWith('ref'));
    const grads = tf.grads((...ts: tf.Tensor[]) => {
      const replaced = { ...x } as Record<string, unknown>;
      entries.forEach(([k], i) => {
        replaced[k] = ts[i];
      });
      // + 0·Σx keeps inputs an objective ignores (SimPO's references) connected.
      const anchor = ts.reduce((s: tf.Tensor, t) => tf.add(s, tf.mul(0, tf.sum(t))), tf.scalar(0));
      return tf.add(o.loss(replaced as unknown as ObjectiveInputs, c).loss, anchor);
    })(entries.map((e) => e[1]));
    entries.forEach(([k], i) => {
      const g = Array.from(grads[i]!.dataSync());
      expect(g.every(Number.isFinite), k).toBe(true);
      if (k.startsWith('ref'))
        expect(
          g.every((v) => v === 0),
          `${label}: gradient reached ${k}`,
        ).toBe(true);
    });
    const policyFields = entries
      .map(([k], i) => [k, grads[i]!] as const)
      .filter(([k]) => k === 'policyLogps' || k === 'policyChosenLogps');
    expect(policyFields.length).toBe(1);
    expect(
      Array.from(policyFields[0]![1].dataSync()).some((v) => v !== 0),
      `${label}: no gradient reached the policy`,
    ).toBe(true);
    tf.dispose([...grads, ...tensorsOf(x).map((e) => e[1])]);
  });
});

it('every objective name is unique and matches what users type', () => {
  const names = new Set(cases.map(([o]) => o.name));
  expect([...names].sort()).toEqual(
    [
      'aot',
      'aot_unpaired',
      'apo_down',
      'apo_zero',
      'bco_pair',
      'cdpo',
      'cpo',
      'discopop',
      'dpo',
      'exo_pair',
      'hinge',
      'ipo',
      'kto',
      'nca_pair',
      'orpo',
      'pro',
      'rao',
      'robust',
      'sft',
      'sigmoid_norm',
      'simpo',
      'sppo_hard',
      'una',
      'unidpo',
      'var',
    ].sort(),
  );
});
