import type { PointwiseInputs } from '@alignjs/core-logprob';
import {
  disposeInputs,
  expectClose,
  expectFinitePairwise,
  expectNoLeaks,
  logSigmoid64,
  mean64,
  metricsOf,
  numericGrad,
  type PairNumbers,
  pairInputs,
  randomPairs,
  sigmoid64,
  toyPairInputs,
  trainToyPair,
  vec,
} from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { dpoObjectives, ktoObjective } from './objectives.js';

/** float64 per-example losses written from objectives.md's table, independent of the tensor code. */
function oracle(name: string, c: Record<string, number>, n: PairNumbers, i: number): number {
  const b = c.beta!;
  const rw = n.policyChosen[i]! - n.refChosen[i]!;
  const rl = n.policyRejected[i]! - n.refRejected[i]!;
  const d = rw - rl;
  const eps = c.labelSmoothing ?? 0;
  switch (name) {
    case 'dpo':
    case 'cdpo':
      return -(1 - eps) * logSigmoid64(b * d) - eps * logSigmoid64(-b * d);
    case 'robust':
      return (-(1 - eps) * logSigmoid64(b * d) + eps * logSigmoid64(-b * d)) / (1 - 2 * eps);
    case 'hinge':
      return Math.max(0, 1 - b * d);
    case 'ipo': {
      const lw = n.chosenLengths[i]!;
      const ll = n.rejectedLengths[i]!;
      const dm =
        (n.policyChosen[i]! - n.refChosen[i]!) / lw -
        (n.policyRejected[i]! - n.refRejected[i]!) / ll;
      return (dm - 1 / (2 * b)) ** 2;
    }
    case 'simpo': {
      const m =
        n.policyChosen[i]! / n.chosenLengths[i]! - n.policyRejected[i]! / n.rejectedLengths[i]!;
      return -logSigmoid64(b * m - c.gamma!);
    }
    case 'nca_pair':
      return -logSigmoid64(b * rw) - 0.5 * logSigmoid64(-b * rw) - 0.5 * logSigmoid64(-b * rl);
    default:
      throw new Error(name);
  }
}

const pairwiseNames = ['dpo', 'cdpo', 'robust', 'ipo', 'hinge', 'simpo', 'nca_pair'] as const;
const configs: Record<string, Record<string, number>[]> = {
  dpo: [{}, { beta: 0.5, labelSmoothing: 0.2 }],
  cdpo: [{}, { beta: 1.3, labelSmoothing: 0.3 }],
  robust: [{}, { beta: 0.2, labelSmoothing: 0.25 }],
  ipo: [{}, { beta: 0.7 }],
  hinge: [{}, { beta: 0.3 }],
  simpo: [{}, { beta: 2.5, gamma: 0.3 }],
  nca_pair: [{}, { beta: 0.4 }],
};

describe.each(pairwiseNames)('%s', (name) => {
  const objective = dpoObjectives[name];

  it('equals the float64 formula on random inputs, with no leaks', () => {
    for (const raw of configs[name]!) {
      const c = objective.parseConfig(raw) as unknown as Record<string, number>;
      const n = randomPairs(9, 42);
      const inputs = pairInputs(n);
      const out = expectNoLeaks(() => objective.loss(inputs, c as never));
      const expected = mean64(n.policyChosen.map((_, i) => oracle(name, c, n, i)));
      expectClose(out.loss.dataSync()[0]!, expected, {
        atol: 1e-5,
        rtol: 1e-5,
        label: `${name} ${JSON.stringify(raw)}`,
      });
      const values = metricsOf(out);
      for (const m of objective.metricNames) expect(Number.isFinite(values[m])).toBe(true);
      out.loss.dispose();
      disposeInputs(inputs);
    }
  });

  it('gradients equal float64 finite differences', () => {
    const c = objective.parseConfig(configs[name]![1]) as unknown as Record<string, number>;
    const n = randomPairs(4, 7);
    const B = n.policyChosen.length;
    const f64 = (x: number[]) => {
      const m: PairNumbers = { ...n, policyChosen: x.slice(0, B), policyRejected: x.slice(B) };
      return mean64(x.slice(0, B).map((_, i) => oracle(name, c, m, i)));
    };
    const expected = numericGrad(f64, [...n.policyChosen, ...n.policyRejected], 1e-6);
    const inputs = pairInputs(n);
    const [gw, gl] = tf.grads(
      (w: tf.Tensor, l: tf.Tensor) =>
        objective.loss(
          { ...inputs, policyChosenLogps: w as tf.Tensor1D, policyRejectedLogps: l as tf.Tensor1D },
          c as never,
        ).loss,
    )([inputs.policyChosenLogps, inputs.policyRejectedLogps]);
    expectClose([...gw!.dataSync(), ...gl!.dataSync()], expected, {
      atol: 1e-4,
      rtol: 1e-3,
      label: `${name} grad`,
    });
    tf.dispose([gw!, gl!]);
    disposeInputs(inputs);
  });

  it('is finite with finite gradients at the numerical contract extremes', () => {
    const c = objective.parseConfig({}) as never;
    for (const [pw, pl] of [
      [-1e4, 0],
      [0, -1e4],
      [-1e4, -1e4],
    ] as const) {
      for (const shift of [1e3, -1e3]) {
        const n: PairNumbers = {
          policyChosen: [pw, pw + shift],
          policyRejected: [pl, pl - shift],
          refChosen: [pw - shift, pw],
          refRejected: [pl + shift, pl],
          chosenLengths: [1, 50],
          rejectedLengths: [3, 1],
        };
        const inputs = pairInputs(n);
        expectFinitePairwise(objective, inputs, c);
        disposeInputs(inputs);
      }
    }
  });
});

