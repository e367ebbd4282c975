/**
 * AlpacaEval-style pairwise annotation against reference outputs: per instruction, the
 * outputs are shown in AlpacaEval's randomized order (recorded), the judge's answer is
 * parsed and mapped back, identical outputs are a tie without a call, unparseable answers
 * are counted (preference NaN), and every answer is cached on disk, keyed by the judge's
 * configuration and the exact inputs, so a rerun or an interrupted run repeats no request.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import { alignjsPairwiseV1 } from './annotators/alignjs-pairwise-v1.js';
import { getAnnotator, type PairwiseAnnotator } from './annotators/index.js';
import type { ChatMessage, JudgeClient } from './judge.js';
import { isSwitched } from './switch.js';

/** Our pairwise prompt's version (written for this project; the output format follows AlpacaEval's `m`/`M`). */
export const PAIRWISE_PROMPT_VERSION = 'alignjs-pairwise-v1';

/** The alignjs-pairwise-v1 prompt: the first answer is `m`, the second `M`. */
export function pairwisePrompt(instruction: string, first: string, second: string): ChatMessage[] {
  return alignjsPairwiseV1.prompt(instruction, first, second);
}

/** Parses an alignjs-pairwise-v1 reply: 1 = first (`m`) better, 2 = second (`M`), NaN unparseable. */
export function parsePairwiseReply(
  content: string,
  topLogprobs?: { token: string; logprob: number }[],
): number {
  return alignjsPairwiseV1.parse(content, topLogprobs);
}

export interface Annotation {
  instruction: string;
  output_1: string;
  output_2: string;
  generator_1: string;
  generator_2: string;
  /** 1 = reference better, 2 = model better, 1.5 = tie, NaN = unparseable */
  preference: number;
  /** whether the judge saw the outputs in swapped order */
  switched: boolean;
  raw_completion: string | null;
  annotator: string;
}

interface CacheFile {
  format: 'alignjs-judge-cache';
  version: 1;
  entries: Record<
    string,
    { completion: string; topLogprobs?: { token: string; logprob: number }[] }
  >;
}

/** The on-disk annotation cache (one JSON file, written atomically). */
export class AnnotationCache {
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();
  private constructor(
    readonly path: string,
    private readonly file: CacheFile,
  ) {}

  static async open(path: string): Promise<AnnotationCache> {
    try {
      const f = JSON.parse(await readFile(path, 'utf8')) as CacheFile;
      if (f.format !== 'alignjs-judge-cache' || f.version !== 1)
        throw new Error(`${path}: not an alignjs judge cache`);
      return new AnnotationCache(path, f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return new AnnotationCache(path, {
          format: 'alignjs-judge-cache',
          version: 1,
          entries: {},
        });
      if (err instanceof SyntaxError)
        throw new Error(
          `${path}: judge cache is not valid JSON (${err.message}); delete it to start over`,
        );
      throw err;
    }
  }

  get(key: string) {
    return this.file.entries[key];
  }

  set(key: string, v: CacheFile['entries'][string]): void {
    this.file.entries[key] = v;
    this.dirty = true;
  }

  get size(): number {
    return Object.keys(this.file.entries).length;
  }

  /** Writes the file atomically; concurrent calls are serialized. */
  save(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      await writeFileAtomic(this.path, JSON.stringify(this.file));
    });
    return this.saving;
  }
}

export interface PairwiseInputs {
  instructions: readonly string[];
  /** the model's outputs, one per instruction */
  outputs: readonly string[];
  /** the reference (baseline) outputs */
  references: readonly string[];
  generator: string;
  referenceGenerator: string;
}

export interface PairwiseRun {
  annotations: Annotation[];
  /** judge answers that could not be parsed (their preference is NaN) */
  unparsed: number;
  /** requests the judge client sent during this run */
  requests: number;
  cacheHits: number;
}

/**
 * Annotates every instruction (reference = output_1, model = output_2, as AlpacaEval's
 * `annotate_head2head(outputs_1=reference, outputs_2=model)`). The cache is saved as answers
 * arrive, so an interrupted run loses nothing.
 */
export async function annotatePairwise(
  input: PairwiseInputs,
  judge: JudgeClient,
  cache: AnnotationCache,
  annotatorName: string | PairwiseAnnotator = PAIRWISE_PROMPT_VERSION,
): Promise<PairwiseRun> {
  const spec = typeof annotatorName === 'string' ? getAnnotator(annotatorName) : annotatorName;
  const annotator = spec.name;
  const n = input.instructions.length;
  if (input.outputs.length !== n || input.references.length !== n) {
    throw new Error(
      `annotatePairwise: ${n} instructions, ${input.outputs.length} model outputs, ${input.references.length} reference outputs`,
    );
  }
  const before = judge.stats.requests;
  let hits = 0;
  let unparsed = 0;
  const identity = JSON.stringify({ annotator, judge: judge.identity });
  const settled = await Promise.allSettled(
    input.instructions.map(async (instruction, i) => {
      const output_1 = input.references[i]!;
      const output_2 = input.outputs[i]!;
      const base = {
        instruction,
        output_1,
        output_2,
        generator_1: input.referenceGenerator,
        generator_2: input.generator,
        annotator,
      };
      if (output_1 === output_2)
        return { ...base, preference: 1.5, switched: false, raw_completion: null };
      const switched = isSwitched(instruction);
      const key = createHash('sha256')
        .update(identity)
        .update('\0')
        .update(JSON.stringify([instruction, output_1, output_2]))
        .digest('hex');
      let entry = cache.get(key);
      // An answer that did not parse is asked again on a rerun, not kept forever.
      if (entry && Number.isNaN(spec.parse(entry.completion, entry.topLogprobs))) entry = undefined;
      if (entry) hits++;
      else {
        const [first, second] = switched ? [output_2, output_1] : [output_1, output_2];
        const reply = await judge.chat(spec.prompt(instruction, first, second));
        entry = {
          completion: reply.content,
          ...(reply.topLogprobs ? { topLogprobs: reply.topLogprobs } : {}),
        };
        cache.set(key, entry);
        await cache.save();
      }
      let p = spec.parse(entry.completion, entry.topLogprobs);
      if (Number.isNaN(p)) unparsed++;
      else if (switched) p = 3 - p;
      return { ...base, preference: p, switched, raw_completion: entry.completion };
    }),
  );
  // Whatever happened, keep every answer that arrived before reporting a failure.
  await cache.save();
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const annotations = settled.map((r) => (r as PromiseFulfilledResult<Annotation>).value);
  return { annotations, unparsed, requests: judge.stats.requests - before, cacheHits: hits };
}
