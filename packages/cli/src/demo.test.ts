import { describe, expect, it } from 'vitest';
import { bootstrapEstimate, demoReward } from './demo.js';

describe('demo statistics', () => {
  it('bootstrap: the mean of seed means, an interval around it that narrows with more units, deterministic', () => {
    const few = [
      [0, 1, 1, 0],
      [1, 1, 0, 1],
    ];
    const e = bootstrapEstimate(few);
    expect(e.mean).toBeCloseTo((0.5 + 0.75) / 2, 12);
    expect(e.lo).toBeLessThanOrEqual(e.mean);
    expect(e.hi).toBeGreaterThanOrEqual(e.mean);
    expect(bootstrapEstimate(few)).toEqual(e);
    const many = [
      Array.from({ length: 400 }, (_, i) => (i % 2) as number),
      Array.from({ length: 400 }, (_, i) => ((i + 1) % 4 === 0 ? 1 : 0) as number),
    ];
    const m = bootstrapEstimate(many);
    expect(m.hi - m.lo).toBeLessThan(e.hi - e.lo);
    // a constant has a zero-width interval
    expect(bootstrapEstimate([[2, 2, 2]])).toEqual({ mean: 2, lo: 2, hi: 2 });
  });

  it('the true reward counts pleasant minus unpleasant words and names the subject', () => {
    expect(demoReward('Tell me about the cat.', 'The cat is happy.')).toBe(1.5);
  });
});
