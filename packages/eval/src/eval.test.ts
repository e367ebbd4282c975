// The hand-derivable fixtures of ../shared/docs/eval.md §6 (F1–F6, F8–F10; F7, the full LC
// fit, needs the external df_gamed and Python goldens).
import { describe, expect, it } from 'vitest';
import {
  discreteWinRate,
  lengthControlledReadOff,
  lengthFeatures,
  logprobPreference,
  winRate,
} from './alpaca.js';
import { aggregateMean, multipleChoiceMetrics, truthfulqaMc2 } from './harness.js';
import {
  arenaHardV2Scores,
  arenaHardV01,
  mtBenchMean,
  parseMtBenchRating,
  twoOrderOutcome,
} from './judges.js';
import { isSwitched, pythonRandomForString } from './switch.js';

const close = (a: number, b: number, tol = 1e-9) =>
  expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThan(tol);

describe('AlpacaEval win rates', () => {
  it('F1: ties count half', () => {
    const r = winRate([2, 2, 1, 1.5, 2, 0]);
    close(r.win_rate, 200 / 3);
    close(r.standard_error, 100 / 6);
    expect([r.n_wins, r.n_wins_base, r.n_draws, r.n_total]).toEqual([3, 1, 2, 6]);
    close(discreteWinRate([2, 2, 1, 1.5, 2, 0]).win_rate, 200 / 3);
  });

  it('F2: weighted preferences and a NaN (dropped)', () => {
    const prefs = [1.9, 1.2, 1.5, Number.NaN, 1.75, 1.05, 1.0];
    const r = winRate(prefs);
    close(r.win_rate, 40.0);
    close(r.standard_error, 15.329709716755893);
    expect([r.n_wins, r.n_wins_base, r.n_draws, r.n_total]).toEqual([2, 3, 1, 6]);
    const d = discreteWinRate(prefs);
    close(d.win_rate, 41.666666666666664, 1e-9);
    close(d.standard_error, 20.06932429798716);
  });

  it('edge cases: all ties, all wins, one instruction', () => {
    expect(winRate([1.5, 0, 1.5]).win_rate).toBe(50);
    expect(winRate([1.5, 0, 1.5]).standard_error).toBe(0);
    expect(winRate([2, 2]).win_rate).toBe(100);
    const one = winRate([2]);
    expect(one.win_rate).toBe(100);
    expect(Number.isNaN(one.standard_error)).toBe(true);
  });

  it('F3: the logprob parser, switched and with missing tokens', () => {
    const lp = [
      { token: 'M', logprob: -0.017597131 },
      { token: 'm', logprob: -4.048847 },
    ];
    close(logprobPreference(lp), 1.9825575130186845, 1e-12);
    close(logprobPreference(lp, true), 1.0174424869813155, 1e-12);
    expect(logprobPreference([{ token: 'M', logprob: -0.1 }])).toBe(2);
    expect(Number.isNaN(logprobPreference([{ token: 'x', logprob: -0.1 }]))).toBe(true);
    expect(
      logprobPreference([
        { token: ' m', logprob: -0.1 },
        { token: 'M', logprob: -3 },
      ]),
    ).toBe(2);
  });

  it('F4: position switching matches CPython’s string-seeded random()', () => {
    const cases: [string, number, boolean][] = [
      ['What is the capital of France?', 0.004623105042085296, false],
      ['Write a haiku about autumn.', 0.8662573235595508, true],
      ['Give three tips for staying healthy.', 0.7010946185096358, true],
    ];
    for (const [instr, r, switched] of cases) {
      close(pythonRandomForString(`is_switched_outputs${instr}0`), r, 1e-16);
      expect(isSwitched(instr)).toBe(switched);
    }
  });

  it('F5: length features; F6: LC read-off', () => {
    const s = (n: number) => 'x'.repeat(n);
    const f = lengthFeatures(
      [100, 200, 150, 80, 300, 120].map(s),
      [150, 180, 150, 200, 100, 120].map(s),
    );
    expect(f.delta).toEqual([-50, 20, 0, -120, 200, 0]);
    close(f.std, 106.66145820617055);
    f.tanh.forEach((v, i) => {
      close(v, [-0.437207, 0.185342, 0, -0.80932, 0.954053, 0][i]!, 1e-6);
    });
    expect(lengthFeatures(['é☕'], ['ab']).delta).toEqual([0]);
    const lc = lengthControlledReadOff(
      { model: -0.5280788018374943, instructionDifficulty: 0.9437877797808294 },
      [-1, 0, 1],
    );
    lc.q.forEach((v, i) => {
      close(v, [0.186659, 0.370965, 0.602456][i]!, 1e-6);
    });
    close(lc.length_controlled_winrate, 38.669338276265314, 1e-9);
    close(lc.lc_standard_error, 12.028757860535785, 1e-9);
    expect(
      lengthControlledReadOff({ model: 1, instructionDifficulty: 1 }, [0, 1], true),
    ).toMatchObject({ length_controlled_winrate: 50, lc_standard_error: 0 });
  });
});

