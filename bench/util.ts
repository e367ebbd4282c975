import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A Markdown table. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results.json');

async function readResults(): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(RESULTS, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Merges one bench's numbers into bench/results.json (atomically). */
export async function recordResult(name: string, value: unknown): Promise<void> {
  const all = await readResults();
  all[name] = { ...(value as object), at: new Date().toISOString() };
  await writeFileAtomic(RESULTS, `${JSON.stringify(all, null, 2)}\n`);
}

const SECTIONS = ['shipped-step', 'logprobs', 'forward', 'train-step'];
const MD = join(dirname(fileURLToPath(import.meta.url)), 'results.md');

/**
 * Stores one bench's Markdown section (in results.json under `sections`) and rewrites
 * bench/results.md from every bench's latest section, so `npm run bench` leaves one report.
 */
export async function writeSection(name: string, markdown: string): Promise<void> {
  const all = await readResults();
  const sections = { ...((all.sections as Record<string, string>) ?? {}), [name]: markdown };
  // the per-backend sections an earlier shipped-step wrote are one section now
  for (const old of ['shipped-step-wasm', 'shipped-step-tensorflow']) delete sections[old];
  all.sections = sections;
  await writeFileAtomic(RESULTS, `${JSON.stringify(all, null, 2)}\n`);
  const order = [...SECTIONS, ...Object.keys(sections).filter((k) => !SECTIONS.includes(k))];
  const body = order
    .filter((k) => sections[k])
    .map((k) => sections[k])
    .join('\n\n');
  await writeFileAtomic(
    MD,
    `# alignjs benchmarks\n\nEach section is the latest run of its script; every ratio is measured within one run.\n\n${body}\n`,
  );
}

/**
 * Least squares of step seconds on [1, tokens, attention] (attention = Σ over rows of
 * seq², the quadratic term), by the normal equations in float64; returns the coefficients
 * and the largest relative residual.
 */
export function fitScaling(cells: { tokens: number; attention: number; seconds: number }[]): {
  coef: [number, number, number];
  maxResidual: number;
} {
  const rows = cells.map((c) => [1, c.tokens, c.attention]);
  const a = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((s, r) => s + r[i]! * r[j]!, 0)));
  const b = [0, 1, 2].map((i) => rows.reduce((s, r, k) => s + r[i]! * cells[k]!.seconds, 0));
  // Gaussian elimination with partial pivoting on the 3×3 system
  for (let i = 0; i < 3; i++) {
    const p = [i, i + 1, i + 2]
      .filter((k) => k < 3)
      .reduce((x, y) => (Math.abs(a[y]![i]!) > Math.abs(a[x]![i]!) ? y : x));
    [a[i], a[p]] = [a[p]!, a[i]!];
    [b[i], b[p]] = [b[p]!, b[i]!];
    for (let k = i + 1; k < 3; k++) {
      const f = a[k]![i]! / a[i]![i]!;
      for (let j = i; j < 3; j++) a[k]![j]! -= f * a[i]![j]!;
      b[k]! -= f * b[i]!;
    }
  }
  const x = [0, 0, 0];
  for (let i = 2; i >= 0; i--)
    x[i] =
      (b[i]! - [0, 1, 2].filter((j) => j > i).reduce((s, j) => s + a[i]![j]! * x[j]!, 0)) /
      a[i]![i]!;
  const predict = (r: number[]) => x[0]! * r[0]! + x[1]! * r[1]! + x[2]! * r[2]!;
  const maxResidual = Math.max(...cells.map((c, k) => Math.abs(predict(rows[k]!) / c.seconds - 1)));
  return { coef: x as [number, number, number], maxResidual };
}
