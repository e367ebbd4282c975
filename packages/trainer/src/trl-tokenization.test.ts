/**
 * Token ids exactly as TRL 1.13's DPOTrainer and KTOTrainer prepare them
 * (`tools/make-trl-tokenization-goldens.py` runs TRL's own `_prepare_dataset` and
 * `DataCollatorForPreference` on three tokenizers saved by transformers 5.17): a
 * SentencePiece-style tokenizer with a BOS post-processor, a GPT-2-style byte-level one (bos =
 * eos, nothing added) and a Qwen-style chat tokenizer with chat_template.jinja; plain and
 * conversational rows, including a prompt ending in a space, a response without a leading
 * space, responses ending with the EOS text and a prompt longer than the limit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { planLayout } from '@alignjs/core-logprob';
import { loadTokenizer } from '@alignjs/models/node';
import { describe, expect, it } from 'vitest';
import { parseDataset } from './data.js';
import { tokenizeDataset } from './tokenize.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'trl-tokenization');
interface Seq {
  ids: number[];
  completionMask: number[];
}
interface Golden {
  trl: string;
  tokenizers: Record<
    string,
    {
      rows: Record<string, Record<string, unknown>[]>;
      results: Record<
        string,
        {
          kept?: number[];
          chosen?: Seq[];
          rejected?: Seq[];
          rows?: Record<string, unknown>[];
          examples: Record<string, number[]>[];
        }
      >;
    }
  >;
}
const golden = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Golden;
const jsonl = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).join('\n');
const seq = (prompt: number[], resp: number[]): Seq => ({
  ids: [...prompt, ...resp],
  completionMask: [...prompt.map(() => 0), ...resp.map(() => 1)],
});

describe("tokenization equals TRL 1.13's DPO/KTO preprocessing", () => {
  it('the goldens come from TRL 1.13 and cover the three tokenizers', () => {
    expect(golden.trl).toBe('1.13.0');
    expect(Object.keys(golden.tokenizers).sort()).toEqual([
      'gpt2-bytelevel',
      'llama-sp',
      'qwen-chat',
    ]);
  });

  for (const [name, t] of Object.entries(golden.tokenizers)) {
    for (const kind of Object.keys(t.rows)) {
      for (const [label, maxLength] of [
        ['default', 1024],
        ['max24', 24],
      ] as const) {
        it(`${name}, ${kind} rows, max_length ${maxLength} (keep_start): prompt/chosen/rejected ids and dropped rows`, async () => {
          const tok = await loadTokenizer(join(DIR, name));
          const want = t.results[`${kind}/${label}`]!;
          const ds = parseDataset(jsonl(t.rows[kind]!), `${name}.jsonl`);
          const got = tokenizeDataset(ds, tok, { maxLength, truncationMode: 'keep_start' });
          expect(got.examples.map((e) => e.line - 1)).toEqual(want.kept);
          expect(got.dropped.map((l) => l - 1)).toEqual(
            t.rows[kind]!.map((_, i) => i).filter((i) => !want.kept!.includes(i)),
          );
          got.examples.forEach((e, i) => {
            expect(e.prompt, `row ${e.line} prompt`).toEqual(want.examples[i]!.prompt_ids);
            expect(seq(e.prompt, e.responses[0]!), `row ${e.line} chosen`).toEqual(want.chosen![i]);
            expect(seq(e.prompt, e.responses[1]!), `row ${e.line} rejected`).toEqual(
              want.rejected![i],
            );
          });
        });
      }
      it(`${name}, ${kind} rows: KTO's prompt/completion ids and its KL pairs (completion i − 1)`, async () => {
        const tok = await loadTokenizer(join(DIR, name));
        const want = t.results[`${kind}/kto`]!;
        const ds = parseDataset(jsonl(want.rows!), `${name}-kto.jsonl`);
        const got = tokenizeDataset(ds, tok, { maxLength: 1024 });
        expect(got.examples.length).toBe(want.examples.length);
        got.examples.forEach((e, i) => {
          expect(e.prompt).toEqual(want.examples[i]!.prompt_ids);
          expect(e.responses[0]).toEqual(want.examples[i]!.completion_ids);
        });
        // The layout's mismatched rows: prompt i with TRL's KL completion i (one batch of 8).
        const plan = planLayout(got.examples, 'binary', {
          inputs: 'pointwise',
          reference: true,
          promptLogps: false,
          rewards: false,
          mismatchedPairs: true,
        });
        const B = got.examples.length;
        plan.rows.slice(B).forEach((r, i) => {
          expect(r.prompt).toEqual(want.examples[i]!.prompt_ids);
          expect(r.response).toEqual(want.examples[i]!.KL_completion_ids);
        });
        plan.dispose();
      });
    }
  }
});
