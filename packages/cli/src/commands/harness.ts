/** `alignjs harness`: benchmark tasks, built in or through lm-evaluation-harness / AlpacaEval. */
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import * as ev from '@alignjs/eval/node';
import { textTable } from '@alignjs/report';
import type { Args } from '../args.js';
import { loadModelFlag } from './model.js';

export async function run(args: Args): Promise<number> {
  const external = args.get('--external');
  if (external && external !== 'lm_eval' && external !== 'alpaca_eval')
    throw new Error(`--external must be lm_eval or alpaca_eval, got '${external}'`);
  if (external) ev.requireTool(external as 'lm_eval' | 'alpaca_eval');
  const { dir, model, tokenizer } = await loadModelFlag(args);
  const task = args.get('--task');
  const output = args.get('--output') ?? 'results.json';
  const fewshot = args.number('--fewshot');
  const limit = args.number('--limit');
  try {
    if (external === 'lm_eval') {
      if (!task) throw new Error('harness needs --task');
      const s = await ev.serve({ model, tokenizer, modelId: 'alignjs', port: 0 });
      try {
        await ev.runCommand(
          ev.lmEvalCommand({
            serverUrl: s.url,
            modelId: 'alignjs',
            tasks: task.split(','),
            outputPath: output,
            tokenizer: dir,
            maxLength: model.config.maxPositions,
            ...(fewshot !== undefined ? { numFewshot: fewshot } : {}),
            ...(limit !== undefined ? { limit } : {}),
          }),
        );
      } finally {
        await s.close();
      }
      const results = await ev.readLmEvalResults(output);
      process.stderr.write(`${JSON.stringify(results.results, null, 2)}\n`);
      return 0;
    }
    if (external === 'alpaca_eval') {
      const outs = args.get('--model-outputs');
      if (!outs)
        throw new Error(
          'harness --external alpaca_eval needs --model-outputs FILE (write it with alignjs generate)',
        );
      await ev.runCommand(
        ev.alpacaEvalCommand({
          modelOutputs: outs,
          referenceOutputs: args.get('--reference-outputs'),
          outputPath: output,
        }),
      );
      return 0;
    }
    const docs = args.get('--docs');
    if (!task || !docs) throw new Error('harness needs --task NAME and --docs FILE.jsonl');
    const r = await ev.runHarness({
      model,
      tokenizer,
      task: task as never,
      docs,
      fewshot: fewshot ?? 0,
      limit,
      modelName: dir,
    });
    await writeFileAtomic(output, `${JSON.stringify(r.json, null, 2)}\n`);
    const res = (r.json.results as Record<string, Record<string, unknown>>)[task]!;
    process.stderr.write(
      `${textTable(
        ['metric', 'value'],
        Object.entries(res)
          .filter(([k]) => k !== 'alias')
          .map(([k, v]) => [k, typeof v === 'number' ? v : String(v)]),
      )}\nresults in ${output}\n`,
    );
    return 0;
  } finally {
    model.dispose();
  }
}
