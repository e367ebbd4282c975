import { type TruncationMode, truncatePrompt } from '@alignjs/core-logprob';
import type { ChatMessage, HfTokenizer } from '@alignjs/models';
import type { Dataset, Example, Text } from './data.js';

/** One (prompt, response) sequence as token ids, with the data it came from. */
export interface Row {
  prompt: number[];
  response: number[];
  /** LD-DPO token weights of the response (see core-logprob's `TokenExample`) */
  tailWeight?: { after: number; alpha: number };
}

/** A tokenized example: its rows (responses for the same prompt) and its labels/scores. */
export interface TokenizedExample {
  kind: Example['kind'];
  line: number;
  prompt: number[];
  /** pairwise: [chosen, rejected]; binary/score: [completion]; multi: completions */
  responses: number[][];
  /** pairwise: [score_chosen, score_rejected] when given; score/multi: the scores */
  scores?: number[];
  label?: 0 | 1;
  /** the raw texts, for reward functions */
  promptText: string;
  responseTexts: string[];
}

export interface TokenizeOptions {
  /** TRL's `max_length`: the longest prompt + response row (undefined: no limit) */
  maxLength?: number;
  /** TRL's `truncation_mode`: `keep_start` (TRL 1.13's default) or `keep_end` */
  truncationMode?: TruncationMode;
  /** TRL 0.x's `max_prompt_length` (TRL 1.13 has none): the prompt is cut to it first */
  maxPromptLength?: number;
  /** keep the prompt's first token when `keep_end` truncates (RAO) */
  keepFirstPromptToken?: boolean;
}

export interface TokenizeResult {
  examples: TokenizedExample[];
  /** examples whose rows were shortened */
  truncated: number;
  /** data lines dropped because the prompt alone fills `maxLength` under `keep_start` (as TRL 1.13 drops them) */
  dropped: number[];
  /** rows whose joint tokenization does not start with the prompt's ids (TRL warns about these too) */
  boundaryMismatches: number;
}

function asMessages(t: Text): ChatMessage[] | undefined {
  return Array.isArray(t) ? t : undefined;
}

/**
 * Tokenizes as TRL 1.13's DPOTrainer/KTOTrainer `_prepare_dataset` does:
 * - plain text: the prompt is `tokenizer(prompt)` (special tokens as the tokenizer's
 *   post-processor adds them: a BOS for Llama-style tokenizers, none for GPT-2-style); the
 *   response gets the EOS text appended unless it already ends with it, and its ids are
 *   `tokenizer(prompt + response)` after the prompt's length (one joint tokenization, so
 *   merges across the boundary are TRL's);
 * - conversational: the prompt is the chat template with the generation prompt, the
 *   response is the template of prompt + response messages after the prompt's length (no
 *   special tokens added: the template has them).
 * Then truncation: under `keep_start` an example whose prompt alone fills `maxLength` is
 * dropped (TRL filters it) and each row keeps its first `maxLength` tokens; `keep_end` cuts
 * the shared prompt's start by the longest row's overflow (TRL cuts each row separately;
 * the two agree when the rows overflow alike).
 */
export function tokenizeDataset(
  ds: Dataset,
  tok: HfTokenizer,
  o: TokenizeOptions = {},
): TokenizeResult {
  let truncated = 0;
  let boundaryMismatches = 0;
  const dropped: number[] = [];
  const examples: TokenizedExample[] = [];
  const mode = o.truncationMode ?? 'keep_start';
  for (const ex of ds.examples) {
    const promptMsgs = asMessages(ex.prompt);
    const promptText = promptMsgs
      ? tok.applyChatTemplate(promptMsgs, { addGenerationPrompt: true })
      : (ex.prompt as string);
    let prompt = tok.encode(promptText, { addSpecialTokens: !promptMsgs });
    const texts: Text[] =
      ex.kind === 'pairwise'
        ? [ex.chosen, ex.rejected]
        : ex.kind === 'multi'
          ? ex.completions
          : [ex.completion];
    const responseTexts: string[] = [];
    let responses = texts.map((t, i) => {
      const msgs = asMessages(t);
      let full: number[];
      if (msgs) {
        responseTexts.push(msgs.map((m) => m.content).join('\n'));
        const conv = [...(promptMsgs ?? [{ role: 'user', content: String(ex.prompt) }]), ...msgs];
        full = tok.encode(tok.applyChatTemplate(conv), { addSpecialTokens: false });
      } else {
        const eos = tok.eosToken;
        if (eos === undefined || tok.eosTokenId === undefined)
          throw new Error(`line ${ex.line}: the tokenizer has no eos_token to end response ${i}`);
        const text = t as string;
        responseTexts.push(text.endsWith(eos) ? text.slice(0, -eos.length) : text);
        const ended = text.endsWith(eos) ? text : text + eos;
        full = promptMsgs
          ? tok.encode(promptText + ended, { addSpecialTokens: false })
          : tok.encode(promptText + ended, { addSpecialTokens: true });
      }
      if (prompt.some((id, k) => full[k] !== id)) boundaryMismatches++;
      return full.slice(prompt.length);
    });
    const before = [prompt.length, ...responses.map((r) => r.length)].join();
    if (o.maxPromptLength !== undefined)
      prompt = truncatePrompt(prompt, o.maxPromptLength, mode, o.keepFirstPromptToken);
    if (o.maxLength !== undefined) {
      const max = o.maxLength;
      if (mode === 'keep_start') {
        if (prompt.length >= max) {
          dropped.push(ex.line);
          continue;
        }
        responses = responses.map((r) => r.slice(0, max - prompt.length));
      } else {
        const over = Math.max(0, ...responses.map((r) => prompt.length + r.length - max));
        if (over > 0) {
          const keep = Math.max(1, prompt.length - over);
          prompt = truncatePrompt(prompt, keep, 'keep_end', o.keepFirstPromptToken);
          responses = responses.map((r) =>
            prompt.length + r.length > max ? r.slice(prompt.length + r.length - max) : r,
          );
        }
      }
    }
    if ([prompt.length, ...responses.map((r) => r.length)].join() !== before) truncated++;
    const out: TokenizedExample = {
      kind: ex.kind,
      line: ex.line,
      prompt,
      responses,
      promptText,
      responseTexts,
    };
    if (ex.kind === 'pairwise' && ex.scoreChosen !== undefined && ex.scoreRejected !== undefined)
      out.scores = [ex.scoreChosen, ex.scoreRejected];
    if (ex.kind === 'score') out.scores = [ex.score];
    if (ex.kind === 'multi') out.scores = ex.scores;
    if (ex.kind === 'binary') out.label = ex.label;
    examples.push(out);
  }
  return { examples, truncated, dropped, boundaryMismatches };
}

/**
 * RAO's rule (objectives.md, loss-rao): every prompt starts with the same token, so that
 * log p(prompt after its first token) estimates the partition function. Throws naming the
 * file, line and tokens of the first prompt that breaks it.
 */
export function checkSharedFirstToken(
  examples: readonly TokenizedExample[],
  file: string,
  objective: string,
): void {
  const first = examples[0]?.prompt[0];
  for (const e of examples) {
    if (e.prompt.length === 0)
      throw new Error(
        `${file}:${e.line}: ${objective} needs a non-empty prompt (its first token is shared)`,
      );
    if (e.prompt[0] !== first)
      throw new Error(
        `${file}:${e.line}: ${objective}: every prompt must start with the same token (the partition estimate conditions on it); this prompt starts with token ${e.prompt[0]}, line ${examples[0]!.line} with ${first}. Use a tokenizer that adds a BOS, or start every prompt alike`,
      );
  }
}
