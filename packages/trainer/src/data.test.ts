import { describe, expect, it } from 'vitest';
import { checkKind, DataError, parseDataset } from './data.js';

const P = 'train.jsonl';
const lines = (...xs: unknown[]) =>
  xs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('\n');

describe('dataset schemas', () => {
  it('detects each kind, JSONL and JSON arrays, conversational and implicit-prompt pairs', () => {
    expect(parseDataset(lines({ prompt: 'p', chosen: 'a', rejected: 'b' }), P).kind).toBe(
      'pairwise',
    );
    expect(
      parseDataset(JSON.stringify([{ prompt: 'p', completion: 'a', label: true }]), P).kind,
    ).toBe('binary');
    expect(parseDataset(lines({ prompt: 'p', completion: 'a', score: 3 }), P).kind).toBe('score');
    expect(
      parseDataset(lines({ prompt: 'p', completions: ['a', 'b'], scores: [1, 2] }), P).kind,
    ).toBe('multi');
    const conv = parseDataset(
      lines({
        prompt: [{ role: 'user', content: 'hi' }],
        chosen: [{ role: 'assistant', content: 'a' }],
        rejected: [{ role: 'assistant', content: 'b' }],
      }),
      P,
    );
    expect(conv.examples[0]).toMatchObject({
      kind: 'pairwise',
      prompt: [{ role: 'user', content: 'hi' }],
    });
    const implicit = parseDataset(
      lines({
        chosen: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'a' },
        ],
        rejected: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'b' },
        ],
      }),
      P,
    );
    expect(implicit.examples[0]).toEqual({
      kind: 'pairwise',
      line: 1,
      prompt: [{ role: 'user', content: 'hi' }],
      chosen: [{ role: 'assistant', content: 'a' }],
      rejected: [{ role: 'assistant', content: 'b' }],
    });
  });

  it('errors name the file, line and field', () => {
    const bad: [string, RegExp][] = [
      [
        lines({ prompt: 'p', chosen: 'a', rejected: 'b' }, '{"prompt": "p", "chosen": '),
        /^train.jsonl:2: malformed JSON/,
      ],
      [lines({ prompt: 'p', chosen: 'a' }), /^train.jsonl:1: field 'rejected': is missing$/],
      [
        lines({ prompt: 'p', chosen: '  ', rejected: 'b' }),
        /^train.jsonl:1: field 'chosen': is empty$/,
      ],
      [
        lines({ prompt: 'p', completion: 'a', score: 'high' }),
        /^train.jsonl:1: field 'score': must be a finite number, got "high"$/,
      ],
      [
        lines(
          { prompt: 'p', completion: 'a', score: 1 },
          { prompt: 'p', completion: 'a', score: null },
        ),
        /^train.jsonl:2: field 'score'/,
      ],
      [
        lines({ prompt: 'p', completion: 'a', label: 'yes' }),
        /^train.jsonl:1: field 'label': must be true\/false or 1\/0/,
      ],
      [
        lines({ prompt: 'p', completions: ['a'], scores: [1, 2] }),
        /^train.jsonl:1: field 'scores': has 2 entries for 1 completions$/,
      ],
      [
        lines({ prompt: 'p', chosen: [{ role: 'assistant' }], rejected: 'b' }),
        /^train.jsonl:1: field 'chosen\[0\]': must be a message/,
      ],
      [
        lines({ question: 'p', answer: 'a' }),
        /^train.jsonl:1: unknown record shape with fields \["question","answer"\]/,
      ],
      [
        lines(
          { prompt: 'p', chosen: 'a', rejected: 'b' },
          { prompt: 'p', completion: 'a', label: 1 },
        ),
        /^train.jsonl:2: record is binary .* but line 1 is pairwise/,
      ],
      ['', /^train.jsonl:1: the file has no records/],
    ];
    for (const [text, re] of bad) {
      let caught: unknown;
      try {
        parseDataset(text, P);
      } catch (err) {
        caught = err;
      }
      expect(caught, String(re)).toBeInstanceOf(DataError);
      expect((caught as Error).message).toMatch(re);
    }
    expect(() =>
      parseDataset(lines({ prompt: 'p', completion: 'a', score: 11 }), P, [0, 10]),
    ).toThrow("train.jsonl:1: field 'score': score 11 is outside the declared range [0, 10]");
  });

  it('a kind the objective does not accept says which fields it needs', () => {
    const ds = parseDataset(lines({ prompt: 'p', completion: 'a', label: 1 }), P);
    expect(() => checkKind(ds, 'dpo', ['pairwise'])).toThrow(
      "train.jsonl: the data is binary {prompt, completion, label}, but objective 'dpo' needs pairwise {prompt, chosen, rejected}",
    );
  });
});
