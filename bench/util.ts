import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Merges one bench's numbers into bench/results.json (atomically). */
export async function recordResult(name: string, value: unknown): Promise<void> {
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(await readFile(RESULTS, 'utf8')) as Record<string, unknown>;
  } catch {
    all = {};
  }
  all[name] = { ...(value as object), at: new Date().toISOString() };
  await mkdir(dirname(RESULTS), { recursive: true });
  const tmp = `${RESULTS}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(all, null, 2)}\n`);
  await rename(tmp, RESULTS);
}
