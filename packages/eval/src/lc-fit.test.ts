/**
 * The LC fit against AlpacaEval's own `get_length_controlled_winrate` (scikit-learn 1.6.1):
 * ../shared/data/alpaca-lc/annotations-goldens.json (see its README).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { liblinearL1Logistic } from './liblinear.js';
import {
  LC_CS,
  type LcAnnotation,
  type LcGlm,
  l1LogisticFit,
  lengthControlledWinRate,
  parseDfGamed,
} from './node.js';

const dir = fileURLToPath(new URL('../../../../shared/data/alpaca-lc/', import.meta.url));
const dfGamedPath = `${dir}df_gamed.csv`;
const dfGamed = parseDfGamed(readFileSync(dfGamedPath, 'utf8'));

interface Expected {
  glm: LcGlm;
  win_rate: number;
  standard_error: number;
  length_controlled_winrate: number;
  lc_standard_error: number;
  weights: Record<string, number>;
  C: number;
}
interface Case {
  model: string;
  len_1: number[];
  len_2: number[];
  preference: (number | null)[];
  expected: Expected;
  expected_noreg?: Expected;
  expected_minimal?: Expected;
}
const cases = (
  JSON.parse(readFileSync(`${dir}annotations-goldens.json`, 'utf8')) as { cases: Case[] }
).cases;

const annotationsOf = (c: Case, model = c.model): LcAnnotation[] =>
  c.preference.map((p, i) => ({
    instruction: `instruction ${i}`,
    output_1: 'a'.repeat(c.len_1[i]!),
    output_2: 'b'.repeat(c.len_2[i]!),
    generator_1: 'gpt4_1106_preview',
    generator_2: model,
    preference: p,
  }));

const runs = cases.flatMap((c) =>
  [c.expected, c.expected_noreg, c.expected_minimal]
    .filter((e): e is Expected => e !== undefined)
    .map((e) => [`${c.model} ${e.glm}`, c, e] as const),
);

describe("AlpacaEval's length-controlled win rate", () => {
  it('the goldens include the noreg and minimal variants and a missing preference', () => {
    expect(runs.length).toBeGreaterThanOrEqual(8);
    expect(new Set(runs.map(([, , e]) => e.glm)).size).toBe(3);
    expect(cases.some((c) => c.preference.includes(null))).toBe(true);
  });

  it.each(runs)('%s: LC within 0.05 points, C, weights and win rate', (_l, c, e) => {
    const r = lengthControlledWinRate(annotationsOf(c), { dfGamed, glm: e.glm });
    // liblinear's algorithm, seeds and tolerance: the same C, the same weights
    expect(r.C).toBe(e.C);
    expect(r.cvScores!.length).toBe(LC_CS.length);
    expect(Math.abs(r.length_controlled_winrate - e.length_controlled_winrate)).toBeLessThan(0.05);
    expect(Math.abs(r.lc_standard_error - e.lc_standard_error)).toBeLessThan(0.05);
    expect(r.win_rate).toBeCloseTo(e.win_rate, 9);
    expect(r.standard_error).toBeCloseTo(e.standard_error, 9);
    for (const [k, v] of Object.entries(e.weights))
      expect(Math.abs(r.weights[k]! - v), k).toBeLessThan(2e-2);
  });

  it('reads df_gamed from a path; the model against itself is 50 with no fit', () => {
    const c = cases[0]!;
    const r = lengthControlledWinRate(annotationsOf(c, 'gpt4_1106_preview'), {
      dfGamed: dfGamedPath,
    });
    expect(r.length_controlled_winrate).toBe(50);
    expect(r.lc_standard_error).toBe(0);
    expect(r.C).toBeUndefined();
  });

  it('liblinear stops near the exact optimum (to its tolerance), and that solver is optimal by the subgradient conditions', () => {
    const X = Array.from({ length: 40 }, (_, i) => [Math.tanh((i - 20) / 7), 1]);
    const p = X.map((_, i) => 0.2 + (0.6 * ((i * 7) % 11)) / 10);
    const rows = [
      ...X.map((x, i) => ({ x, y: 1 as const, w: p[i]! })),
      ...X.map((x, i) => ({ x, y: 0 as const, w: 1 - p[i]! })),
    ];
    const exact = l1LogisticFit(
      X,
      p,
      X.map(() => 1),
      50,
    );
    const lib = liblinearL1Logistic(rows, 50);
    lib.forEach((v, j) => {
      expect(Math.abs(v - exact[j]!)).toBeLessThan(1e-2 * (1 + Math.abs(exact[j]!)));
    });
    // 1-D: minimize |w| + C·Σ s·[p·softplus(−xw) + (1−p)·softplus(xw)]
    const X1 = [[1], [2], [-1], [0.5]];
    const p1 = [0.9, 0.8, 0.3, 0.6];
    const s = [1, 1, 1, 1];
    for (const C of [0.01, 0.5, 10]) {
      const [w] = l1LogisticFit(X1, p1, s, C) as [number];
      const grad = X1.reduce(
        (t, [x], i) => t + C * s[i]! * (1 / (1 + Math.exp(-x! * w)) - p1[i]!) * x!,
        0,
      );
      if (w === 0) expect(Math.abs(grad)).toBeLessThanOrEqual(1 + 1e-9);
      else expect(grad + Math.sign(w)).toBeCloseTo(0, 8);
    }
    // C = 0.01 is small enough that the L1 term wins: w = 0
    expect(l1LogisticFit(X1, p1, s, 0.01)[0]).toBe(0);
  });

  it('bad df_gamed rows name the file, line and field', () => {
    expect(() => parseDfGamed('model,index\nx,1\n', 'g.csv')).toThrow(
      /g.csv: missing column 'preference'/,
    );
    expect(() =>
      parseDfGamed(
        'model,index,preference,std_delta_len,instruction_difficulty,not_gamed_baseline\nm,0,x,1,1,False\n',
        'g.csv',
      ),
    ).toThrow(/g.csv:2: field 'preference' must be a number/);
  });
});
