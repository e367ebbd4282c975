/**
 * AlpacaEval's length-controlled win rate, the full fit (`metrics/glm_winrate.py`,
 * `get_length_controlled_winrate`), ported to plain arithmetic:
 *
 * 1. Features per annotation i: `tanh(Δlen_i / std(Δlen))` (Δlen = len(output_1) −
 *    len(output_2) in code points, sample std over every row), the instruction difficulty of
 *    row i read from `df_gamed.csv`, and `not_gamed_baseline = 1`; target p_i = preference − 1
 *    (a legacy 0 is a tie). No intercept.
 * 2. `length_controlled_v1` also trains on `df_gamed`'s rows (two gamed baselines), with
 *    sample weight 0.2/2 against 1 for the model's rows; `noreg` and `minimal` do not.
 *    Rows with a missing preference are left out of the fit.
 * 3. `LogisticRegressionCV(penalty='l1', solver='liblinear', fit_intercept=False, Cs=10)` on
 *    continuous targets: minimize `‖w‖₁ + C·Σ_i s_i·[p_i·softplus(−x_i·w) + (1 − p_i)·softplus(x_i·w)]`
 *    (AlpacaEval duplicates each row with labels 1 and 0 weighted p and 1 − p; the same
 *    objective). C runs over `logspace(−4, 4, 10)`; 5-fold grouped CV scored by AlpacaEval's
 *    continuous log loss picks C; the refit on every row at that C gives the weights.
 * 4. LC = 100·mean_i σ(w·x_i) with the length feature at 0 over every row (missing ones too),
 *    its standard error 100·sem.
 *
 * The L1 problem at fixed C has a unique optimum, but the CV compares Cs whose held-out
 * losses differ in the 7th digit, where liblinear's stopping tolerance (1e-4) decides: so the
 * fits run liblinear's own algorithm ({@link liblinearL1Logistic}), not just any accurate
 * solver ({@link l1LogisticFit}, the exact optimum, is kept for checks).
 */
import { type WinRate, winRate } from './alpaca.js';
import { LIBLINEAR_SEEDS_123, type LiblinearRow, liblinearL1Logistic } from './liblinear.js';
import { mean, sigmoid, standardError, stdev } from './stats.js';

/** One row of AlpacaEval's `df_gamed.csv`. */
export interface DfGamedRow {
  model: string;
  index: number;
  preference: number;
  std_delta_len: number;
  instruction_difficulty: number;
  not_gamed_baseline: boolean;
}

/** An AlpacaEval annotation record (the fields the LC fit reads). */
export interface LcAnnotation {
  instruction?: string;
  output_1: string;
  output_2: string;
  generator_1: string;
  generator_2: string;
  /** 1 = output_1 (baseline) better, 2 = output_2 (model) better, 1.5 = tie, NaN/null = missing */
  preference: number | null;
}

export const LC_GLMS = [
  'length_controlled_v1',
  'length_controlled_noreg',
  'length_controlled_minimal',
] as const;
export type LcGlm = (typeof LC_GLMS)[number];

const TANH = 'np.tanh(std_delta_len)';
const DIFFICULTY = 'instruction_difficulty';
const NOT_GAMED = 'not_gamed_baseline.astype(float)';

const GLMS: Record<LcGlm, { terms: string[]; regularizeToBaseline?: number }> = {
  length_controlled_v1: { terms: [TANH, DIFFICULTY, NOT_GAMED], regularizeToBaseline: 0.2 },
  length_controlled_noreg: { terms: [TANH, DIFFICULTY, NOT_GAMED] },
  length_controlled_minimal: { terms: [TANH, NOT_GAMED] },
};

export interface LcResult extends WinRate {
  length_controlled_winrate: number;
  lc_standard_error: number;
  /** fitted weights named as AlpacaEval's formula terms */
  weights: Record<string, number>;
  /** the CV-chosen C (undefined when the model is the baseline: no fit) */
  C?: number;
  /** mean held-out continuous log loss for each C of {@link LC_CS} */
  cvScores?: number[];
  glm: LcGlm;
  /** the per-row LC predictions σ(w·x) */
  glm_preference: number[];
}

