/**
 * liblinear's L1-regularized logistic regression (`solve_l1r_lr`, newGLMNET: Yuan et al.
 * 2011; Fan et al. 2008) as scikit-learn 1.6 runs it for `LogisticRegression(penalty='l1',
 * solver='liblinear', fit_intercept=False)` — a port of the algorithm, step for step, so a fit
 * stops where scikit-learn's stops (its tolerance decides between nearly tied Cs in
 * AlpacaEval's cross-validation).
 */
import { Mt19937 } from './py-random.js';

/**
 * scikit-learn's liblinear seeds for `random_state=123`: `_logistic_regression_path` makes one
 * `RandomState(123)` and each C of its path draws `randint(2**31 − 1)` from it, so the k-th C
 * of a path gets the k-th of these (made with numpy 2: `RandomState(123).randint(2147483647)`
 * ten times). A refit at one C is a path of one: the first.
 */
export const LIBLINEAR_SEEDS_123: readonly number[] = [
  843828734, 914636141, 1228959102, 1840268610, 974319580, 819844194, 220395238, 941243409,
  942612051, 2109339754,
];

/**
 * scikit-learn liblinear's `bounded_rand_int` (`newrand.h`, a tweaked Lemire reduction):
 * uniform in [0, range) from a `std::mt19937`.
 */
export function boundedRandInt(mt: Mt19937, range: number): number {
  const mul = (x: number) => BigInt(x) * BigInt(range);
  let m = mul(mt.next());
  let l = Number(m & 0xffffffffn);
  if (l < range) {
    let t = (2 ** 32 - range) % 2 ** 32;
    if (t >= range) {
      t -= range;
      if (t >= range) t %= range;
    }
    while (l < t) {
      m = mul(mt.next());
      l = Number(m & 0xffffffffn);
    }
  }
  return Number(m >> 32n);
}

/** One training row: features, 0/1 label, sample weight. */
export interface LiblinearRow {
  x: readonly number[];
  y: 0 | 1;
  w: number;
}

/**
 * `min_w ‖w‖₁ + C·Σ_i w_i·log(1 + exp(−y_i·wᵀx_i))` as liblinear solves it: rows with weight
 * 0 dropped, rows grouped by class (class 0 first, as −1), stopping tolerance
 * `tol·max(min(#pos, #neg), 1)/l` (tol 1e-4), at most `maxIter` (100) Newton iterations, the
 * inner coordinate order shuffled by a `std::mt19937` seeded with `seed`. Returns w for
 * class 1 (P(y = 1 | x) = σ(wᵀx)).
 */
