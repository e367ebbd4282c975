/**
 * AlpacaEval 2 metrics (../shared/docs/eval.md §1): win rate with ties at half, its
 * standard error, the discrete win rate, the length-controlled features and read-off.
 * Preferences follow AlpacaEval's encoding: 1 = baseline better, 2 = model better,
 * 1.5 = tie (a legacy 0 is also a tie), NaN = the judge output could not be parsed.
 */
import { mean, sigmoid, standardError, stdev } from './stats.js';

export interface WinRate {
  win_rate: number;
  standard_error: number;
  n_wins: number;
  n_wins_base: number;
  n_draws: number;
  n_total: number;
}

function describe(prefs: readonly number[]): WinRate {
  const p = prefs.map((v) => (v === 0 ? 1.5 : v));
  const n_draws = p.filter((v) => v === 1.5).length;
  const x = p.filter((v) => v >= 1 && v <= 2).map((v) => v - 1);
  return {
    win_rate: 100 * mean(x),
    standard_error: 100 * standardError(x),
    n_wins: x.filter((v) => v > 0.5).length,
    n_wins_base: x.filter((v) => v < 0.5).length,
    n_draws,
    n_total: x.length,
  };
}

/** AlpacaEval's `get_winrate` (AbsoluteScoringRule): weighted preferences count their fraction. */
export function winRate(prefs: readonly number[]): WinRate {
  return describe(prefs);
}

/** Round half to even, as numpy/pandas `.round()`. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `discrete_win_rate` (ZeroOneScoringRule): ties kept, other preferences rounded to 1 or 2. */
export function discreteWinRate(prefs: readonly number[]): WinRate {
  return describe(
    prefs.map((v) => (v === 1.5 || v === 0 ? 1.5 : Number.isNaN(v) ? v : roundHalfEven(v))),
  );
}

/** Length in Python code points (`len(str)`), not UTF-16 units. */
export function codePointLength(s: string): number {
  return [...s].length;
}

/**
 * The LC model's length feature: `tanh((len(baseline) − len(model)) / std)` with the
 * sample std of the deltas over all rows.
 */
export function lengthFeatures(
  baselineOutputs: readonly string[],
  modelOutputs: readonly string[],
): { delta: number[]; std: number; tanh: number[] } {
  if (baselineOutputs.length !== modelOutputs.length) {
    throw new Error(
      `lengthFeatures: ${baselineOutputs.length} baseline outputs but ${modelOutputs.length} model outputs`,
    );
  }
  const delta = baselineOutputs.map(
    (b, i) => codePointLength(b) - codePointLength(modelOutputs[i]!),
  );
  const std = stdev(delta);
  return { delta, std, tanh: delta.map((d) => Math.tanh(d / std)) };
}

/**
 * Length-controlled win rate from fitted weights: every row predicted with the length term
 * at 0 and not-gamed = 1, `q_i = σ(w_m + w_diff·difficulty_i)`; LC = 100·mean(q), SE =
 * 100·stdev(q)/√N. A model compared with itself is 50 ± 0 without a fit.
 */
export function lengthControlledReadOff(
  weights: { model: number; instructionDifficulty: number },
  difficulties: readonly number[],
  sameAsBaseline = false,
): { length_controlled_winrate: number; lc_standard_error: number; q: number[] } {
  if (sameAsBaseline)
    return { length_controlled_winrate: 50, lc_standard_error: 0, q: difficulties.map(() => 0.5) };
  const q = difficulties.map((d) => sigmoid(weights.model + weights.instructionDifficulty * d));
  return { length_controlled_winrate: 100 * mean(q), lc_standard_error: 100 * standardError(q), q };
}

/**
 * `weighted_alpaca_eval_gpt4_turbo`'s logprob parser: the judge's top log-probs of tokens
 * `m` (model in position 1 … see switching) and `M`; preference = 2 − exp(lp_m − lse(lp_m, lp_M)).
 * A missing token counts as −∞; both missing → NaN. `switched` maps p to 3 − p.
 */
export function logprobPreference(
  topLogprobs: readonly { token: string; logprob: number }[],
  switched = false,
): number {
  const lp = (t: string) =>
    topLogprobs.find((e) => e.token === t)?.logprob ?? Number.NEGATIVE_INFINITY;
  const m = lp('m');
  const M = lp('M');
  if (m === Number.NEGATIVE_INFINITY && M === Number.NEGATIVE_INFINITY) return Number.NaN;
  const max = Math.max(m, M);
  const lse = max + Math.log(Math.exp(m - max) + Math.exp(M - max));
  const p = 2 - Math.exp(m - lse);
  return switched ? 3 - p : p;
}