/** Parses AlpacaEval's `df_gamed.csv` (header `model,index,preference,std_delta_len,…`). */
export function parseDfGamed(text: string, source = 'df_gamed.csv'): DfGamedRow[] {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '');
  const header = lines[0]?.split(',').map((h) => h.trim()) ?? [];
  const need = [
    'model',
    'index',
    'preference',
    'std_delta_len',
    'instruction_difficulty',
    'not_gamed_baseline',
  ];
  for (const n of need)
    if (!header.includes(n))
      throw new Error(`${source}: missing column '${n}' (header: ${header.join(',')})`);
  const col = Object.fromEntries(need.map((n) => [n, header.indexOf(n)]));
  return lines.slice(1).map((line, k) => {
    const f = line.split(',');
    const num = (name: string) => {
      const v = Number(f[col[name]!]);
      if (f[col[name]!] === undefined || f[col[name]!] === '' || !Number.isFinite(v))
        throw new Error(
          `${source}:${k + 2}: field '${name}' must be a number, got '${f[col[name]!]}'`,
        );
      return v;
    };
    const flag = f[col.not_gamed_baseline!]?.trim();
    if (flag !== 'True' && flag !== 'False')
      throw new Error(
        `${source}:${k + 2}: field 'not_gamed_baseline' must be True or False, got '${flag}'`,
      );
    return {
      model: f[col.model!]!,
      index: num('index'),
      preference: num('preference'),
      std_delta_len: num('std_delta_len'),
      instruction_difficulty: num('instruction_difficulty'),
      not_gamed_baseline: flag === 'True',
    };
  });
}

/**
 * `Cs=10` of LogisticRegressionCV: `np.logspace(-4, 4, 10)` as numpy computes it
 * (`10 ** (8k/9 − 4)` in JavaScript differs in the last bit at k = 7).
 */
export const LC_CS: readonly number[] = [
  0.0001, 0.000774263682681127, 0.005994842503189409, 0.046415888336127774, 0.3593813663804626,
  2.782559402207126, 21.54434690031882, 166.81005372000558, 1291.5496650148827, 10000.0,
];

/**
 * AlpacaEval's duplicated rows for groups `gs` (ascending), in its order: every group with
 * label 1 weighted p·s, then every group with label 0 weighted (1 − p)·s.
 */
function duplicated(
  X: number[][],
  p: number[],
  s: number[],
  gs: readonly number[],
): LiblinearRow[] {
  return [
    ...gs.map((g) => ({ x: X[g]!, y: 1 as const, w: p[g]! * s[g]! })),
    ...gs.map((g) => ({ x: X[g]!, y: 0 as const, w: (1 - p[g]!) * s[g]! })),
  ];
}

const softplus = (z: number) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/** The weighted continuous-target logistic loss and its gradient/Hessian pieces. */
function smoothLoss(X: number[][], p: number[], s: number[], w: number[]): number {
  let f = 0;
  for (let i = 0; i < X.length; i++) {
    const z = dot(X[i]!, w);
    f += s[i]! * (p[i]! * softplus(-z) + (1 - p[i]!) * softplus(z));
  }
  return f;
}

const dot = (a: number[], b: number[]) => a.reduce((t, v, j) => t + v * b[j]!, 0);
const l1 = (w: number[]) => w.reduce((t, v) => t + Math.abs(v), 0);

/**
 * `argmin_w ‖w‖₁ + C·Σ_i s_i·[p_i·softplus(−x_i·w) + (1 − p_i)·softplus(x_i·w)]` by proximal
 * Newton (each quadratic model solved by coordinate descent with soft thresholding, then an
 * Armijo line search), to a relative tolerance of 1e-12. liblinear's L1 logistic regression
 * with instance weights minimizes the same objective.
 */