export function liblinearL1Logistic(
  rows: readonly LiblinearRow[],
  C: number,
  o: { tol?: number; maxIter?: number; seed?: number } = {},
): number[] {
  const kept = rows.filter((r) => r.w > 0);
  const ordered = [...kept.filter((r) => r.y === 0), ...kept.filter((r) => r.y === 1)];
  const l = ordered.length;
  const n = ordered[0]?.x.length ?? 0;
  const pos = ordered.filter((r) => r.y === 1).length;
  const eps = ((o.tol ?? 1e-4) * Math.max(Math.min(pos, l - pos), 1)) / l;
  const maxNewton = o.maxIter ?? 100;
  const mt = new Mt19937(o.seed ?? LIBLINEAR_SEEDS_123[0]!);
  const y = ordered.map((r) => (r.y === 1 ? 1 : -1));
  const Cw = ordered.map((r) => r.w * C);
  // columns: the rows with a nonzero value, in row order (liblinear's transposed problem)
  const cols = Array.from({ length: n }, (_, j) => {
    const idx: number[] = [];
    const val: number[] = [];
    ordered.forEach((r, i) => {
      if (r.x[j] !== 0) {
        idx.push(i);
        val.push(r.x[j]!);
      }
    });
    return { idx, val };
  });
  const maxInner = 1000;
  const maxLinesearch = 20;
  const nu = 1e-12;
  const sigma = 0.01;
  let innerEps = 1;
  const w = new Array<number>(n).fill(0);
  const wpd = new Array<number>(n).fill(0);
  const index = Array.from({ length: n }, (_, j) => j);
  const Hdiag = new Array<number>(n).fill(0);
  const Grad = new Array<number>(n).fill(0);
  const xjnegSum = new Array<number>(n).fill(0);
  const xTd = new Array<number>(l).fill(0);
  let expWTx = new Array<number>(l).fill(0);
  let expWTxNew = new Array<number>(l).fill(0);
  const tau = new Array<number>(l).fill(0);
  const D = new Array<number>(l).fill(0);
  const swap = (a: number, b: number) => {
    const t = index[a]!;
    index[a] = index[b]!;
    index[b] = t;
  };
  let wNorm = 0;
  for (let j = 0; j < n; j++) {
    const c = cols[j]!;
    for (let k = 0; k < c.idx.length; k++) {
      const ind = c.idx[k]!;
      expWTx[ind]! += w[j]! * c.val[k]!;
      if (y[ind] === -1) xjnegSum[j]! += Cw[ind]! * c.val[k]!;
    }
  }
  for (let i = 0; i < l; i++) {
    expWTx[i] = Math.exp(expWTx[i]!);
    const t = 1 / (1 + expWTx[i]!);
    tau[i] = Cw[i]! * t;
    D[i] = Cw[i]! * expWTx[i]! * t * t;
  }
  let Gnorm1Init = -1;
  let GmaxOld = Number.POSITIVE_INFINITY;
  let QPNoChange = 0;
  for (let newtonIter = 0; newtonIter < maxNewton; newtonIter++) {
    let GmaxNew = 0;
    let Gnorm1New = 0;
    let activeSize = n;
    for (let s = 0; s < activeSize; s++) {
      const j = index[s]!;
      Hdiag[j] = nu;
      let tmp = 0;
      const c = cols[j]!;
      for (let k = 0; k < c.idx.length; k++) {
        const ind = c.idx[k]!;
        Hdiag[j]! += c.val[k]! * c.val[k]! * D[ind]!;
        tmp += c.val[k]! * tau[ind]!;
      }
      Grad[j] = -tmp + xjnegSum[j]!;
      const Gp = Grad[j]! + 1;
      const Gn = Grad[j]! - 1;
      let violation = 0;
      if (w[j] === 0) {
        if (Gp < 0) violation = -Gp;
        else if (Gn > 0) violation = Gn;
        else if (Gp > GmaxOld / l && Gn < -GmaxOld / l) {
          activeSize--; // outer-level shrinking
          swap(s, activeSize);
          s--;
          continue;
        }
      } else if (w[j]! > 0) violation = Math.abs(Gp);
      else violation = Math.abs(Gn);
      GmaxNew = Math.max(GmaxNew, violation);
      Gnorm1New += violation;
    }
    if (newtonIter === 0) Gnorm1Init = Gnorm1New;
    if (Gnorm1New <= eps * Gnorm1Init || QPNoChange >= 10) break;
    QPNoChange++;
    let iter = 0;
    let QPGmaxOld = Number.POSITIVE_INFINITY;
    let QPActiveSize = activeSize;
    xTd.fill(0);
    while (iter < maxInner) {
      let QPGmaxNew = 0;
      let QPGnorm1New = 0;
      for (let j = 0; j < QPActiveSize; j++) swap(j + boundedRandInt(mt, QPActiveSize - j), j);
      for (let s = 0; s < QPActiveSize; s++) {
        const j = index[s]!;
        const H = Hdiag[j]!;
        const c = cols[j]!;
        let G = Grad[j]! + (wpd[j]! - w[j]!) * nu;
        for (let k = 0; k < c.idx.length; k++) {
          const ind = c.idx[k]!;
          G += c.val[k]! * D[ind]! * xTd[ind]!;
        }
        const Gp = G + 1;
        const Gn = G - 1;
        let violation = 0;
        if (wpd[j] === 0) {
          if (Gp < 0) violation = -Gp;
          else if (Gn > 0) violation = Gn;
          else if (Gp > QPGmaxOld / l && Gn < -QPGmaxOld / l) {
            QPActiveSize--; // inner-level shrinking
            swap(s, QPActiveSize);
            s--;
            continue;
          }
        } else if (wpd[j]! > 0) violation = Math.abs(Gp);
        else violation = Math.abs(Gn);
        // the one-variable problem's solution
        let z: number;
        if (Gp < H * wpd[j]!) z = -Gp / H;
        else if (Gn > H * wpd[j]!) z = -Gn / H;
        else z = -wpd[j]!;
        if (Math.abs(z) < 1.0e-12) continue;
        z = Math.min(Math.max(z, -10.0), 10.0);
        QPNoChange = 0;
        QPGmaxNew = Math.max(QPGmaxNew, violation);
        QPGnorm1New += violation;
        wpd[j]! += z;
        for (let k = 0; k < c.idx.length; k++) xTd[c.idx[k]!]! += c.val[k]! * z;
      }
      iter++;
      if (QPGnorm1New <= innerEps * Gnorm1Init) {
        if (QPActiveSize === activeSize) break;
        QPActiveSize = activeSize; // active set reactivation
        QPGmaxOld = Number.POSITIVE_INFINITY;
        continue;
      }
      QPGmaxOld = QPGmaxNew;
    }
    let delta = 0;
    let wNormNew = 0;
    for (let j = 0; j < n; j++) {
      delta += Grad[j]! * (wpd[j]! - w[j]!);
      if (wpd[j] !== 0) wNormNew += Math.abs(wpd[j]!);
    }
    delta += wNormNew - wNorm;
    let negsumXTd = 0;
    for (let i = 0; i < l; i++) if (y[i] === -1) negsumXTd += Cw[i]! * xTd[i]!;
    let numLinesearch = 0;
    for (; numLinesearch < maxLinesearch; numLinesearch++) {
      let cond = wNormNew - wNorm + negsumXTd - sigma * delta;
      for (let i = 0; i < l; i++) {
        const expXTd = Math.exp(xTd[i]!);
        expWTxNew[i] = expWTx[i]! * expXTd;
        cond += Cw[i]! * Math.log((1 + expWTxNew[i]!) / (expXTd + expWTxNew[i]!));
      }
      if (cond <= 0) {
        wNorm = wNormNew;
        for (let j = 0; j < n; j++) w[j] = wpd[j]!;
        [expWTx, expWTxNew] = [expWTxNew, expWTx];
        for (let i = 0; i < l; i++) {
          const t = 1 / (1 + expWTx[i]!);
          tau[i] = Cw[i]! * t;
          D[i] = Cw[i]! * expWTx[i]! * t * t;
        }
        break;
      }
      wNormNew = 0;
      for (let j = 0; j < n; j++) {
        wpd[j] = (w[j]! + wpd[j]!) * 0.5;
        if (wpd[j] !== 0) wNormNew += Math.abs(wpd[j]!);
      }
      delta *= 0.5;
      negsumXTd *= 0.5;
      for (let i = 0; i < l; i++) xTd[i]! *= 0.5;
    }
    if (numLinesearch >= maxLinesearch) {
      // too many line-search steps: recompute exp(wᵀx) from w
      expWTx.fill(0);
      for (let j = 0; j < n; j++) {
        if (w[j] === 0) continue;
        const c = cols[j]!;
        for (let k = 0; k < c.idx.length; k++) expWTx[c.idx[k]!]! += w[j]! * c.val[k]!;
      }
      for (let i = 0; i < l; i++) expWTx[i] = Math.exp(expWTx[i]!);
    }
    if (iter === 1) innerEps *= 0.25;
    GmaxOld = GmaxNew;
  }
  return w;
}
