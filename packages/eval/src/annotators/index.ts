/**
 * The pairwise annotators `annotatePairwise` and `alignjs judge --annotator` know, by name.
 * Adding one is a module beside this file plus one line here (CONTRIBUTING.md).
 */
import { suggest } from '@alignjs/core-logprob';
import { alignjsPairwiseV1 } from './alignjs-pairwise-v1.js';
import type { PairwiseAnnotator } from './types.js';

export type { PairwiseAnnotator } from './types.js';

export const ANNOTATORS: Readonly<Record<string, PairwiseAnnotator>> = Object.freeze({
  [alignjsPairwiseV1.name]: alignjsPairwiseV1,
});

export function getAnnotator(name: string): PairwiseAnnotator {
  const a = ANNOTATORS[name];
  if (!a)
    throw new Error(
      `unknown annotator '${name}'${suggest(name, Object.keys(ANNOTATORS))} (annotators: ${Object.keys(ANNOTATORS).join(', ')})`,
    );
  return a;
}