export function l1LogisticFit(X: number[][], p: number[], s: number[], C: number): number[] {
  const d = X[0]?.length ?? 0;
  let w = new Array<number>(d).fill(0);
  const F = (v: number[]) => l1(v) + C * smoothLoss(X, p, s, v);
  let f = F(w);
  for (let outer = 0; outer < 200; outer++) {
    const g = new Array<number>(d).fill(0);
    const H = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    for (let i = 0; i < X.length; i++) {
      const x = X[i]!;
      const q = sigmoid(dot(x, w));
      const r = C * s[i]! * (q - p[i]!);
      const h = C * s[i]! * q * (1 - q);
      for (let j = 0; j < d; j++) {
        g[j]! += r * x[j]!;
        for (let k = 0; k < d; k++) H[j]![k]! += h * x[j]! * x[k]!;
      }
    }
    // quadratic model: g·Δ + ½ΔᵀHΔ + ‖w + Δ‖₁, coordinate descent on u = w + Δ
    const u = [...w];
    for (let sweep = 0; sweep < 500; sweep++) {
      let moved = 0;
      for (let j = 0; j < d; j++) {
        const a = H[j]![j]! + 1e-12;
        let b = g[j]!;
        for (let k = 0; k < d; k++) b += H[j]![k]! * (u[k]! - w[k]!);
        const center = u[j]! - b / a; // minimizer of the smooth part along j
        const next = Math.sign(center) * Math.max(0, Math.abs(center) - 1 / a);
        moved = Math.max(moved, Math.abs(next - u[j]!));
        u[j] = next;
      }
      if (moved <= 1e-15 * (1 + l1(u))) break;
    }
    const step = u.map((v, j) => v - w[j]!);
    const decrease = dot(g, step) + l1(u) - l1(w);
    if (!(decrease < 0) || Math.max(...step.map(Math.abs)) <= 1e-13 * (1 + l1(w))) break;
    let t = 1;
    let next = u;
    let fNext = F(next);
    while (fNext > f + 1e-4 * t * decrease && t > 1e-12) {
      t /= 2;
      next = w.map((v, j) => v + t * step[j]!);
      fNext = F(next);
    }
    if (!(fNext <= f)) break;
    const converged = f - fNext <= 1e-14 * Math.max(1, Math.abs(f));
    w = next;
    f = fNext;
    if (converged) break;
  }
  return w;
}

/** AlpacaEval's continuous log loss: −mean_i s_i·[p_i·log q_i + (1 − p_i)·log(1 − q_i)], q clipped at 1e-15. */
function continuousLogLoss(p: number[], q: number[], s?: number[]): number {
  let t = 0;
  for (let i = 0; i < p.length; i++) {
    const y = Math.min(Math.max(q[i]!, 1e-15), 1 - 1e-15);
    t += (s ? s[i]! : 1) * (p[i]! * Math.log(y) + (1 - p[i]!) * Math.log(1 - y));
  }
  return -t / p.length;
}

/**
 * LogisticRegressionCV's choice: for each C, the mean over 5 grouped folds of the held-out
 * continuous log loss; the first C with the lowest mean wins. Fold of row g (of G): (G−1−g) mod 5,
 * the split scikit-learn 1.6's GroupKFold made for these equal-size groups.
 */
export function chooseC(
  X: number[][],
  p: number[],
  s: number[],
  scoreWeights: number[] | undefined,
  Cs: readonly number[] = LC_CS,
  folds = 5,
): { C: number; scores: number[] } {
  const G = X.length;
  const fold = (g: number) => (G - 1 - g) % folds;
  const scores = Cs.map((C, c) => {
    let total = 0;
    for (let k = 0; k < folds; k++) {
      const tr: number[] = [];
      const te: number[] = [];
      for (let g = 0; g < G; g++) (fold(g) === k ? te : tr).push(g);
      // the c-th C of a fold's path draws the c-th seed (see LIBLINEAR_SEEDS_123)
      const w = liblinearL1Logistic(duplicated(X, p, s, tr), C, { seed: LIBLINEAR_SEEDS_123[c] });
      total += continuousLogLoss(
        te.map((g) => p[g]!),
        te.map((g) => sigmoid(dot(X[g]!, w))),
        scoreWeights && te.map((g) => scoreWeights[g]!),
      );
    }
    return total / folds;
  });
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! < scores[best]!) best = i;
  return { C: Cs[best]!, scores };
}

