/**
 * The TRL loss types, ORPO and CPO against float64 formulas written from their papers and
 * TRL's code (independent of the tensor code), finite differences, the numerical contract's
 * extremes, and config errors.
 */
import { type PairwiseInputs, weightedSum } from '@alignjs/core-logprob';
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
  vec,
} from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { dpoObjectives } from './objectives.js';
import { sortAscending } from './trl-losses.js';

type Cfg = Record<string, number | string | boolean>;
const sig = sigmoid64;
const ls = logSigmoid64;

function fdiv(r: number, c: Cfg): number {
  switch (c.fDivergenceType ?? 'reverse_kl') {
    case 'forward_kl':
      return 1 - Math.exp(-r);
    case 'js_divergence':
      return Math.LN2 + ls(r);
    case 'alpha_divergence': {
      const a = (c.fAlphaDivergenceCoef as number) ?? 0.5;
      return (Math.exp((a - 1) * r) - 1) / (a - 1);
    }
    default:
      return r;
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const log1mexp64 = (x: number) => Math.log(-Math.expm1(x));

/** float64 batch loss (mean over rows) of one objective from plain numbers. */
function oracle(name: string, c: Cfg, n: PairNumbers, wpo?: [number[], number[]]): number {
  const b = (c.beta as number) ?? 0.1;
  const eps = (c.labelSmoothing as number) ?? 0;
  const B = n.policyChosen.length;
  const rw = n.policyChosen.map((v, i) => v - n.refChosen[i]!);
  const rl = n.policyRejected.map((v, i) => v - n.refRejected[i]!);
  const d = rw.map((v, i) => fdiv(v, c) - fdiv(rl[i]!, c));
  const nll = -n.policyChosen.reduce((s, v) => s + v, 0) / n.chosenLengths.reduce((s, v) => s + v);
  const per: number[] = Array.from({ length: B }, (_, i) => {
    const z = b * d[i]!;
    switch (name) {
      case 'exo_pair':
        return sig(z) * (ls(z) - Math.log(1 - eps)) + sig(-z) * (ls(-z) - Math.log(eps));
      case 'bco_pair':
        return -ls(b * rw[i]!) - ls(-b * rl[i]!);
      case 'sppo_hard':
        return (rw[i]! - 0.5 / b) ** 2 + (rl[i]! + 0.5 / b) ** 2;
      case 'apo_zero':
        return 1 - sig(b * rw[i]!) + sig(b * rl[i]!);
      case 'apo_down':
        return sig(b * rw[i]!) + 1 - sig(b * (rw[i]! - rl[i]!));
      case 'discopop': {
        const m = sig(z / (c.discopopTau as number));
        return (1 - m) * -ls(z) + m * Math.exp(-z);
      }
      case 'sigmoid_norm': {
        const dm = fdiv(rw[i]!, c) / n.chosenLengths[i]! - fdiv(rl[i]!, c) / n.rejectedLengths[i]!;
        return -ls(b * dm);
      }
      case 'sft':
        return nll;
      case 'orpo': {
        const mw = n.policyChosen[i]! / n.chosenLengths[i]!;
        const ml = n.policyRejected[i]! / n.rejectedLengths[i]!;
        const lo = mw - ml - (log1mexp64(mw) - log1mexp64(ml));
        return nll - b * ls(lo);
      }
      case 'cpo': {
        const mean = c.lossType === 'ipo' || c.lossType === 'simpo';
        const lw = mean ? n.policyChosen[i]! / n.chosenLengths[i]! : n.policyChosen[i]!;
        const ll = mean ? n.policyRejected[i]! / n.rejectedLengths[i]! : n.policyRejected[i]!;
        let m = lw - ll;
        const alpha = (c.cpoAlpha as number) ?? 1;
        let loss: number;
        if (c.lossType === 'hinge') loss = Math.max(0, 1 - b * m);
        else if (c.lossType === 'ipo') loss = (m - 1 / (2 * b)) ** 2;
        else {
          if (c.lossType === 'simpo') m -= ((c.simpoGamma as number) ?? 0.5) / b;
          loss = -(1 - eps) * ls(b * m) - eps * ls(-b * m);
        }
        return loss + alpha * nll;
      }
      default:
        return Number.NaN; // the batch-level losses below
    }
  });
  if (name === 'aot' || name === 'aot_unpaired') {
    const dd =
      name === 'aot'
        ? (() => {
            const pm = sorted(n.policyChosen.map((v, i) => v - n.policyRejected[i]!));
            const rm = sorted(n.refChosen.map((v, i) => v - n.refRejected[i]!));
            return pm.map((v, i) => v - rm[i]!);
          })()
        : (() => {
            const sw = sorted(rw);
            const sl = sorted(rl);
            return sw.map((v, i) => v - sl[i]!);
          })();
    return mean64(dd.map((x) => -(1 - eps) * ls(b * x) - eps * ls(-b * x)));
  }
  if (wpo) return mean64(per.map((v, i) => v * Math.exp(wpo[0][i]! + wpo[1][i]!)));
  return mean64(per);
}

const CASES: [string, Cfg][] = [
  ['exo_pair', { beta: 0.3, labelSmoothing: 0.1 }],
  ['exo_pair', { labelSmoothing: 0.01, fDivergenceType: 'js_divergence' }],
  ['bco_pair', { beta: 0.4 }],
  ['sppo_hard', { beta: 0.5 }],
  ['aot', { beta: 0.5, labelSmoothing: 0.2 }],
  ['aot_unpaired', { beta: 0.4, labelSmoothing: 0.1 }],
  ['apo_zero', { beta: 0.3 }],
  ['apo_down', { beta: 0.3 }],
  ['discopop', { beta: 0.5, discopopTau: 0.3 }],
  ['discopop', { beta: 0.2, discopopTau: 0.05, fDivergenceType: 'alpha_divergence' }],
  ['sigmoid_norm', { beta: 1.5 }],
  ['sigmoid_norm', { beta: 1.5, fDivergenceType: 'forward_kl' }],
  ['sft', {}],
  ['orpo', { beta: 0.5 }],
  ['cpo', { lossType: 'sigmoid', beta: 0.2, labelSmoothing: 0.1, cpoAlpha: 0.5 }],
  ['cpo', { lossType: 'hinge', beta: 0.3 }],
  ['cpo', { lossType: 'ipo', beta: 0.7, cpoAlpha: 0 }],
  ['cpo', { lossType: 'simpo', beta: 2, simpoGamma: 0.8 }],
];

const all = dpoObjectives as unknown as Record<
  string,
  (typeof dpoObjectives)['dpo'] & { parseConfig: (r: unknown) => object }
>;

/** Pairs with valid log-probs for the reference-free ones (means < 0). */
function pairs(B: number, seed: number): PairNumbers {
  return randomPairs(B, seed);
}

describe.each(CASES.map(([n, c]) => [`${n} ${JSON.stringify(c)}`, n, c] as const))(
  '%s',
  (_label, name, raw) => {
    const objective = all[name]!;
    const c = objective.parseConfig(raw) as unknown as Cfg;

    it('equals the float64 formula, with no leaks', () => {
      const n = pairs(7, 11);
      const x = pairInputs(n);
      const out = expectNoLeaks(() => objective.loss(x, c as never));
      expectClose(out.loss.dataSync()[0]!, oracle(name, c, n), { atol: 1e-5, rtol: 1e-5 });
      const values = metricsOf(out);
      for (const m of objective.metricNames) expect(Number.isFinite(values[m]), m).toBe(true);
      out.loss.dispose();
      disposeInputs(x);
    });

    it('gradients equal float64 finite differences', () => {
      const n = pairs(4, 5);
      const B = 4;
      const f64 = (v: number[]) =>
        oracle(name, c, { ...n, policyChosen: v.slice(0, B), policyRejected: v.slice(B) });
      const expected = numericGrad(f64, [...n.policyChosen, ...n.policyRejected], 1e-6);
      const x = pairInputs(n);
      const [gw, gl] = tf.grads((w: tf.Tensor, l: tf.Tensor) =>
        tf.add(
          objective.loss(
            { ...x, policyChosenLogps: w as tf.Tensor1D, policyRejectedLogps: l as tf.Tensor1D },
            c as never,
          ).loss,
          tf.mul(0, tf.sum(l)),
        ),
      )([x.policyChosenLogps, x.policyRejectedLogps]);
      expectClose([...gw!.dataSync(), ...gl!.dataSync()], expected, {
        atol: 2e-4,
        rtol: 1e-3,
        label: 'grad',
      });
      tf.dispose([gw!, gl!]);
      disposeInputs(x);
    });

    it("is finite with finite gradients at the numerical contract's extremes", () => {
      for (const [pw, pl] of [
        [-1e4, -1],
        [-1, -1e4],
        [-1e4, -1e4],
      ] as const) {
        for (const shift of [1e3, -1e3]) {
          // log-probs stay ≤ 0 (ORPO/CPO read them as probabilities); ratios reach ±1e3
          const n: PairNumbers = {
            policyChosen: [pw, Math.min(pw + shift, -1e-3)],
            policyRejected: [pl, Math.min(pl - shift, -1e-3)],
            refChosen: [pw - shift, pw],
            refRejected: [pl + shift, pl],
            chosenLengths: [1, 50],
            rejectedLengths: [3, 1],
          };
          const x = pairInputs(n);
          expect(() =>
            expectFinitePairwise(
              {
                ...objective,
                loss: (i, cc) => {
                  const o = objective.loss(i, cc);
                  // sft does not read the rejected log-probs; tf.grads wants both used
                  return {
                    ...o,
                    loss: tf.add(
                      o.loss,
                      tf.mul(0, tf.sum((i as PairwiseInputs).policyRejectedLogps)),
                    ) as tf.Scalar,
                  };
                },
              },
              x,
              c as never,
            ),
          ).not.toThrow();
          disposeInputs(x);
        }
      }
    });
  },
);

describe('modifiers', () => {
  it('WPO multiplies each pair by exp(a_w + a_l)', () => {
    const n = pairs(6, 3);
    const a: [number[], number[]] = [
      [-0.5, -1.2, -0.3, -2, -0.9, -1],
      [-1, -0.4, -0.8, -0.1, -1.5, -0.7],
    ];
    const x = { ...pairInputs(n), chosenWpoLogps: vec(a[0]), rejectedWpoLogps: vec(a[1]) };
    for (const name of ['bco_pair', 'apo_zero', 'sigmoid_norm', 'discopop']) {
      const c = all[name]!.parseConfig({ useWeighting: true, beta: 0.3 }) as unknown as Cfg;
      const got = all[name]!.loss(x, c as never);
      const cfg = { discopopTau: 0.05, ...c };
      expectClose(got.loss.dataSync()[0]!, oracle(name, cfg, n, a), { atol: 1e-6, label: name });
      got.loss.dispose();
      expect(all[name]!.needs(c as never).wpoWeights).toBe(true);
    }
    expect(() =>
      all.bco_pair!.loss(pairInputs(n), all.bco_pair!.parseConfig({ useWeighting: true }) as never),
    ).toThrow(/bco_pair: input 'chosenWpoLogps' is required/);
    disposeInputs(x);
  });

  it('ldAlpha and referenceFree become needs; reference-free ratios are the policy log-probs', () => {
    const c = all.apo_down!.parseConfig({ ldAlpha: 0.4, referenceFree: true }) as never;
    const needs = all.apo_down!.needs(c);
    expect(needs.ldAlpha).toBe(0.4);
    expect(needs.reference).toBe(false);
    const n = pairs(5, 9);
    const x = pairInputs(n);
    const got = all.apo_down!.loss(
      { ...x, refChosenLogps: undefined, refRejectedLogps: undefined },
      c,
    );
    const zero = {
      ...n,
      refChosen: n.refChosen.map(() => 0),
      refRejected: n.refRejected.map(() => 0),
    };
    expectClose(got.loss.dataSync()[0]!, oracle('apo_down', { beta: 0.1 }, zero), { atol: 1e-6 });
    got.loss.dispose();
    disposeInputs(x);
  });

  it('sortAscending sorts, breaks ties by index and routes gradients to the sorted slots', () => {
    const x = vec([3, -1, 2, -1, 0]);
    expect(Array.from(sortAscending(x).dataSync())).toEqual([-1, -1, 0, 2, 3]);
    const w = vec([1, 2, 3, 4, 5]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(sortAscending(v as tf.Tensor1D), w)))(x);
    // slots: -1(i=1)→0, -1(i=3)→1, 0(i=4)→2, 2(i=2)→3, 3(i=0)→4
    expect(Array.from(g.dataSync())).toEqual([5, 1, 4, 2, 3]);
    tf.dispose([x, w, g]);
  });
});

describe('config errors name the field', () => {
  it('rejects what TRL rejects or ignores', () => {
    expect(() => all.exo_pair!.parseConfig({ labelSmoothing: 0 })).toThrow(
      /exo_pair config: field 'labelSmoothing' must be a number > 0 and < 1, got 0/,
    );
    expect(() => all.bco_pair!.parseConfig({ fDivergenceType: 'js_divergence' })).toThrow(
      /bco_pair config: unknown field 'fDivergenceType'/,
    );
    expect(() => all.aot!.parseConfig({ useWeighting: true })).toThrow(
      /aot config: unknown field 'useWeighting'/,
    );
    expect(() => all.dpo!.parseConfig({ fDivergenceType: 'kl' })).toThrow(
      /field 'fDivergenceType' must be one of 'reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'/,
    );
    expect(() => all.dpo!.parseConfig({ ldAlpha: 1.5 })).toThrow(
      /'ldAlpha' must be a number >= 0 and <= 1/,
    );
    expect(() => all.sft!.parseConfig({ beta: 0.1 })).toThrow(/sft config: unknown field 'beta'/);
    expect(() => all.cpo!.parseConfig({ lossType: 'hinge', labelSmoothing: 0.1 })).toThrow(
      /cpo config: field 'labelSmoothing' is not used by lossType 'hinge'/,
    );
    expect(() => all.cpo!.parseConfig({ lossType: 'ipo', simpoGamma: 1 })).toThrow(/simpoGamma/);
  });
});

describe('weighted sum', () => {
  it("equals the weighted sum of its parts' losses and gradients, metrics under prefixes", () => {
    const parts = [
      { objective: all.dpo!, weight: 0.8 },
      { objective: all.bco_pair!, weight: 0.2 },
      { objective: all.sft!, weight: 1 },
      { objective: all.dpo!, weight: 0.5 },
    ];
    const combo = weightedSum(parts as never);
    const raws = [{ beta: 0.3 }, {}, {}, { beta: 0.9 }];
    const c = combo.parseConfig(raws);
    const n = pairs(6, 21);
    const x = pairInputs(n);
    const f = (inputs: PairwiseInputs) => combo.loss(inputs, c);
    const out = expectNoLeaks(() => f(x));
    const partLoss = (i: number, inputs: PairwiseInputs) =>
      parts[i]!.objective.loss(inputs, parts[i]!.objective.parseConfig(raws[i]) as never);
    let expected = 0;
    parts.forEach((p, i) => {
      const o = partLoss(i, x);
      expected += p.weight * o.loss.dataSync()[0]!;
      o.loss.dispose();
    });
    expectClose(out.loss.dataSync()[0]!, expected, { atol: 1e-6 });
    expect(Object.keys(out.metrics)).toContain('bco_pair/rewards/margins');
    expect(Object.keys(out.metrics)).toContain('dpo_2/loss');
    expect(Object.keys(out.metrics)).toContain('sft/nll_loss');
    out.loss.dispose();
    const grad = (loss: (w: tf.Tensor1D) => tf.Scalar) =>
      Array.from(
        tf
          .grad((w: tf.Tensor) => loss(w as tf.Tensor1D))(x.policyChosenLogps)
          .dataSync(),
      );
    const got = grad((w) => f({ ...x, policyChosenLogps: w }).loss);
    const sum = parts
      .map((p, i) =>
        grad((w) => partLoss(i, { ...x, policyChosenLogps: w }).loss).map((g) => g * p.weight),
      )
      .reduce((a, b) => a.map((v, k) => v + b[k]!));
    expectClose(got, sum, { atol: 1e-6 });
    expect(combo.needs(c).reference).toBe(true);
    disposeInputs(x);
  });

  it('merges needs and refuses parts that disagree on ldAlpha or the input layout', () => {
    const onlyFree = weightedSum([
      { objective: all.sft!, weight: 1 },
      { objective: all.orpo!, weight: 1 },
    ] as never);
    expect(onlyFree.needs(onlyFree.parseConfig([{}, {}])).reference).toBe(false);
    const ld = weightedSum([
      { objective: all.dpo!, weight: 1 },
      { objective: all.sft!, weight: 1 },
    ] as never);
    expect(() => ld.parseConfig([{ ldAlpha: 0.5 }, {}])).toThrow(/'ldAlpha' changes the log-probs/);
    const mixed = weightedSum([
      { objective: all.dpo!, weight: 1 },
      { objective: all.kto!, weight: 1 },
    ] as never);
    expect(() => mixed.parseConfig([{}, {}])).toThrow(
      /'kto' takes pointwise inputs but 'dpo' takes pairwise/,
    );
    expect(() => weightedSum([{ objective: all.dpo!, weight: -1 }] as never)).toThrow(/weight/);
  });
});
