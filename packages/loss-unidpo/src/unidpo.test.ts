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
} from '@alignjs/core-logprob/testing';
import { dpoObjective, ipoObjective } from '@alignjs/loss-dpo';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type UniDpoConfig, unidpoObjective } from './unidpo.js';

/** float64 Uni-DPO per example, from objectives.md. */
function oracle(
  c: UniDpoConfig,
  n: PairNumbers,
  i: number,
): { loss: number; wQual: number; wPerf: number; gate: number } {
  const mW = n.policyChosen[i]! / n.chosenLengths[i]!;
  const mL = n.policyRejected[i]! / n.rejectedLengths[i]!;
  const rW = n.refChosen[i]! / n.chosenLengths[i]!;
  const rL = n.refRejected[i]! / n.rejectedLengths[i]!;
  const deltaR = c.beta * (mW - mL - (rW - rL));
  const wQual = sigmoid64(c.eta * (n.chosenScores![i]! - n.rejectedScores![i]!));
  const wPerf = (1 - sigmoid64(c.beta * (mW - mL) - c.tauRef)) ** c.gamma;
  const diff = n.refChosen[i]! - n.policyChosen[i]!;
  const first = c.cnllMode === 'sign' ? Math.sign(diff) : diff > 0 ? 1 : 0;
  const gate = first * (n.chosenScores![i]! >= c.tauGood ? 1 : 0);
  return {
    loss: -wQual * wPerf * logSigmoid64(deltaR) + c.lambda * gate * -mW,
    wQual,
    wPerf,
    gate,
  };
}

