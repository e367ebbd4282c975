import { describe, expect, it } from 'vitest';
import { parseJsonRecords, RecordError } from './records.js';

describe('record files', () => {
  it('JSONL with blank lines and a BOM, and a JSON array, numbered by line / entry', () => {
    expect(parseJsonRecords('\uFEFF{"a":1}\n\n{"a":2}\n', 'f.jsonl')).toEqual([
      [{ a: 1 }, 1],
      [{ a: 2 }, 3],
    ]);
    expect(parseJsonRecords(' [{"a":1},{"a":2}]', 'f.json')).toEqual([
      [{ a: 1 }, 1],
      [{ a: 2 }, 2],
    ]);
  });

  it('a malformed line names the file and the line', () => {
    const err = (() => {
      try {
        parseJsonRecords('{"a":1}\n{"a":\n', 'data/x.jsonl');
      } catch (e) {
        return e as RecordError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(RecordError);
    expect(err!.line).toBe(2);
    expect(err!.message).toMatch(/^data\/x\.jsonl:2: malformed JSON/);
    expect(() => parseJsonRecords('[1, 2', 'y.json')).toThrow(/^y\.json:1: malformed JSON array/);
  });
});