describe('reductions and errors', () => {
  it('label smoothing 0 is DPO; robust with ε = 0 is DPO', () => {
    const n = randomPairs(6, 3);
    const inputs = pairInputs(n);
    const base = dpoObjectives.dpo
      .loss(inputs, dpoObjectives.dpo.parseConfig({ beta: 0.3 }))
      .loss.dataSync()[0]!;
    const cdpo = dpoObjectives.cdpo.loss(
      inputs,
      dpoObjectives.cdpo.parseConfig({ beta: 0.3, labelSmoothing: 0 }),
    ).loss;
    const robust = dpoObjectives.robust.loss(
      inputs,
      dpoObjectives.robust.parseConfig({ beta: 0.3, labelSmoothing: 0 }),
    ).loss;
    expect(cdpo.dataSync()[0]).toBe(base);
    expectClose(robust.dataSync()[0]!, base, { atol: 1e-7, rtol: 1e-6 });
    tf.dispose([cdpo, robust]);
    disposeInputs(inputs);
  });

  it('rejects bad config with the field and the range', () => {
    expect(() => dpoObjectives.dpo.parseConfig({ beta: 0 })).toThrow(
      "dpo config: field 'beta' must be a number > 0, got 0",
    );
    expect(() => dpoObjectives.dpo.parseConfig({ beta: -1 })).toThrow(/beta/);
    expect(() => dpoObjectives.cdpo.parseConfig({ labelSmoothing: 0.5 })).toThrow(
      /labelSmoothing' must be a number >= 0 and < 0.5, got 0.5/,
    );
    expect(() => dpoObjectives.robust.parseConfig({ labelSmoothing: -0.1 })).toThrow(
      /labelSmoothing/,
    );
    expect(() => dpoObjectives.simpo.parseConfig({ gamma: -1 })).toThrow(/gamma/);
    expect(() => ktoObjective.parseConfig({ desirableWeight: 0 })).toThrow(/desirableWeight/);
    expect(() => dpoObjectives.hinge.parseConfig({ bet: 1 })).toThrow(/unknown field 'bet'/);
  });

  it('rejects missing or zero lengths for length-normalized losses, and missing references', () => {
    const n = randomPairs(3, 1);
    n.rejectedLengths[1] = 0;
    const inputs = pairInputs(n);
    const before = tf.memory().numTensors;
    expect(() => dpoObjectives.simpo.loss(inputs, dpoObjectives.simpo.parseConfig({}))).toThrow(
      /simpo: input 'rejectedLengths' must be > 0 for every row, row 1 is 0/,
    );
    expect(() => dpoObjectives.ipo.loss(inputs, dpoObjectives.ipo.parseConfig({}))).toThrow(
      /ipo: input 'rejectedLengths'/,
    );
    expect(() =>
      dpoObjectives.dpo.loss(
        { ...inputs, refChosenLogps: undefined },
        dpoObjectives.dpo.parseConfig({}),
      ),
    ).toThrow(/dpo: input 'refChosenLogps' is required/);
    expect(tf.memory().numTensors).toBe(before);
    expect(() =>
      dpoObjectives.dpo.loss(
        { kind: 'pointwise' } as PointwiseInputs,
        dpoObjectives.dpo.parseConfig({}),
      ),
    ).toThrow(/dpo: expects pairwise inputs, got pointwise/);
    disposeInputs(inputs);
  });
});

