/** A training run's report: the summary table and curves, as one self-contained HTML page. */
import { type Chart, htmlTable, renderReport } from '@alignjs/report';
import type { TrainConfig } from './config.js';
import type { StepRecord } from './log.js';

interface RunHistory {
  history: StepRecord[];
  evalHistory: { step: number; loss: number; metrics: Record<string, number> }[];
}

/** The run's summary table: final training metrics and the last evaluation. */
export function summaryRows(result: RunHistory): [string, string | number][] {
  const last = result.history.at(-1);
  const rows: [string, string | number][] = [];
  if (last) {
    rows.push(['steps', last.step], ['train loss', last.loss], ['grad norm', last.gradNorm]);
    for (const [k, v] of Object.entries(last.metrics)) rows.push([k, v]);
  }
  const e = result.evalHistory.at(-1);
  if (e) {
    rows.push(['eval loss', e.loss]);
    for (const [k, v] of Object.entries(e.metrics)) rows.push([`eval ${k}`, v]);
  }
  return rows;
}

/** A self-contained HTML report of a run: summary table and curves. */
export function trainingReport(objective: string, c: TrainConfig, s: RunHistory): string {
  const series = (keys: string[]) =>
    keys
      .map((k) => ({
        name: k,
        points: s.history
          .filter((h) => h.metrics[k] !== undefined)
          .map((h) => [h.step, h.metrics[k]!] as [number, number]),
      }))
      .filter((x) => x.points.length);
  const charts: Chart[] = [
    {
      title: 'loss',
      series: [
        { name: 'train', points: s.history.map((h) => [h.step, h.loss] as [number, number]) },
        ...(s.evalHistory.length
          ? [
              {
                name: 'eval',
                points: s.evalHistory.map((e) => [e.step, e.loss] as [number, number]),
              },
            ]
          : []),
      ],
    },
    {
      title: 'implicit rewards',
      series: series(['rewards/chosen', 'rewards/rejected', 'rewards/margins']),
    },
    { title: 'accuracy', series: series(['rewards/accuracies']) },
    { title: 'log-probs', series: series(['logps/chosen', 'logps/rejected', 'logps/policy']) },
    {
      title: 'learning rate',
      series: [{ name: 'lr', points: s.history.map((h) => [h.step, h.lr] as [number, number]) }],
    },
  ].filter((ch) => ch.series.length);
  const other = Object.keys(s.history.at(-1)?.metrics ?? {}).filter(
    (k) => !/^(rewards|logps)\//.test(k),
  );
  if (other.length) charts.push({ title: `${objective} metrics`, series: series(other) });
  return renderReport(`alignjs train: ${objective}`, [
    {
      heading: 'Summary',
      html: `<p>model ${c.model}, data ${c.train}, objective ${objective} ${JSON.stringify(c.objective.config)}</p>${htmlTable(['metric', 'value'], summaryRows(s))}`,
    },
    { heading: 'Curves', charts },
  ]);
}
