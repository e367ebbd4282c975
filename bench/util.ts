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
