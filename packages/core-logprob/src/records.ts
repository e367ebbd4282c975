/**
 * The one reader of record files (browser-safe: it parses text): JSONL, one object per line
 * (blank lines skipped), or a JSON array; a leading UTF-8 byte-order mark is ignored. Every record comes with its line number, and a
 * malformed line is an error naming the file and the line.
 */

/** A malformed record file: `path:line: message`. */
export class RecordError extends Error {
  constructor(
    readonly path: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${path}:${line}: ${detail}`);
    this.name = 'RecordError';
  }
}

/** `[record, line]` pairs of a JSONL text or a JSON array (its entries numbered from 1). */
export function parseJsonRecords(source: string, path: string): [unknown, number][] {
  // a UTF-8 byte-order mark (editors on Windows write one) is not part of the first record
  const text = source.replace(/^\uFEFF/, '');
  const rows: [unknown, number][] = [];
  if (text.trimStart().startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (err) {
      throw new RecordError(path, 1, `malformed JSON array (${(err as Error).message})`);
    }
    (arr as unknown[]).forEach((r, i) => {
      rows.push([r, i + 1]);
    });
    return rows;
  }
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '') return;
    try {
      rows.push([JSON.parse(l), i + 1]);
    } catch (err) {
      throw new RecordError(path, i + 1, `malformed JSON (${(err as Error).message})`);
    }
  });
  return rows;
}
