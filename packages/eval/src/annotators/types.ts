import type { ChatMessage } from '../judge.js';

/**
 * A pairwise judge for `annotatePairwise` (AlpacaEval's "annotator config"): the prompt that
 * shows an instruction and two answers, and the parser of the judge's reply. Its `name` is
 * recorded in every annotation and is part of the cache key, so change it with the prompt.
 */
export interface PairwiseAnnotator {
  readonly name: string;
  /** the chat request; `first` / `second` are the answers in the order the judge sees them */
  prompt(instruction: string, first: string, second: string): ChatMessage[];
  /** 1 = `first` better, 2 = `second` better, 1.5 = tie, NaN = unparseable */
  parse(content: string, topLogprobs?: { token: string; logprob: number }[]): number;
}
