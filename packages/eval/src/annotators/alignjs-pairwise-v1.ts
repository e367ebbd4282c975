/** alignjs-pairwise-v1: our prompt (written for this project), AlpacaEval's `m`/`M` answer format. */
import { logprobPreference } from '../alpaca.js';
import type { PairwiseAnnotator } from './types.js';

export const alignjsPairwiseV1: PairwiseAnnotator = Object.freeze({
  name: 'alignjs-pairwise-v1',
  prompt: (instruction: string, first: string, second: string) => [
    {
      role: 'system' as const,
      content:
        'You compare two answers to the same instruction and name the better one. You are fair to both and ignore answer length unless it matters for the task.',
    },
    {
      role: 'user' as const,
      content: `Instruction:\n"""${instruction}"""\n\nAnswer m:\n"""${first}"""\n\nAnswer M:\n"""${second}"""\n\nWhich answer follows the instruction better? Reply with exactly one character: m or M.`,
    },
  ],
  /** top log-probs when present (AlpacaEval's weighted rule), else the first non-space character */
  parse(content: string, topLogprobs?: { token: string; logprob: number }[]): number {
    if (topLogprobs?.length) {
      const p = logprobPreference(topLogprobs);
      if (!Number.isNaN(p)) return p;
    }
    const c = content.trim();
    if (c === 'm' || /^m\b/.test(c)) return 1;
    if (c === 'M' || /^M\b/.test(c)) return 2;
    return Number.NaN;
  },
});
