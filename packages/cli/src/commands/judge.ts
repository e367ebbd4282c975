/** `alignjs judge`: AlpacaEval-style pairwise judging through an OpenAI-compatible judge. */
import { join } from 'node:path';
import * as ev from '@alignjs/eval/node';
import { textTable } from '@alignjs/report';
import type { Args } from '../args.js';

export async function run(args: Args): Promise<number> {
  const need = (name: string) => args.need(name, 'judge');
  const model = await ev.readModelOutputs(need('--model-outputs'));
  const reference = await ev.readModelOutputs(need('--reference-outputs'));
  const out = need('--output');
  const annotator = ev.getAnnotator(args.get('--annotator') ?? ev.PAIRWISE_PROMPT_VERSION);
  const aligned = ev.alignOutputs(model, reference);
  const judge = new ev.JudgeClient({
    baseUrl: need('--base-url'),
    model: need('--judge-model'),
    concurrency: Number(args.get('--concurrency') ?? 4),
    requestBudget: args.number('--budget'),
    maxTokens: Number(args.get('--max-tokens') ?? 50),
  });
  const cache = await ev.AnnotationCache.open(join(out, 'judge-cache.json'));
  const generator = model[0]?.generator ?? 'model';
  const run = await ev.annotatePairwise(
    { ...aligned, generator, referenceGenerator: reference[0]?.generator ?? 'reference' },
    judge,
    cache,
    annotator,
  );
  await ev.writeAnnotations(join(out, 'annotations.json'), run.annotations);
  const wr = ev.winRate(run.annotations.map((a) => a.preference));
  // LC: AlpacaEval's GLM fit when df_gamed.csv is given; otherwise not computed (and said so)
  const dfGamed = args.get('--df-gamed');
  const lc = dfGamed
    ? ev.lengthControlledWinRate(run.annotations, {
        dfGamed,
        glm: (args.get('--glm') ?? 'length_controlled_v1') as never,
      })
    : undefined;
  const avg = Math.round(
    aligned.outputs.reduce((s, o) => s + [...o].length, 0) / Math.max(1, aligned.outputs.length),
  );
  await ev.writeLeaderboard(join(out, 'leaderboard.csv'), [
    {
      name: generator,
      ...wr,
      avg_length: avg,
      ...(lc
        ? {
            length_controlled_winrate: lc.length_controlled_winrate,
            lc_standard_error: lc.lc_standard_error,
            length_controlled_method: `${lc.glm} fit (C ${lc.C ?? '–'})`,
          }
        : {}),
    },
  ]);
  process.stderr.write(
    `${textTable(
      ['metric', 'value'],
      [
        ['win rate', wr.win_rate],
        ['standard error', wr.standard_error],
        ['wins / losses / draws', `${wr.n_wins} / ${wr.n_wins_base} / ${wr.n_draws}`],
        [
          'LC win rate',
          lc
            ? `${lc.length_controlled_winrate.toFixed(2)} ± ${lc.lc_standard_error.toFixed(2)} (${lc.glm}, C ${lc.C ?? '–'})`
            : 'not computed: pass --df-gamed (AlpacaEval df_gamed.csv)',
        ],
        ['unparsed judge answers', run.unparsed],
        ['requests', run.requests],
        ['cache hits', run.cacheHits],
      ],
    )}\nannotations and leaderboard.csv in ${out}\n`,
  );
  return 0;
}
