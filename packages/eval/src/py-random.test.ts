import { describe, expect, it } from 'vitest';
import { PyRandom } from './py-random.js';

// Expected values printed by CPython 3.11:
//   r = random.Random(1234); [r.getrandbits(32) for _ in range(3)]
//   r = random.Random(1234); r.sample(range(24), 3), r.sample(range(24), 3)
//   random.Random(1234).sample(range(100), 7); random.Random(2**40 + 5).sample(range(30), 4)
describe("Python's random.Random", () => {
  it('matches CPython bit for bit: getrandbits, sample (pool and set paths), big seeds', () => {
    const r = new PyRandom(1234);
    expect([r.uint32(), r.uint32(), r.uint32()]).toEqual([4150886329, 3342196574, 1892932127]);
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    const s = new PyRandom(1234);
    expect(s.sample(range(24), 3)).toEqual([14, 3, 0]);
    expect(s.sample(range(24), 3)).toEqual([2, 18, 1]);
    expect(new PyRandom(1234).sample(range(100), 7)).toEqual([99, 56, 14, 0, 11, 74, 4]);
    expect(new PyRandom(2 ** 40 + 5).sample(range(30), 4)).toEqual([16, 8, 21, 29]);
    expect(() => new PyRandom(1).sample([1], 2)).toThrow(/k = 2 must be in \[0, 1\]/);
  });
});
