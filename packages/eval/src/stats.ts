/** Mean of a list (NaN for an empty one). */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : Number.NaN;
}

/** Sample standard deviation (ddof = 1), as pandas and Python's statistics.stdev. */
export function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return Number.NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, v) => s + (v - m) ** 2, 0) / (xs.length - 1));
}

/** Standard error of the mean, stdev(ddof=1)/√n (pandas `.sem()`). */
export function standardError(xs: readonly number[]): number {
  return stdev(xs) / Math.sqrt(xs.length);
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}
