/** How explicit scores are put on the implicit reward's scale (UNA section 3.1). */
export type ScoreNormalizer = 'minmax' | 'zscore' | 'none';

export interface ScoreNormalization {
  scoreNormalizer: ScoreNormalizer;
  /** declared [low, high] of raw scores (required for `minmax`) */
  scoreRange?: [number, number];
  /** dataset mean and standard deviation of raw scores (required for `zscore`) */
  scoreMean?: number;
  scoreStd?: number;
}

/**
 * Normalizes one raw score: `minmax` → (s − low)/(high − low) ∈ [0, 1] (a score outside
 * the declared range is an error naming `where`), `zscore` → (s − mean)/std, `none` → s.
 */
export function normalizeScore(score: number, n: ScoreNormalization, where = 'score'): number {
  if (!Number.isFinite(score)) throw new Error(`${where}: score ${score} is not a finite number`);
  switch (n.scoreNormalizer) {
    case 'minmax': {
      const [lo, hi] = n.scoreRange!;
      if (score < lo || score > hi) {
        throw new Error(
          `${where}: score ${score} is outside the declared scoreRange [${lo}, ${hi}]`,
        );
      }
      return (score - lo) / (hi - lo);
    }
    case 'zscore':
      return (score - n.scoreMean!) / n.scoreStd!;
    case 'none':
      return score;
  }
}

/** Mean and (population) standard deviation of a dataset's scores, for `zscore`. */
export function scoreStatistics(scores: readonly number[]): {
  scoreMean: number;
  scoreStd: number;
} {
  if (scores.length === 0) throw new Error('scoreStatistics: no scores');
  const mean = scores.reduce((s, v) => s + v, 0) / scores.length;
  const variance = scores.reduce((s, v) => s + (v - mean) ** 2, 0) / scores.length;
  const std = Math.sqrt(variance);
  if (!(std > 0))
    throw new Error('scoreStatistics: all scores are equal; z-scores are undefined (use minmax)');
  return { scoreMean: mean, scoreStd: std };
}

/** A HelpSteer2 record's attributes (0–4 each). */
export interface HelpSteer2Attributes {
  helpfulness: number;
  correctness: number;
  coherence: number;
  complexity?: number;
  verbosity?: number;
}

export const HELPSTEER2_WEIGHTS = Object.freeze({
  helpfulness: 0.65,
  correctness: 0.8,
  coherence: 0.45,
});
/** The combined score's range: attributes 0–4 → [0, 4·(0.65 + 0.8 + 0.45)] = [0, 7.6]. */
export const HELPSTEER2_RANGE: readonly [number, number] = Object.freeze([0, 7.6]) as readonly [
  number,
  number,
];

/**
 * UNA's HelpSteer2 recipe: `0.65·helpfulness + 0.8·correctness + 0.45·coherence`
 * (attributes 0–4), min–max normalized to [0, 1] over [0, 7.6]. Errors name `where` and
 * the attribute.
 */
export function helpSteer2Score(
  record: HelpSteer2Attributes,
  where = 'record',
): { combined: number; normalized: number } {
  let combined = 0;
  for (const [k, w] of Object.entries(HELPSTEER2_WEIGHTS)) {
    const v = (record as unknown as Record<string, unknown>)[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 4) {
      throw new Error(
        `${where}: field '${k}' must be a number in [0, 4], got ${JSON.stringify(v)}`,
      );
    }
    combined += w * v;
  }
  return { combined, normalized: combined / HELPSTEER2_RANGE[1] };
}