describe('harness metrics', () => {
  it('F8: acc, acc_norm, acc_bytes, mc2, stderr', () => {
    expect(
      multipleChoiceMetrics([-2.0, -1.9, -4.0], ['a long answer', 'short', 'café'], 0),
    ).toEqual({ acc: 0, acc_norm: 1, acc_bytes: 1 });
    expect(multipleChoiceMetrics([-1.5, -2.5], ['é', 'ab'], 0)).toEqual({
      acc: 1,
      acc_norm: 0,
      acc_bytes: 1,
    });
    close(truthfulqaMc2([-1, -2, -1.5, -3], [1, 1, 0, 0]), 0.6483623338944073, 1e-12);
    close(truthfulqaMc2([-1.5, -1, -3, -2], [0, 1, 0, 1]), 0.6483623338944073, 1e-12);
    expect(aggregateMean([1, 0, 1, 1])).toEqual({ value: 0.75, stderr: 0.25 });
    expect(aggregateMean([1]).stderr).toBe('N/A');
  });
});

describe('judges', () => {
  it('F9: MT-Bench rating extraction', () => {
    expect(parseMtBenchRating('Rating: [[7]]')).toBe(7);
    expect(parseMtBenchRating('[[8.5]] … [[3]]')).toBe(8.5);
    expect(parseMtBenchRating('Rating: [6]')).toBe(6);
    expect(parseMtBenchRating('7/10')).toBe(-1);
    expect(parseMtBenchRating('[[ 9 ]]')).toBe(-1);
    expect(mtBenchMean([7, -1, 8])).toBe(7.5);
  });

  it('F10: Arena-Hard v0.1 and v2 scores', () => {
    const games: [
      Parameters<typeof arenaHardV01>[0][number][0],
      Parameters<typeof arenaHardV01>[0][number][1],
    ][] = [
      ['B>A', 'A>B'],
      ['A=B', 'B>A'],
      ['B>>A', 'A>>B'],
      ['A>B', 'A=B'],
    ];
    const v01 = arenaHardV01(games);
    expect([v01.wins, v01.ties, v01.n]).toEqual([8, 2, 12]);
    close(v01.winRate, 0.75);
    close(v01.elo, 400 * Math.log10(3), 1e-9);
    const v2 = arenaHardV2Scores(games);
    expect(v2.length).toBe(12);
    close(v2.reduce((s, v) => s + v, 0) / v2.length, 0.75);
  });

  it('the VAR paper’s two-order rule', () => {
    expect(twoOrderOutcome('win', 'win')).toBe('win');
    expect(twoOrderOutcome('win', 'tie')).toBe('win');
    expect(twoOrderOutcome('tie', 'tie')).toBe('tie');
    expect(twoOrderOutcome('win', 'loss')).toBe('tie');
    expect(twoOrderOutcome('tie', 'loss')).toBe('loss');
    expect(twoOrderOutcome('loss', 'loss')).toBe('loss');
  });
});
