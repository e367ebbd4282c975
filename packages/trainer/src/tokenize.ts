import { type TruncationMode, truncateExample } from '@alignjs/core-logprob';
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
  maxLength?: number;
  maxPromptLength?: number;
  truncationMode?: TruncationMode;
  /** keep the prompt's first token when `keep_end` truncates (RAO) */
  keepFirstPromptToken?: boolean;
}

function asMessages(t: Text): ChatMessage[] | undefined {
  return Array.isArray(t) ? t : undefined;
}

/**
 * Tokenizes as TRL does: a conversational prompt is rendered with the chat template and the
 * generation prompt; a conversational response is the template's rendering of prompt +
 * response minus the prompt's; a plain prompt gets BOS in front (when the tokenizer has
 * one), a plain response gets EOS appended. Over-long rows are truncated (prompt keeps its
 * end, response its start); the count of truncated examples is returned.
 */
export function tokenizeDataset(
  ds: Dataset,
  tok: HfTokenizer,
  o: TokenizeOptions = {},
): { examples: TokenizedExample[]; truncated: number } {
  let truncated = 0;
  const examples = ds.examples.map((ex) => {
    const promptMsgs = asMessages(ex.prompt);
    const promptText = promptMsgs
      ? tok.applyChatTemplate(promptMsgs, { addGenerationPrompt: true })
      : (ex.prompt as string);
    const promptIds = promptMsgs
      ? tok.encode(promptText, { addSpecialTokens: false })
      : [
          ...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []),
          ...tok.encode(promptText, { addSpecialTokens: false }),
        ];
    const texts: Text[] =
      ex.kind === 'pairwise'
        ? [ex.chosen, ex.rejected]
        : ex.kind === 'multi'
          ? ex.completions
          : [ex.completion];
    const responseTexts: string[] = [];
    const responses = texts.map((t, i) => {
      const msgs = asMessages(t);
      if (msgs) {
        const full = tok.applyChatTemplate([
          ...(promptMsgs ?? [{ role: 'user', content: String(ex.prompt) }]),
          ...msgs,
        ]);
        const text = full.startsWith(promptText)
          ? full.slice(promptText.length)
          : msgs.map((m) => m.content).join('\n');
        responseTexts.push(msgs.map((m) => m.content).join('\n'));
        return tok.encode(text, { addSpecialTokens: false });
      }
      responseTexts.push(t as string);
      const ids = tok.encode(t as string, { addSpecialTokens: false });
      if (tok.eosTokenId === undefined)
        throw new Error(`line ${ex.line}: the tokenizer has no eos_token to end response ${i}`);
      return [...ids, tok.eosTokenId];
    });
    let anyTruncated = false;
    let prompt = promptIds;
    const cut = responses.map((r) => {
      const t = truncateExample({ prompt: promptIds, response: r }, o);
      anyTruncated ||= t.truncated;
      prompt = t.prompt.length < prompt.length ? t.prompt : prompt;
      return t.response;
    });
    if (anyTruncated) truncated++;
    const out: TokenizedExample = {
      kind: ex.kind,
      line: ex.line,
      prompt,
      responses: cut,
      promptText,
      responseTexts,
    };
    if (ex.kind === 'pairwise' && ex.scoreChosen !== undefined && ex.scoreRejected !== undefined)
      out.scores = [ex.scoreChosen, ex.scoreRejected];
    if (ex.kind === 'score') out.scores = [ex.score];
    if (ex.kind === 'multi') out.scores = ex.scores;
    if (ex.kind === 'binary') out.label = ex.label;
    return out;
  });
  return { examples, truncated };
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