describe('unidpo', () => {
  it('defaults are Table C.1', () => {
    expect(unidpoObjective.parseConfig({})).toEqual({
      beta: 2,
      eta: 0.7,
      gamma: 3,
      lambda: 0.001,
      tauGood: 3.2,
      tauRef: 1,
      cnllMode: 'indicator',
    });
  });

  for (const raw of [
    {},
    { lambda: 0.5, gamma: 1.5, cnllMode: 'sign' },
    { beta: 0.3, eta: 2, tauRef: -0.5, tauGood: 2 },
  ]) {
    it(`equals the float64 formula and its metrics (${JSON.stringify(raw)})`, () => {
      const c = unidpoObjective.parseConfig(raw);
      const n = randomPairs(12, 5);
      const x = pairInputs(n);
      const out = expectNoLeaks(() => unidpoObjective.loss(x, c));
      const o = n.policyChosen.map((_, i) => oracle(c, n, i));
      expectClose(out.loss.dataSync()[0]!, mean64(o.map((v) => v.loss)), {
        atol: 1e-5,
        rtol: 1e-5,
      });
      const m = metricsOf(out);
      expectClose(m['unidpo/w_qual']!, mean64(o.map((v) => v.wQual)), { atol: 1e-6 });
      expectClose(m['unidpo/w_perf']!, mean64(o.map((v) => v.wPerf)), { atol: 1e-6 });
      expectClose(m['unidpo/cnll_active']!, mean64(o.map((v) => (v.gate !== 0 ? 1 : 0))), {
        atol: 1e-7,
      });
      out.loss.dispose();
      disposeInputs(x);
    });
  }

  it('gradient (through w_perf too) equals float64 finite differences', () => {
    const c = unidpoObjective.parseConfig({ lambda: 0.3, gamma: 2, beta: 1 });
    const n = randomPairs(5, 9);
    const B = 5;
    const f = (v: number[]) =>
      mean64(
        v
          .slice(0, B)
          .map(
            (_, i) =>
              oracle(c, { ...n, policyChosen: v.slice(0, B), policyRejected: v.slice(B) }, i).loss,
          ),
      );
    const x = pairInputs(n);
    const [gw, gl] = tf.grads(
      (w: tf.Tensor, l: tf.Tensor) =>
        unidpoObjective.loss(
          { ...x, policyChosenLogps: w as tf.Tensor1D, policyRejectedLogps: l as tf.Tensor1D },
          c,
        ).loss,
    )([x.policyChosenLogps, x.policyRejectedLogps]);
    expectClose(
      [...gw!.dataSync(), ...gl!.dataSync()],
      numericGrad(f, [...n.policyChosen, ...n.policyRejected], 1e-6),
      {
        atol: 1e-5,
        rtol: 1e-3,
      },
    );
    tf.dispose([gw!, gl!]);
    disposeInputs(x);
  });

  it('γ = 0, λ = 0, η → ∞ is length-normalized DPO (IPO-style means, sigmoid loss)', () => {
    const n = randomPairs(10, 21);
    // Distinct scores with S_w > S_l so σ(η·ΔS) → 1.
    n.chosenScores = n.chosenScores!.map((s, i) => Math.max(s, n.rejectedScores![i]!) + 0.5);
    const x = pairInputs(n);
    const c = unidpoObjective.parseConfig({ gamma: 0, lambda: 0, eta: 1e6, beta: 0.8 });
    const uni = unidpoObjective.loss(x, c).loss.dataSync()[0]!;
    const lnDpo = mean64(
      n.policyChosen.map(
        (_, i) =>
          -logSigmoid64(
            0.8 *
              (n.policyChosen[i]! / n.chosenLengths[i]! -
                n.refChosen[i]! / n.chosenLengths[i]! -
                (n.policyRejected[i]! / n.rejectedLengths[i]! -
                  n.refRejected[i]! / n.rejectedLengths[i]!)),
          ),
      ),
    );
    expectClose(uni, lnDpo, { atol: 1e-5, rtol: 1e-5 });
    // …and it equals loss-dpo's `dpo` on mean log-probs.
    const means = {
      ...x,
      policyChosenLogps: tf.div(x.policyChosenLogps, x.chosenLengths) as tf.Tensor1D,
      policyRejectedLogps: tf.div(x.policyRejectedLogps, x.rejectedLengths) as tf.Tensor1D,
      refChosenLogps: tf.div(x.refChosenLogps!, x.chosenLengths) as tf.Tensor1D,
      refRejectedLogps: tf.div(x.refRejectedLogps!, x.rejectedLengths) as tf.Tensor1D,
    };
    const dpo = dpoObjective.loss(means, dpoObjective.parseConfig({ beta: 0.8 })).loss;
    expectClose(dpo.dataSync()[0]!, uni, { atol: 1e-5, rtol: 1e-5 });
    expect(ipoObjective.name).toBe('ipo');
    tf.dispose([
      dpo,
      means.policyChosenLogps,
      means.policyRejectedLogps,
      means.refChosenLogps,
      means.refRejectedLogps,
    ]);
    disposeInputs(x);
  });

  it('`sign` and `indicator` differ exactly where the policy beats the reference on a good pair', () => {
    const n = randomPairs(16, 77);
    n.chosenScores = n.chosenScores!.map((_, i) => (i % 3 === 0 ? 1 : 4)); // some below τ_good
    const x = pairInputs(n);
    const perRow = (mode: 'sign' | 'indicator') => {
      const c = unidpoObjective.parseConfig({ cnllMode: mode, lambda: 0.5 });
      return n.policyChosen.map((_, i) => {
        const one = pairInputs({
          ...n,
          policyChosen: [n.policyChosen[i]!],
          policyRejected: [n.policyRejected[i]!],
          refChosen: [n.refChosen[i]!],
          refRejected: [n.refRejected[i]!],
          chosenLengths: [n.chosenLengths[i]!],
          rejectedLengths: [n.rejectedLengths[i]!],
          chosenScores: [n.chosenScores![i]!],
          rejectedScores: [n.rejectedScores![i]!],
        });
        const v = unidpoObjective.loss(one, c).loss;
        const out = v.dataSync()[0]!;
        v.dispose();
        disposeInputs(one);
        return out;
      });
    };
    const ind = perRow('indicator');
    const sgn = perRow('sign');
    let differing = 0;
    n.policyChosen.forEach((pw, i) => {
      const policyAhead = pw > n.refChosen[i]!;
      const good = n.chosenScores![i]! >= 3.2;
      if (policyAhead && good) {
        differing++;
        expect(Math.abs(ind[i]! - sgn[i]!)).toBeGreaterThan(1e-4);
      } else {
        expect(sgn[i]).toBe(ind[i]);
      }
    });
    expect(differing).toBeGreaterThan(0);
    disposeInputs(x);
  });

  it('missing scores and bad config are clear errors', () => {
    const x = pairInputs(randomPairs(2, 1));
    const c = unidpoObjective.parseConfig({});
    expect(() => unidpoObjective.loss({ ...x, chosenScores: undefined }, c)).toThrow(
      /unidpo: input 'chosenScores' is required \(Uni-DPO weights pairs by data quality scores; a missing score is not zero\)/,
    );
    expect(() => unidpoObjective.parseConfig({ gamma: -1 })).toThrow(
      /gamma' must be a number >= 0/,
    );
    expect(() => unidpoObjective.parseConfig({ cnllMode: 'abs' })).toThrow(
      /cnllMode' must be one of 'indicator', 'sign'/,
    );
    expect(() => unidpoObjective.parseConfig({ eta: 0 })).toThrow(/eta/);
    disposeInputs(x);
  });

  it('stays finite at the numerical contract extremes', () => {
    const c = unidpoObjective.parseConfig({ lambda: 1 });
    for (const s of [1e3, -1e3]) {
      const n: PairNumbers = {
        policyChosen: [-1e4, -10 + s],
        policyRejected: [-5, -1e4],
        refChosen: [-1e4 - s, -10],
        refRejected: [-5 + s, -1e4 - s],
        chosenLengths: [1, 2],
        rejectedLengths: [1, 1],
        chosenScores: [5, 5],
        rejectedScores: [0, 0],
      };
      const x = pairInputs(n);
      expectFinitePairwise(unidpoObjective, x, c);
      disposeInputs(x);
    }
  });
});

describe('toy policy: c-NLL holds the chosen log-prob where DPO lets it fall', () => {
  it('both raise the margin; DPO drops the chosen log-prob below the reference, Uni-DPO does not', () => {
    const dpoC = dpoObjective.parseConfig({ beta: 0.5 });
    const uniC = unidpoObjective.parseConfig({ beta: 2, lambda: 1, gamma: 3, tauRef: 1 });
    // A high-score pair (S_w = 4.5 ≥ τ_good).
    const dpo = trainToyPair((lp, ref) => dpoObjective.loss(toyPairInputs(lp, ref), dpoC).loss);
    const uni = trainToyPair(
      (lp, ref) => unidpoObjective.loss(toyPairInputs(lp, ref, [4.5, 2]), uniC).loss,
    );
    console.log(
      `toy unigram, 400 Adam steps: DPO margin ${dpo.margin.toFixed(3)} chosen Δlogp ${dpo.chosen.toFixed(3)}; Uni-DPO margin ${uni.margin.toFixed(3)} chosen Δlogp ${uni.chosen.toFixed(3)}`,
    );
    expect(dpo.margin).toBeGreaterThan(1);
    expect(uni.margin).toBeGreaterThan(1);
    expect(dpo.chosen).toBeLessThan(-0.5);
    expect(uni.chosen).toBeGreaterThan(-0.05);
  });
});
