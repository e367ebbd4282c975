/** Markdown and self-contained HTML reports of an evaluation: win rates, MT-Bench scores, benchmarks. */
import { type Chart, htmlTable, renderReport, textTable } from '@alignjs/report';

export interface ModelScores {
  name: string;
  winRate?: number;
  standardError?: number;
  /** bootstrap interval of the win rate */
  ci?: [number, number];
  lcWinRate?: number;
  lcStandardError?: number;
  mtBench?: number;
}

export interface BenchmarkScore {
  model: string;
  task: string;
  metric: string;
  value: number;
  stderr?: number | 'N/A';
}

const f = (v: number | undefined, d = 2) =>
  v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d);

export function evaluationReport(
  title: string,
  models: readonly ModelScores[],
  benchmarks: readonly BenchmarkScore[] = [],
): { markdown: string; html: string } {
  const head = ['model', 'win rate', 'SE', '95% CI', 'LC win rate', 'LC SE', 'MT-Bench'];
  const rows = models.map((m) => [
    m.name,
    f(m.winRate),
    f(m.standardError),
    m.ci ? `${f(m.ci[0])}–${f(m.ci[1])}` : '–',
    f(m.lcWinRate),
    f(m.lcStandardError),
    f(m.mtBench),
  ]);
  const bhead = ['model', 'task', 'metric', 'value', 'stderr'];
  const brows = benchmarks.map((b) => [
    b.model,
    b.task,
    b.metric,
    f(b.value, 4),
    typeof b.stderr === 'number' ? f(b.stderr, 4) : (b.stderr ?? '–'),
  ]);
  const markdown = `# ${title}\n\n${textTable(head, rows)}\n${brows.length ? `\n${textTable(bhead, brows)}\n` : ''}`;
  const charts: Chart[] = [];
  const bars = (t: string, pick: (m: ModelScores) => number | undefined) => {
    const series = models
      .filter((m) => pick(m) !== undefined)
      .map((m) => ({ name: m.name, points: [[0, pick(m)!]] as [number, number][] }));
    if (series.length) charts.push({ title: t, kind: 'bar', series });
  };
  bars('win rate (%)', (m) => m.winRate);
  bars('length-controlled win rate (%)', (m) => m.lcWinRate);
  bars('MT-Bench score', (m) => m.mtBench);
  const html = renderReport(title, [
    { heading: 'Judged', html: htmlTable(head, rows), charts },
    ...(brows.length ? [{ heading: 'Benchmarks', html: htmlTable(bhead, brows) }] : []),
  ]);
  return { markdown, html };
}
