// acc / acc_norm on committed tiny task files equal values computed by hand from the model's
// log-likelihoods (a full forward and a float64 log-softmax, not core-logprob's path).
import { join } from 'node:path';
import { type HfTokenizer, loadModel, loadTokenizer, tinyModelDir } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePair, readJsonl, runHarness } from './harness-run.js';
import { extractGsm8k, mcDoc, type TaskName } from './tasks.js';

const TASK_DIR = join(import.meta.dirname, '..', 'fixtures', 'tasks');
let model: Awaited<ReturnType<typeof loadModel>>;
let tok: HfTokenizer;
beforeAll(async () => {
  model = await loadModel(tinyModelDir());
  tok = await loadTokenizer(tinyModelDir());
});
afterAll(() => model.dispose());

/** float64 Σ log p(cont | ctx) from one full forward of ctx + cont. */
function oracleLL(context: string, continuation: string): number {
  const { ctx, cont } = encodePair(tok, context, continuation);
  const ids = [...ctx, ...cont];
  const logits = tf.tidy(
    () =>
      model
        .call(
          tf.tensor2d([ids], undefined, 'int32'),
          tf.tensor2d([ids.map(() => 1)], undefined, 'int32'),
        )
        .arraySync()[0]!,
  );
  let ll = 0;
  for (let t = ctx.length; t < ids.length; t++) {
    const row = logits[t - 1]!;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    ll += row[ids[t]!]! - lse;
  }
  return ll;
}

const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

const cases: [TaskName, string][] = [
  ['arc_easy', 'arc.jsonl'],
  ['hellaswag', 'hellaswag.jsonl'],
  ['mmlu', 'mmlu.jsonl'],
  ['truthfulqa_mc1', 'truthfulqa.jsonl'],
  ['winogrande', 'winogrande.jsonl'],
];

describe('harness on committed tiny task files', () => {
  it.each(cases)('%s: acc and acc_norm equal the hand computation', async (task, file) => {
    const path = join(TASK_DIR, file);
    const r = await runHarness({ model, tokenizer: tok, task, docs: path, batchSize: 4 });
    const rows = await readJsonl(path);
    const accs: number[] = [];
    rows.forEach((row, i) => {
      const d = mcDoc(task as Exclude<TaskName, 'gsm8k'>, row, `${file}:${i + 1}`);
      const lls = d.requests.map((q) => oracleLL(q.context, q.continuation));
      r.samples[i]!.lls!.forEach((v, k) => {
        expect(Math.abs(v - lls[k]!)).toBeLessThan(2e-3);
      });
      const acc = argmax(lls) === d.gold ? 1 : 0;
      const accNorm = argmax(lls.map((l, k) => l / [...d.choices[k]!].length)) === d.gold ? 1 : 0;
      expect(r.samples[i]!.metrics['acc,none']).toBe(acc);
      if (r.samples[i]!.metrics['acc_norm,none'] !== undefined)
        expect(r.samples[i]!.metrics['acc_norm,none']).toBe(accNorm);
      accs.push(acc);
    });
    const res = (r.json.results as Record<string, Record<string, unknown>>)[task]!;
    expect(res['acc,none']).toBeCloseTo(accs.reduce((s, v) => s + v, 0) / accs.length, 12);
    expect(res.alias).toBe(task);
    expect(r.json['n-shot']).toEqual({ [task]: 0 });
  });

  it('truthfulqa_mc2 sums normalized probabilities of the true answers; few-shot contexts work', async () => {
    const path = join(TASK_DIR, 'truthfulqa.jsonl');
    const r = await runHarness({ model, tokenizer: tok, task: 'truthfulqa_mc2', docs: path });
    const row = (await readJsonl(path))[0]!;
    const d = mcDoc('truthfulqa_mc2', row, 'x');
    const lls = d.requests.map((q) => oracleLL(q.context, q.continuation));
    const p = lls.map((l) => Math.exp(l - Math.max(...lls)));
    const expected = (p[0]! + p[1]!) / (p[0]! + p[1]! + p[2]!);
    expect(Math.abs(r.samples[0]!.metrics['acc,none']! - expected)).toBeLessThan(1e-3);
    const shot = await runHarness({
      model,
      tokenizer: tok,
      task: 'arc_easy',
      docs: join(TASK_DIR, 'arc.jsonl'),
      fewshot: 1,
    });
    expect(shot.json['n-shot']).toEqual({ arc_easy: 1 });
  });

  it('gsm8k extracts final answers; bad rows are named', async () => {
    expect(extractGsm8k('so 2 + 3 = 5\n#### 5')).toEqual({ strict: '5', flexible: '5' });
    expect(extractGsm8k('The answer is 1,234.')).toEqual({ strict: null, flexible: '1234' });
    const r = await runHarness({
      model,
      tokenizer: tok,
      task: 'gsm8k',
      docs: join(TASK_DIR, 'gsm8k.jsonl'),
    });
    expect(Object.keys((r.json.results as Record<string, object>).gsm8k!)).toContain(
      'exact_match,strict-match',
    );
    expect(() =>
      mcDoc(
        'arc_easy',
        { question: 'q', choices: { text: ['a'], label: ['A'] }, answerKey: 'Z' },
        'arc.jsonl:9',
      ),
    ).toThrow('arc.jsonl:9: answerKey \'Z\' is not one of the labels ["A"]');
    await expect(
      runHarness({ model, tokenizer: tok, task: 'nope' as TaskName, docs: 'x' }),
    ).rejects.toThrow(/unknown task 'nope'/);
  });
});
