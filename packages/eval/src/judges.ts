/**
 * Judge-output parsing and aggregation rules of MT-Bench (FastChat) and Arena-Hard-Auto
 * (../shared/docs/eval.md §4–5), and the two-order win/tie/loss rule the VAR paper uses.
 */

/** MT-Bench single-answer rating: `[[x]]`, falling back to `[x]`; −1 when absent. */
export function parseMtBenchRating(text: string): number {
  const m = /\[\[(\d+\.?\d*)\]\]/.exec(text) ?? /\[(\d+\.?\d*)\]/.exec(text);
  return m ? Number(m[1]) : -1;
}

/** Mean of the ratings that parsed (−1 dropped). */
export function mtBenchMean(ratings: readonly number[]): number {
  const ok = ratings.filter((r) => r !== -1);
  return ok.length ? ok.reduce((s, v) => s + v, 0) / ok.length : Number.NaN;
}

export type Verdict = 'A>>B' | 'A>B' | 'A=B' | 'B>A' | 'B>>A';

/**
 * Arena-Hard v0.1 against one baseline. Game 0 has A = baseline, B = model; game 1 the
 * reverse. `>>` counts three times; with every battle involving the baseline the
 * Bradley–Terry fit has the closed form win rate = (W + T/2)/N; Elo = 400·log10(wr/(1−wr)).
 */
export function arenaHardV01(games: readonly [Verdict | null, Verdict | null][]): {
  wins: number;
  ties: number;
  n: number;
  winRate: number;
  elo: number;
} {
  let wins = 0;
  let ties = 0;
  let n = 0;
  const score = (v: Verdict, modelIs: 'A' | 'B') => {
    const weight = v.includes('>>') ? 3 : 1;
    n += weight;
    if (v === 'A=B') ties += weight;
    else if ((v.startsWith('A') && modelIs === 'A') || (v.startsWith('B') && modelIs === 'B'))
      wins += weight;
  };
  for (const [g0, g1] of games) {
    if (g0) score(g0, 'B');
    if (g1) score(g1, 'A');
  }
  const winRate = (wins + ties / 2) / n;
  return { wins, ties, n, winRate, elo: 400 * Math.log10(winRate / (1 - winRate)) };
}

/** Arena-Hard v2 per-question scores: map(game1) + (1 − s for s in map(game0)). */
export function arenaHardV2Scores(games: readonly [Verdict | null, Verdict | null][]): number[] {
  const map: Record<Verdict, number[]> = {
    'A>B': [1],
    'A>>B': [1, 1, 1],
    'A=B': [0.5],
    'B>A': [0],
    'B>>A': [0, 0, 0],
  };
  return games
    .filter(([a, b]) => a && b)
    .flatMap(([g0, g1]) => [...map[g1!], ...map[g0!].map((s) => 1 - s)]);
}

export type Outcome = 'win' | 'tie' | 'loss';

/**
 * The VAR paper's two-order rule for one comparison judged in both orders: win = better in
 * both, or better in one and tied in the other; tie = tied twice, or split; loss otherwise.
 */
export function twoOrderOutcome(first: Outcome, second: Outcome): Outcome {
  const w = [first, second].filter((o) => o === 'win').length;
  const l = [first, second].filter((o) => o === 'loss').length;
  if (w === 2 || (w === 1 && l === 0)) return 'win';
  if (l === 2 || (l === 1 && w === 0)) return 'loss';
  return 'tie';
}
