/**
 * lm-evaluation-harness per-document metrics for multiple-choice tasks (../shared/docs/eval.md
 * §3): `acc`, `acc_norm` (log-likelihood per character of the choice), `acc_bytes` (per UTF-8
 * byte), TruthfulQA `mc2`, and the mean with its closed-form standard error.
 */
import { mean, standardError } from './stats.js';

/** First index of the maximum, as `np.argmax`. */
export function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

export function multipleChoiceMetrics(
  lls: readonly number[],
  choices: readonly string[],
  gold: number,
): { acc: number; acc_norm: number; acc_bytes: number } {
  if (lls.length !== choices.length)
    throw new Error(
      `multipleChoiceMetrics: ${lls.length} log-likelihoods for ${choices.length} choices`,
    );
  const chars = choices.map((c) => [...c].length);
  const bytes = choices.map((c) => Buffer.byteLength(c, 'utf8'));
  return {
    acc: argmax(lls) === gold ? 1 : 0,
    acc_norm: argmax(lls.map((l, i) => l / chars[i]!)) === gold ? 1 : 0,
    acc_bytes: argmax(lls.map((l, i) => l / bytes[i]!)) === gold ? 1 : 0,
  };
}

/** TruthfulQA mc2 (v3.0): probabilities normalized over all choices, summed over true ones. */
export function truthfulqaMc2(lls: readonly number[], labels: readonly number[]): number {
  const max = Math.max(...lls);
  const p = lls.map((l) => Math.exp(l - max));
  const z = p.reduce((s, v) => s + v, 0);
  return p.reduce((s, v, i) => s + (labels[i] === 1 ? v / z : 0), 0);
}

/** The harness's aggregate: mean and stdev(ddof=1)/√n ('N/A' when n ≤ 1). */
export function aggregateMean(values: readonly number[]): {
  value: number;
  stderr: number | 'N/A';
} {
  return { value: mean(values), stderr: values.length <= 1 ? 'N/A' : standardError(values) };
}