/**
 * AlpacaEval's `get_length_controlled_winrate(annotations, glm_name)` on its 0–100 scale:
 * the raw win rate and standard error with the length-controlled win rate, its standard
 * error, the fitted weights (named as AlpacaEval's formula terms) and the CV-chosen C.
 * `dfGamed` is AlpacaEval's `df_gamed.csv` as rows from {@link parseDfGamed} (`@alignjs/eval/node`'s
 * version also takes its path); row i of `annotations` is instruction i of it. A model compared with itself gives 50 without a fit.
 */
export function lengthControlledWinRate(
  annotations: readonly LcAnnotation[],
  options: { dfGamed: readonly DfGamedRow[]; glm?: LcGlm },
): LcResult {
  const glm = options.glm ?? 'length_controlled_v1';
  const spec = GLMS[glm];
  if (!spec)
    throw new Error(`lengthControlledWinRate: unknown glm '${glm}' (known: ${LC_GLMS.join(', ')})`);
  const gamed = options.dfGamed;
  const prefs = annotations.map((a) =>
    a.preference === null || a.preference === undefined ? Number.NaN : a.preference,
  );
  const raw = winRate(prefs);
  const generators = (k: 'generator_1' | 'generator_2') => [
    ...new Set(annotations.map((a) => a[k])),
  ];
  const models = generators('generator_2');
  if (models.length !== 1)
    throw new Error(
      `lengthControlledWinRate: annotations must have one generator_2, got ${models.join(', ')}`,
    );
  // difficulty by instruction index: the first df_gamed row of each index (drop_duplicates)
  const difficulty = new Map<number, number>();
  for (const r of gamed)
    if (!difficulty.has(r.index)) difficulty.set(r.index, r.instruction_difficulty);
  const diff = annotations.map((_, i) => {
    const v = difficulty.get(i);
    if (v === undefined)
      throw new Error(
        `lengthControlledWinRate: df_gamed has no instruction_difficulty for index ${i} (it has ${difficulty.size} instructions; annotation i is instruction i)`,
      );
    return v;
  });
  const row = (tanh: number, d: number, notGamed: number) =>
    spec.terms.map((t) => (t === TANH ? tanh : t === DIFFICULTY ? d : notGamed));
  const testX = diff.map((d) => row(0, d, 1));
  if (models[0] === generators('generator_1')[0]) {
    const q = testX.map(() => 0.5);
    return {
      ...raw,
      length_controlled_winrate: 50,
      lc_standard_error: 0,
      weights: Object.fromEntries(spec.terms.map((t) => [t, 0])),
      glm,
      glm_preference: q,
    };
  }
  const delta = annotations.map((a) => [...a.output_1].length - [...a.output_2].length);
  const sd = stdev(delta);
  const target = prefs.map((v) => (v === 0 ? 1.5 : v) - 1);
  const X: number[][] = [];
  const p: number[] = [];
  const s: number[] = [];
  if (spec.regularizeToBaseline) {
    for (const r of gamed) {
      X.push(
        row(Math.tanh(r.std_delta_len), r.instruction_difficulty, r.not_gamed_baseline ? 1 : 0),
      );
      p.push(r.preference);
      s.push(r.not_gamed_baseline ? 1 : spec.regularizeToBaseline / 2);
    }
  }
  annotations.forEach((_, i) => {
    if (Number.isNaN(target[i]!)) return;
    X.push(row(Math.tanh(delta[i]! / sd), diff[i]!, 1));
    p.push(target[i]!);
    s.push(1);
  });
  const weighted = spec.regularizeToBaseline !== undefined;
  const { C, scores } = chooseC(X, p, s, weighted ? s : undefined);
  const w = liblinearL1Logistic(
    duplicated(
      X,
      p,
      s,
      X.map((_, g) => g),
    ),
    C,
  );
  const q = testX.map((x) => sigmoid(dot(x, w)));
  return {
    ...raw,
    length_controlled_winrate: 100 * mean(q),
    lc_standard_error: 100 * standardError(q),
    weights: Object.fromEntries(spec.terms.map((t, j) => [t, w[j]!])),
    C,
    cvScores: scores,
    glm,
    glm_preference: q,
  };
}
