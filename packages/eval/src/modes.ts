/**
 * Judge modes beyond AlpacaEval's pairwise annotation: MT-Bench-style single-answer scores,
 * the two-order win/tie/loss rule (the VAR paper), local judges (a function or a reward
 * model wrapped as one), and bootstrap confidence intervals.
 */
import { mulberry32 } from '@alignjs/core-logprob';
import type { Annotation } from './annotate.js';
import type { ChatMessage, JudgeClient } from './judge.js';
import { type Outcome, parseMtBenchRating, twoOrderOutcome } from './judges.js';

export const SINGLE_PROMPT_VERSION = 'alignjs-single-v1';
export const TWO_ORDER_PROMPT_VERSION = 'alignjs-two-order-v1';

/** Our single-answer grading prompt; the rating format follows MT-Bench's `[[rating]]`. */
export function singleAnswerPrompt(question: string, answer: string): ChatMessage[] {
  return [
    { role: 'system', content: 'You are a careful, impartial grader of assistant answers.' },
    {
      role: 'user',
      content: `Grade the answer to the question for helpfulness, correctness and clarity. Explain briefly, then give a rating from 1 to 10 strictly in the form [[rating]], for example [[6]].\n\n[Question]\n${question}\n\n[Answer]\n${answer}\n[End of answer]`,
    },
  ];
}

/** MT-Bench-style single-answer scores; unparseable ratings are −1, counted, and left out of the mean. */
export async function judgeSingle(
  items: readonly { question: string; answer: string }[],
  judge: JudgeClient,
): Promise<{ scores: number[]; unparsed: number; mean: number }> {
  const scores = await Promise.all(
    items.map(async (it) =>
      parseMtBenchRating((await judge.chat(singleAnswerPrompt(it.question, it.answer))).content),
    ),
  );
  const ok = scores.filter((s) => s !== -1);
  return {
    scores,
    unparsed: scores.length - ok.length,
    mean: ok.length ? ok.reduce((s, v) => s + v, 0) / ok.length : Number.NaN,
  };
}

/** Our pairwise verdict prompt for the two-order rule: `[[A]]`, `[[B]]`, or `[[C]]` for a tie. */
export function verdictPrompt(instruction: string, a: string, b: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'You compare two assistant answers impartially; the order they are shown in must not matter.',
    },
    {
      role: 'user',
      content: `[Instruction]\n${instruction}\n\n[Answer A]\n${a}\n[End of answer A]\n\n[Answer B]\n${b}\n[End of answer B]\n\nWhich answer is better? Explain briefly, then end with [[A]], [[B]], or [[C]] for a tie.`,
    },
  ];
}

/** FastChat's verdict rule: the first of `[[A]]`, `[[B]]`, `[[C]]` found, else null. */
export function parseVerdict(text: string): 'A' | 'B' | 'tie' | null {
  if (text.includes('[[A]]')) return 'A';
  if (text.includes('[[B]]')) return 'B';
  if (text.includes('[[C]]')) return 'tie';
  return null;
}

/**
 * Judges each (instruction, model answer, baseline answer) in both orders and combines them
 * with the two-order rule; a comparison with an unparseable verdict is counted and left out.
 */
export async function judgeTwoOrder(
  items: readonly { instruction: string; model: string; baseline: string }[],
  judge: JudgeClient,
): Promise<{
  outcomes: (Outcome | null)[];
  unparsed: number;
  wins: number;
  ties: number;
  losses: number;
}> {
  const asOutcome = (v: 'A' | 'B' | 'tie' | null, modelIs: 'A' | 'B'): Outcome | null =>
    v === null ? null : v === 'tie' ? 'tie' : v === modelIs ? 'win' : 'loss';
  const outcomes = await Promise.all(
    items.map(async (it) => {
      const [first, second] = await Promise.all([
        judge.chat(verdictPrompt(it.instruction, it.model, it.baseline)),
        judge.chat(verdictPrompt(it.instruction, it.baseline, it.model)),
      ]);
      const o1 = asOutcome(parseVerdict(first.content), 'A');
      const o2 = asOutcome(parseVerdict(second.content), 'B');
      return o1 && o2 ? twoOrderOutcome(o1, o2) : null;
    }),
  );
  return {
    outcomes,
    unparsed: outcomes.filter((o) => o === null).length,
    wins: outcomes.filter((o) => o === 'win').length,
    ties: outcomes.filter((o) => o === 'tie').length,
    losses: outcomes.filter((o) => o === 'loss').length,
  };
}

/** A local judge: `prefer(instruction, reference, model)` returns an AlpacaEval preference in [1, 2]. */
export type PreferenceFn = (
  instruction: string,
  reference: string,
  model: string,
) => number | Promise<number>;

/** A judge from scalar scores (e.g. a reward model): 2 if the model's score is higher, 1 if lower, 1.5 if equal. */
export function scoreJudge(
  score: (instruction: string, response: string) => number | Promise<number>,
): PreferenceFn {
  return async (instruction, reference, model) => {
    const [r, m] = await Promise.all([score(instruction, reference), score(instruction, model)]);
    return m > r ? 2 : m < r ? 1 : 1.5;
  };
}

/** Annotations from a local judge (no server); a value outside [1, 2] is recorded as unparseable (NaN). */
export async function annotateLocal(
  input: {
    instructions: readonly string[];
    outputs: readonly string[];
    references: readonly string[];
    generator: string;
    referenceGenerator: string;
  },
  prefer: PreferenceFn,
  annotator = 'local',
): Promise<{ annotations: Annotation[]; unparsed: number }> {
  let unparsed = 0;
  const annotations = await Promise.all(
    input.instructions.map(async (instruction, i) => {
      const output_1 = input.references[i]!;
      const output_2 = input.outputs[i]!;
      let p = output_1 === output_2 ? 1.5 : await prefer(instruction, output_1, output_2);
      if (!(p >= 1 && p <= 2)) {
        unparsed++;
        p = Number.NaN;
      }
      return {
        instruction,
        output_1,
        output_2,
        generator_1: input.referenceGenerator,
        generator_2: input.generator,
        preference: p,
        switched: false,
        raw_completion: null,
        annotator,
      };
    }),
  );
  return { annotations, unparsed };
}

/** Percentile bootstrap interval of the mean (seeded), e.g. for win rates as 100·(p − 1). */
export function bootstrapCI(
  values: readonly number[],
  o: { resamples?: number; level?: number; seed?: number } = {},
): [number, number] {
  const x = values.filter((v) => !Number.isNaN(v));
  if (x.length === 0) return [Number.NaN, Number.NaN];
  const rand = mulberry32(o.seed ?? 42);
  const R = o.resamples ?? 1000;
  const means: number[] = [];
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[Math.floor(rand() * x.length)]!;
    means.push(s / x.length);
  }
  means.sort((a, b) => a - b);
  const alpha = (1 - (o.level ?? 0.95)) / 2;
  const at = (q: number) => means[Math.min(R - 1, Math.max(0, Math.floor(q * (R - 1))))]!;
  return [at(alpha), at(1 - alpha)];
}