describe('kto', () => {
  const rows = {
    policy: [-5, -7, -3, -9, -4],
    ref: [-6, -6, -4, -8, -4.5],
    labels: [1, 0, 1, 0, 1],
    klPolicy: [-8, -9, -7, -10, -6],
    klRef: [-8.5, -8, -7.2, -10.1, -6.3],
  };
  const inputs = (): PointwiseInputs => ({
    kind: 'pointwise',
    policyLogps: vec(rows.policy),
    refLogps: vec(rows.ref),
    lengths: vec([3, 3, 3, 3, 3]),
    labels: vec(rows.labels),
    klPolicyLogps: vec(rows.klPolicy),
    klRefLogps: vec(rows.klRef),
  });
  const oracleKto = (policy: number[], beta: number, wd: number, wu: number) => {
    const z = Math.max(0, mean64(rows.klPolicy.map((v, i) => v - rows.klRef[i]!)));
    return mean64(
      policy.map((p, i) => {
        const rho = p - rows.ref[i]!;
        return rows.labels[i]
          ? wd * (1 - sigmoid64(beta * (rho - z)))
          : wu * (1 - sigmoid64(beta * (z - rho)));
      }),
    );
  };

  it('matches the float64 formula with the batch KL estimate, and its gradient', () => {
    const c = ktoObjective.parseConfig({ beta: 0.5, desirableWeight: 1.5, undesirableWeight: 0.7 });
    const x = inputs();
    const out = expectNoLeaks(() => ktoObjective.loss(x, c));
    expectClose(out.loss.dataSync()[0]!, oracleKto(rows.policy, 0.5, 1.5, 0.7), { atol: 1e-6 });
    const z = Math.max(0, mean64(rows.klPolicy.map((v, i) => v - rows.klRef[i]!)));
    expect(metricsOf(out).kl).toBeCloseTo(z, 5);
    // z is detached: the gradient w.r.t. the mismatched-pair log-probs is zero.
    const [gp, gk] = tf.grads(
      (p: tf.Tensor, k: tf.Tensor) =>
        ktoObjective.loss(
          { ...x, policyLogps: p as tf.Tensor1D, klPolicyLogps: k as tf.Tensor1D },
          c,
        ).loss,
    )([x.policyLogps, x.klPolicyLogps!]);
    expectClose(
      gp!.dataSync(),
      numericGrad((p) => oracleKto(p, 0.5, 1.5, 0.7), rows.policy, 1e-6),
      { atol: 1e-5 },
    );
    expect(Array.from(gk!.dataSync())).toEqual([0, 0, 0, 0, 0]);
    tf.dispose([out.loss, gp!, gk!]);
    disposeInputs(x);
  });

  it('needs labels and mismatched pairs', () => {
    const x = inputs();
    const c = ktoObjective.parseConfig({});
    expect(() => ktoObjective.loss({ ...x, klPolicyLogps: undefined }, c)).toThrow(
      /kto: input 'klPolicyLogps' is required/,
    );
    const bad = vec([1, 0, 2, 0, 1]);
    expect(() => ktoObjective.loss({ ...x, labels: bad }, c)).toThrow(
      /labels must be 0 or 1, row 2 is 2/,
    );
    tf.dispose(bad);
    disposeInputs(x);
  });
});

describe('toy policy: DPO raises the chosen/rejected margin', () => {
  it('a unigram policy trained with each pairwise loss increases the margin', () => {
    for (const name of pairwiseNames) {
      const objective = dpoObjectives[name];
      const c = objective.parseConfig(name === 'simpo' ? { beta: 2 } : { beta: 0.5 }) as never;
      const r = trainToyPair((lp, ref) => objective.loss(toyPairInputs(lp, ref), c).loss, 200);
      expect(r.margin, name).toBeGreaterThan(0.5);
    }
  });
});
