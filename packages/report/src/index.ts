/** Self-contained HTML reports: tables and line/bar charts as inline SVG, no scripts. */

export interface Series {
  name: string;
  points: [number, number][];
  /** bar charts: an interval [low, high] per point, drawn as an error bar */
  errors?: [number, number][];
}

export interface Chart {
  title: string;
  series: Series[];
  kind?: 'line' | 'bar';
}

const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];
const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function lineChart(c: Chart): string {
  const W = 460;
  const H = 220;
  const P = { l: 52, r: 12, t: 28, b: 28 };
  const pts = c.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!pts.length) return '';
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => P.l + ((x - x0) / (x1 - x0)) * (W - P.l - P.r);
  const sy = (y: number) => H - P.b - ((y - y0) / (y1 - y0)) * (H - P.t - P.b);
  const lines = c.series
    .map((s, i) => {
      const d = s.points
        .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
        .map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
        .join('');
      return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.6"/>`;
    })
    .join('');
  const legend = c.series
    .map((s, i) => `<tspan fill="${COLORS[i % COLORS.length]}">■ ${esc(s.name)} </tspan>`)
    .join('');
  const ticks = [y0, (y0 + y1) / 2, y1]
    .map(
      (y) =>
        `<text x="${P.l - 4}" y="${sy(y) + 4}" text-anchor="end" font-size="10">${y.toPrecision(3)}</text>`,
    )
    .join('');
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>
<text x="${P.l}" y="14" font-size="12" font-weight="bold">${esc(c.title)}</text>
<text x="${P.l}" y="${H - 6}" font-size="10">${legend}</text>
<line x1="${P.l}" y1="${H - P.b}" x2="${W - P.r}" y2="${H - P.b}" stroke="#999"/><line x1="${P.l}" y1="${P.t}" x2="${P.l}" y2="${H - P.b}" stroke="#999"/>
${ticks}<text x="${W - P.r}" y="${H - P.b + 12}" text-anchor="end" font-size="10">step ${x1}</text>${lines}</svg>`;
}

function barChart(c: Chart): string {
  const W = 460;
  const H = 220;
  const bars = c.series.map((s) => ({ name: s.name, v: s.points[0]?.[1] ?? 0, e: s.errors?.[0] }));
  const max = Math.max(
    1e-9,
    ...bars.flatMap((b) => [Math.abs(b.v), ...(b.e ? b.e.map(Math.abs) : [])]),
  );
  const bw = (W - 60) / Math.max(1, bars.length);
  const zero = H / 2 + 10;
  const rects = bars
    .map((b, i) => {
      const h = (Math.abs(b.v) / max) * (H / 2 - 30);
      const y = b.v >= 0 ? zero - h : zero;
      const at = (v: number) => (zero - (v / max) * (H / 2 - 30)).toFixed(1);
      const cx = 50 + i * bw + bw / 2;
      const err = b.e
        ? `<line x1="${cx}" x2="${cx}" y1="${at(b.e[0])}" y2="${at(b.e[1])}" stroke="#000"/><line x1="${cx - 5}" x2="${cx + 5}" y1="${at(b.e[0])}" y2="${at(b.e[0])}" stroke="#000"/><line x1="${cx - 5}" x2="${cx + 5}" y1="${at(b.e[1])}" y2="${at(b.e[1])}" stroke="#000"/>`
        : '';
      return `<rect x="${50 + i * bw + 4}" y="${y.toFixed(1)}" width="${(bw - 8).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"/>${err}
<text x="${50 + i * bw + bw / 2}" y="${H - 4}" font-size="10" text-anchor="middle">${esc(b.name)}</text>
<text x="${50 + i * bw + bw / 2}" y="${(b.v >= 0 ? y - 3 : y + h + 11).toFixed(1)}" font-size="10" text-anchor="middle">${b.v.toPrecision(3)}</text>`;
    })
    .join('');
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>
<text x="50" y="14" font-size="12" font-weight="bold">${esc(c.title)}</text><line x1="46" y1="${zero}" x2="${W - 6}" y2="${zero}" stroke="#999"/>${rects}</svg>`;
}

export function htmlTable(head: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number, tag: string) =>
    `<${tag}>${esc(typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v)}</${tag}>`;
  return `<table><tr>${head.map((h) => cell(h, 'th')).join('')}</tr>${rows.map((r) => `<tr>${r.map((v) => cell(v, 'td')).join('')}</tr>`).join('')}</table>`;
}

/** A standalone HTML page: a title, notes, tables and charts. */
export function renderReport(
  title: string,
  sections: { heading: string; html?: string; charts?: Chart[] }[],
): string {
  const body = sections
    .map(
      (s) =>
        `<h2>${esc(s.heading)}</h2>${s.html ?? ''}<div class="charts">${(s.charts ?? []).map((c) => (c.kind === 'bar' ? barChart(c) : lineChart(c))).join('')}</div>`,
    )
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg{border:1px solid #eee}</style></head><body><h1>${esc(title)}</h1>
${body}</body></html>\n`;
}

/** A Markdown/terminal table. */
export function textTable(head: string[], rows: (string | number)[][]): string {
  const cells = [
    head,
    ...rows.map((r) =>
      r.map((v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v)),
    ),
  ];
  const w = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) =>
    `| ${r.map((v, i) => String(v).padEnd(w[i]!)).join(' | ')} |`;
  return [
    line(cells[0]!),
    `| ${w.map((n) => '-'.repeat(n)).join(' | ')} |`,
    ...cells.slice(1).map(line),
  ].join('\n');
}
