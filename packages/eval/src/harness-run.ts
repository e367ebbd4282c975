/**
 * The benchmark harness: runs a task file through a local model with core-logprob's batched
 * log-likelihoods (multiple choice) or greedy generation (GSM8K), and writes results in
 * lm-evaluation-harness's results JSON layout.
 */
import { readFile } from 'node:fs/promises';
import { buildBatch, parseJsonRecords, sequenceLogprobs, toTensors } from '@alignjs/core-logprob';
import { type CausalLM, generate, type HfTokenizer } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';
import { aggregateMean, multipleChoiceMetrics, truthfulqaMc2 } from './harness.js';
import { PyRandom } from './py-random.js';
import {
  extractGsm8k,
  fewshotContext,
  gsm8kDoc,
  type McDoc,
  mcDoc,
  TASKS,
  type TaskName,
} from './tasks.js';

export async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read (${(err as Error).message})`);
  }
  return parseJsonRecords(text, path).map(([r]) => r as Record<string, unknown>);
}

/** lm-eval's `_encode_pair`: trailing context whitespace moves to the continuation; cont = whole[len(ctx):]. */
export function encodePair(
  tok: HfTokenizer,
  context: string,
  continuation: string,
): { ctx: number[]; cont: number[] } {
  const trailing = context.length - context.trimEnd().length;
  let ctxText = context;
  let contText = continuation;
  if (trailing > 0) {
    contText = context.slice(context.length - trailing) + continuation;
    ctxText = context.slice(0, context.length - trailing);
  }
  const whole = tok.encode(ctxText + contText, { addSpecialTokens: false });
  let ctx = tok.encode(ctxText, { addSpecialTokens: false });
  const cont = whole.slice(ctx.length);
  if (ctx.length === 0) ctx = [tok.bosTokenId ?? tok.eosTokenId ?? 0];
  return { ctx, cont };
}

/** Σ log p(continuation | context) for each request, batched (no gradient). */
export function loglikelihoods(
  model: CausalLM,
  tok: HfTokenizer,
  requests: readonly { context: string; continuation: string }[],
  batchSize = 8,
): number[] {
  const rows = requests.map((r) => {
    const { ctx, cont } = encodePair(tok, r.context, r.continuation);
    if (cont.length === 0)
      throw new Error(`empty continuation for context ${JSON.stringify(r.context.slice(-40))}`);
    return { prompt: ctx, response: cont };
  });
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    const batch = toTensors(
      buildBatch(rows.slice(i, i + batchSize), { padTokenId: tok.padTokenId ?? 0 }),
    );
    const lp = sequenceLogprobs(model.call, batch, { noGrad: true });
    out.push(...lp.responseSum.dataSync());
    tf.dispose([...Object.values(lp), ...Object.values(batch)]);
  }
  return out;
}

/**
 * lm-evaluation-harness's default few-shot sampler: one `Random(1234)` for the task, and for
 * each evaluated document in order `sample(pool, k)` — or, when the pool is the evaluated
 * split itself, `sample(pool, k + 1)` with the document removed and the first k kept. Same
 * seed, same draws, so the same examples as lm-eval's (the pool is the whole file, before
 * `limit`).
 */
export function fewshotSampler(
  pool: readonly Record<string, unknown>[],
  sameSplit: boolean,
  k: number,
  seed = 1234,
): (doc: Record<string, unknown>) => Record<string, unknown>[] {
  const rnd = new PyRandom(seed);
  const key = (r: Record<string, unknown>) => JSON.stringify(r);
  return (doc) => {
    if (k === 0) return [];
    if (!sameSplit) return rnd.sample(pool, k);
    const d = key(doc);
    let res = rnd
      .sample(pool, k + 1)
      .filter((x) => key(x) !== d)
      .slice(0, k);
    if (res.length < k)
      res = rnd.sample(
        pool.filter((x) => key(x) !== d),
        k,
      );
    return res;
  };
}

export interface HarnessOptions {
  model: CausalLM;
  tokenizer: HfTokenizer;
  task: TaskName;
  /** JSONL of the task's documents in the dataset's own field layout */
  docs: string;
  /**
   * few-shot examples (default 0), drawn as lm-eval draws them ({@link fewshotSampler}) from
   * `fewshotDocs` or the task file (then never the doc itself)
   */
  fewshot?: number;
  fewshotDocs?: string;
  limit?: number;
  batchSize?: number;
  modelName?: string;
  /** generation tasks: new tokens at most (lm-eval's `max_gen_toks`, default 256) */
  maxGenTokens?: number;
}

export interface HarnessResult {
  /** lm-evaluation-harness results JSON */
  json: Record<string, unknown>;
  /** per-document metrics and log-likelihoods */
  samples: { doc: number; lls?: number[]; text?: string; metrics: Record<string, number> }[];
}

export async function runHarness(o: HarnessOptions): Promise<HarnessResult> {
  if (!TASKS.includes(o.task))
    throw new Error(`unknown task '${o.task}'; available: ${TASKS.join(', ')}`);
  const started = performance.now();
  const all = await readJsonl(o.docs);
  const rows = all.slice(0, o.limit ?? Number.POSITIVE_INFINITY);
  const k = o.fewshot ?? 0;
  const shotsFor = fewshotSampler(
    o.fewshotDocs ? await readJsonl(o.fewshotDocs) : all,
    !o.fewshotDocs,
    k,
  );
  const samples: HarnessResult['samples'] = [];
  let metricNames: string[];
  if (o.task === 'gsm8k') {
    metricNames = ['exact_match,strict-match', 'exact_match,flexible-extract'];
    const shots = (i: number) =>
      shotsFor(rows[i]!)
        .map((r, j) => {
          const d = gsm8kDoc(r, `${o.docs} few-shot ${j}`);
          return `${d.context} ${String(r.answer)}\n\n`;
        })
        .join('');
    const docs = rows.map((r, i) => gsm8kDoc(r, `${o.docs}:${i + 1}`, shots(i)));
    const tok = o.tokenizer;
    for (let i = 0; i < docs.length; i++) {
      const d = docs[i]!;
      const g = generate(o.model, [tok.encode(d.context, { addSpecialTokens: false })], {
        greedy: true,
        maxNewTokens: o.maxGenTokens ?? 256,
        stopStrings: ['Question:', '</s>', '<|im_end|>'],
        stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
        decode: (x) => tok.decode(x),
      });
      const e = extractGsm8k(g.texts![0]!);
      samples.push({
        doc: i,
        text: g.texts![0]!,
        metrics: {
          'exact_match,strict-match': e.strict === d.target ? 1 : 0,
          'exact_match,flexible-extract': e.flexible === d.target ? 1 : 0,
        },
      });
    }
  } else {
    const task = o.task;
    const docs: McDoc[] = rows.map((r, i) =>
      mcDoc(task, r, `${o.docs}:${i + 1}`, k ? fewshotContext(task, shotsFor(r), o.docs) : ''),
    );
    const lls = loglikelihoods(
      o.model,
      o.tokenizer,
      docs.flatMap((d) => d.requests),
      o.batchSize,
    );
    let at = 0;
    metricNames =
      task === 'truthfulqa_mc2'
        ? ['acc,none']
        : task === 'truthfulqa_mc1' || task === 'winogrande'
          ? ['acc,none']
          : ['acc,none', 'acc_norm,none'];
    docs.forEach((d, i) => {
      const ll = lls.slice(at, at + d.requests.length);
      at += d.requests.length;
      const m = multipleChoiceMetrics(ll, d.choices, d.gold);
      const metrics: Record<string, number> =
        task === 'truthfulqa_mc2'
          ? { 'acc,none': truthfulqaMc2(ll, d.labels ?? []) }
          : { 'acc,none': m.acc, 'acc_norm,none': m.acc_norm };
      samples.push({ doc: i, lls: ll, metrics });
    });
  }
  const result: Record<string, unknown> = { alias: o.task };
  for (const name of metricNames) {
    const [metric, filter] = name.split(',') as [string, string];
    const agg = aggregateMean(samples.map((s) => s.metrics[name]!));
    result[name] = agg.value;
    result[`${metric}_stderr,${filter}`] = agg.stderr;
  }
  const json = {
    results: { [o.task]: result },
    group_subtasks: { [o.task]: [] },
    configs: {
      [o.task]: {
        task: o.task,
        num_fewshot: k,
        output_type: o.task === 'gsm8k' ? 'generate_until' : 'multiple_choice',
        target_delimiter: ' ',
        fewshot_delimiter: '\n\n',
        metric_list: metricNames.map((n) => ({
          metric: n.split(',')[0],
          aggregation: 'mean',
          higher_is_better: true,
        })),
      },
    },
    versions: { [o.task]: 1.0 },
    'n-shot': { [o.task]: k },
    higher_is_better: {
      [o.task]: Object.fromEntries(metricNames.map((n) => [n.split(',')[0], true])),
    },
    'n-samples': { [o.task]: { original: rows.length, effective: rows.length } },
    config: {
      model: 'alignjs',
      model_args: o.modelName ?? '',
      batch_size: o.batchSize ?? 8,
      limit: o.limit ?? null,
      bootstrap_iters: 0,
      gen_kwargs: null,
    },
    date: Date.now() / 1000,
    total_evaluation_time_seconds: String((performance.now() - started) / 1000),
  };
  return { json, samples };
}
