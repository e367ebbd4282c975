import { describe, expect, it } from 'vitest';
import { parseWith, suggest } from './config.js';

const read = (raw: unknown) =>
  parseWith('demo', raw, (r) => ({
    beta: r.number('beta', 0.1, { gt: 0 }),
    eps: r.number('eps', 0, { min: 0, lt: 0.5 }),
    mode: r.oneOf('mode', 'a', ['a', 'b'] as const),
    flag: r.boolean('flag', false),
    range: r.range('range', undefined),
  }));

describe('config reader', () => {
  it('fills defaults and freezes', () => {
    const c = read({});
    expect(c).toEqual({ beta: 0.1, eps: 0, mode: 'a', flag: false, range: undefined });
    expect(Object.isFrozen(c)).toBe(true);
    expect(read(undefined).beta).toBe(0.1);
  });

  it('errors name the field, the value and the range', () => {
    expect(() => read({ beta: -1 })).toThrow(
      "demo config: field 'beta' must be a number > 0, got -1",
    );
    expect(() => read({ beta: 'x' })).toThrow(/field 'beta' must be a number > 0, got "x"/);
    expect(() => read({ eps: 0.5 })).toThrow(
      /field 'eps' must be a number >= 0 and < 0.5, got 0.5/,
    );
    expect(() => read({ mode: 'c' })).toThrow(/field 'mode' must be one of 'a', 'b', got "c"/);
    expect(() => read({ flag: 1 })).toThrow(/field 'flag' must be true or false/);
    expect(() => read({ range: [3, 1] })).toThrow(/field 'range' must be \[low, high\]/);
    expect(() => read({ betta: 1 })).toThrow(
      /unknown field 'betta' \(known: beta, eps, mode, flag, range\); did you mean 'beta'\?/,
    );
    expect(() => read([1])).toThrow(/expected an object, got an array/);
    expect(() => read({ beta: Number.NaN })).toThrow(/field 'beta'/);
  });

  it('suggests the nearest name, ignoring case and underscores', () => {
    expect(suggest('label_smoothing', ['beta', 'labelSmoothing'])).toBe(
      "; did you mean 'labelSmoothing'?",
    );
    expect(suggest('zzz', ['beta'])).toBe('');
  });
});
