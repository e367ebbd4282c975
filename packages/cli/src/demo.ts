/**
 * `alignjs demo`: the built-in tiny model aligned with each objective on a synthetic task
 * whose true reward is a rule: an answer scores +1 per pleasant adjective and −1 per
 * unpleasant one (clamped to ±3), +0.5 if it names the subject it was asked about. Data are
 * sampled from the starting model and scored with that rule; every objective gets the same
 * budget; generations on held-out prompts are judged by the rule against the starting model.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildBatch,
  initBackend,
  mulberry32,
  sequenceLogprobs,
  toTensors,
} from '@alignjs/core-logprob';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import { unidpoObjective, unidpoTerms } from '@alignjs/loss-unidpo';
import {
  type CausalLM,
  generate,
  type HfTokenizer,
  loadModel,
  loadTokenizer,
  TINY_TASK_WORDS,
  tinyModelDir,
} from '@alignjs/models/node';
import { type Chart, htmlTable, renderReport, textTable } from '@alignjs/report';
import type { RewardFn } from '@alignjs/trainer/node';
import { makeLogger, Trainer } from '@alignjs/trainer/node';
import * as tf from '@tensorflow/tfjs-core';
import { parseRunConfig } from './config-file.js';

export const DEMO_SCORE_RANGE: [number, number] = [-3, 3.5];

/** The demo task's true reward. */
export const demoReward: RewardFn = (prompt, response) => {
  const words: string[] = response.toLowerCase().match(/[a-z]+/g) ?? [];
  const pos = words.filter((w) => TINY_TASK_WORDS.positive.includes(w)).length;
  const neg = words.filter((w) => TINY_TASK_WORDS.negative.includes(w)).length;
  const subject = TINY_TASK_WORDS.subjects.find((s) => prompt.includes(` ${s}`));
  return Math.max(-3, Math.min(3, pos - neg)) + (subject && words.includes(subject) ? 0.5 : 0);
};

interface DemoObjective {
  label: string;
  name: string;
  data: 'pairwise' | 'score' | 'multi' | 'binary' | 'noisy';
  /**
   * only what the demo's data force (its score scale); everything else is the objective's
   * own default, i.e. its paper's setting
   */
  config: Record<string, unknown>;
  useReward?: boolean;
}

export const DEMO_OBJECTIVES: DemoObjective[] = [
  { label: 'DPO', name: 'dpo', data: 'pairwise', config: {} },
  { label: 'UNA', name: 'una', data: 'score', config: { feedback: 'score' } },
  // UNA on binary labels made from the same scores (above the prompt's median = 1)
  { label: 'UNA-binary', name: 'una', data: 'binary', config: { feedback: 'binary' } },
  { label: 'RAO', name: 'rao', data: 'multi', config: {} },
  // τ_good on the demo's reward scale (the paper's 3.2 is on a 1–5 judge scale); the pairs
  // carry a known fraction of flipped preferences (see DEMO_FLIP_FRACTION)
  { label: 'Uni-DPO', name: 'unidpo', data: 'noisy', config: { tauGood: 1 } },
  { label: 'VAR', name: 'var', data: 'score', config: { mode: 'cross' }, useReward: true },
  { label: 'PRO', name: 'pro', data: 'pairwise', config: {} },
];

/** Share of Uni-DPO's pairs whose chosen and rejected answers are swapped (label noise). */
export const DEMO_FLIP_FRACTION = 0.25;

export interface DemoOptions {
  output: string;
  quick?: boolean;
  /** optimizer steps per objective (default 60; 4 with quick) */
  steps?: number;
  /** seeds to run (default 8; 1 with quick) */
  seeds?: number;
  /** first seed (default 1) */
  seed?: number;
  objectives?: string[];
  log?: (line: string) => void;
}

/** A metric's mean over seeds and its 95% bootstrap interval (prompts resampled within seeds). */
export interface Estimate {
  mean: number;
  lo: number;
  hi: number;
}

export interface DemoRow {
  objective: string;
  winRate: Estimate;
  meanReward: Estimate;
  startReward: number;
  chosenLogpChange: Estimate;
  wallSeconds: number;
}

export interface DemoClaim {
  claim: string;
  effect: string;
  estimate: Estimate;
  verdict: 'holds' | 'not shown at this scale';
}

function chat(tok: HfTokenizer, prompt: string): string {
  return tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true });
}

function sampleAnswers(
  model: CausalLM,
  tok: HfTokenizer,
  prompts: string[],
  n: number,
  seed: number,
  maxNewTokens: number,
): string[][] {
  const ids = prompts.flatMap((p) =>
    Array.from({ length: n }, () => tok.encode(chat(tok, p), { addSpecialTokens: false })),
  );
  const out: string[] = [];
  const B = 32;
  for (let i = 0; i < ids.length; i += B) {
    const r = generate(model, ids.slice(i, i + B), {
      maxNewTokens,
      temperature: 1,
      seed: seed + i,
      stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
      decode: (x) => tok.decode(x),
    });
    out.push(...r.texts!.map((t) => t.trim()));
  }
  return prompts.map((_, i) => out.slice(i * n, (i + 1) * n));
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : 0;
}

/**
 * Mean over seeds of each seed's mean over its units (prompts or pairs), with a 95%
 * percentile bootstrap: units resampled with replacement within every seed, 2000 times.
 */
export function bootstrapEstimate(perSeed: readonly (readonly number[])[], seed = 12345): Estimate {
  const est = (xs: readonly (readonly number[])[]) => mean(xs.map((v) => mean(v)));
  const rnd = mulberry32(seed);
  const reps: number[] = [];
  for (let b = 0; b < 2000; b++)
    reps.push(
      est(
        perSeed.map((v) =>
          Array.from({ length: v.length }, () => v[Math.floor(rnd() * v.length)]!),
        ),
      ),
    );
  reps.sort((a, b) => a - b);
  return {
    mean: est(perSeed),
    lo: reps[Math.floor(0.025 * reps.length)]!,
    hi: reps[Math.floor(0.975 * reps.length)]!,
  };
}

const fmt = (e: Estimate) => `${e.mean.toFixed(3)} [${e.lo.toFixed(3)}, ${e.hi.toFixed(3)}]`;

interface SeedData {
  files: Record<DemoObjective['data'], string>;
  chosenRows: { prompt: number[]; response: number[] }[];
  /** per Uni-DPO pair: was it flipped, and its scores as the data give them */
  noisyPairs: { flipped: boolean; scoreChosen: number; scoreRejected: number }[];
}

/** Samples the seed's preference data from the starting model and writes it in TRL's schemas. */
async function makeData(
  dir: string,
  start: CausalLM,
  tok: HfTokenizer,
  trainPrompts: string[],
  samples: number,
  seed: number,
  maxNew: number,
): Promise<SeedData> {
  const answers = sampleAnswers(start, tok, trainPrompts, samples, seed * 7919, maxNew);
  const scored = trainPrompts.map((p, i) => answers[i]!.map((a) => ({ a, r: demoReward(p, a) })));
  const user = (c: string) => [{ role: 'user', content: c }];
  const asst = (c: string) => [{ role: 'assistant', content: c }];
  const pairs = scored.flatMap((s, i) => {
    const sorted = [...s].sort((x, y) => y.r - x.r);
    const best = sorted[0]!;
    const worst = sorted.at(-1)!;
    return best.r > worst.r ? [{ i, best, worst }] : [];
  });
  if (pairs.length === 0)
    throw new Error('demo: every sampled pair tied under the true reward; nothing to learn from');
  const pairwise = pairs.map(({ i, best, worst }) => ({
    prompt: user(trainPrompts[i]!),
    chosen: asst(best.a),
    rejected: asst(worst.a),
    score_chosen: best.r,
    score_rejected: worst.r,
  }));
  // Label noise: a known share of pairs swapped; each answer keeps its own (true) score.
  const rnd = mulberry32(seed * 31 + 7);
  const noisyPairs = pairs.map(({ best, worst }) => {
    const flipped = rnd() < DEMO_FLIP_FRACTION;
    return flipped
      ? { flipped, scoreChosen: worst.r, scoreRejected: best.r }
      : { flipped, scoreChosen: best.r, scoreRejected: worst.r };
  });
  const noisy = pairs.map(({ i, best, worst }, k) => {
    const [c, r] = noisyPairs[k]!.flipped ? [worst, best] : [best, worst];
    return {
      prompt: user(trainPrompts[i]!),
      chosen: asst(c.a),
      rejected: asst(r.a),
      score_chosen: c.r,
      score_rejected: r.r,
    };
  });
  const score = scored.flatMap((s, i) =>
    s.map((x) => ({ prompt: user(trainPrompts[i]!), completion: asst(x.a), score: x.r })),
  );
  const binary = scored.flatMap((s, i) => {
    const rs = s.map((x) => x.r).sort((a, b) => a - b);
    const median = (rs[Math.floor((rs.length - 1) / 2)]! + rs[Math.ceil((rs.length - 1) / 2)]!) / 2;
    return s.map((x) => ({
      prompt: user(trainPrompts[i]!),
      completion: asst(x.a),
      label: x.r > median,
    }));
  });
  const multi = scored.map((s, i) => ({
    prompt: user(trainPrompts[i]!),
    completions: s.map((x) => asst(x.a)),
    scores: s.map((x) => x.r),
  }));
  const files = {} as Record<DemoObjective['data'], string>;
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const [k, rows] of Object.entries({ pairwise, noisy, score, binary, multi })) {
    files[k as DemoObjective['data']] = join(dir, 'data', `${k}.jsonl`);
    await writeFileAtomic(
      files[k as DemoObjective['data']],
      `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
    );
  }
  const chosenRows = pairwise.map((p) => {
    const promptText = chat(tok, p.prompt[0]!.content);
    const full = tok.applyChatTemplate([...p.prompt, ...p.chosen]);
    return {
      prompt: tok.encode(promptText, { addSpecialTokens: false }),
      response: tok.encode(full.slice(promptText.length), { addSpecialTokens: false }),
    };
  });
  return { files, chosenRows, noisyPairs };
}

/**
 * Runs the demo: for each seed, preference data sampled from the tiny model and scored by the
 * true rule, every objective trained on it for the same budget, generations on held-out
 * prompts judged by the rule against the starting model's. Writes data, runs, report.html
 * (with intervals) and summary.json under `output`; returns the table and the claims.
 */
export async function runDemo(o: DemoOptions): Promise<{ rows: DemoRow[]; claims: DemoClaim[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const info = await initBackend();
  const steps = o.steps ?? (o.quick ? 4 : 60);
  const nSeeds = o.seeds ?? (o.quick ? 1 : 8);
  const firstSeed = o.seed ?? 1;
  const samples = o.quick ? 2 : 4;
  const evalSamples = o.quick ? 1 : 4;
  const maxNew = 24;
  const tok = await loadTokenizer(tinyModelDir());
  const start = await loadModel(tinyModelDir());
  const W = TINY_TASK_WORDS;
  const prompts = W.subjects.flatMap((s) => W.prompts.map((p) => p.replace('{s}', s)));
  const evalPrompts = prompts.filter((_, i) => i % 3 === 2).slice(0, o.quick ? 4 : 24);
  const trainPrompts = prompts.filter((_, i) => i % 3 !== 2).slice(0, o.quick ? 8 : 32);
  const chosen = DEMO_OBJECTIVES.filter(
    (d) => !o.objectives || o.objectives.includes(d.label) || o.objectives.includes(d.name),
  );
  log(
    `alignjs demo on ${info.backend}: ${nSeeds} seed(s) × ${chosen.length} objectives, ${steps} steps each; ${trainPrompts.length} prompts × ${samples} sampled answers; ${evalPrompts.length} held-out prompts × ${evalSamples}`,
  );
  // per objective label, per seed: per-unit values
  const win: Record<string, number[][]> = {};
  const reward: Record<string, number[][]> = {};
  const dLogp: Record<string, number[][]> = {};
  const startRewardAll: number[] = [];
  const wall: Record<string, number> = {};
  const wQual: { clean: number[][]; flipped: number[][] } = { clean: [], flipped: [] };
  const raoGap: { first: number[]; last: number[] } = { first: [], last: [] };
  const varRuns: { wMin: number; losses: number[] }[] = [];
  const charts: Chart[] = [];
  for (let s = firstSeed; s < firstSeed + nSeeds; s++) {
    const dir = join(o.output, `seed-${s}`);
    const data = await makeData(dir, start, tok, trainPrompts, samples, s, maxNew);
    const evalStart = sampleAnswers(start, tok, evalPrompts, evalSamples, 1000 + s * 7919, maxNew);
    const startRewards = evalPrompts.map((p, i) => evalStart[i]!.map((a) => demoReward(p, a)));
    startRewardAll.push(...startRewards.flat());
    const chosenLogps = (m: CausalLM) => {
      const batch = toTensors(buildBatch(data.chosenRows, { padTokenId: tok.padTokenId ?? 0 }));
      const r = sequenceLogprobs(m.call, batch, { noGrad: true });
      const v = Array.from(r.responseSum.dataSync());
      tf.dispose([...Object.values(r), ...Object.values(batch)]);
      return v;
    };
    const startChosen = chosenLogps(start);
    for (const d of chosen) {
      const t0 = performance.now();
      const out = join(dir, 'runs', d.label);
      const config = parseRunConfig(
        {
          model: 'builtin:tiny',
          train: data.files[d.data],
          objective: { name: d.name, config: d.config },
          output: out,
          learningRate: 1e-3,
          batchSize: 8,
          maxSteps: steps,
          schedule: 'constant',
          seed: s,
          maxLength: 96,
          maxPromptLength: 32,
          scoreRange: DEMO_SCORE_RANGE,
        },
        `demo ${d.label}`,
      );
      const trainer = new Trainer(config, {
        logger: makeLogger(join(out, 'metrics.jsonl'), 'quiet'),
        reward: d.useReward ? demoReward : undefined,
      });
      const result = await trainer.train();
      const evalAligned = sampleAnswers(
        trainer.policy!,
        tok,
        evalPrompts,
        evalSamples,
        1000 + s * 7919,
        maxNew,
      );
      const perPromptWin = evalPrompts.map((p, i) =>
        mean(
          evalAligned[i]!.map((a, k) => {
            const r = demoReward(p, a);
            const r0 = startRewards[i]![k]!;
            return r > r0 ? 1 : r === r0 ? 0.5 : 0;
          }),
        ),
      );
      const perPromptReward = evalPrompts.map((p, i) =>
        mean(evalAligned[i]!.map((a) => demoReward(p, a))),
      );
      const aligned = chosenLogps(trainer.policy!);
      const push = (m: Record<string, number[][]>, v: number[]) => {
        m[d.label] = [...(m[d.label] ?? []), v];
      };
      push(win, perPromptWin);
      push(reward, perPromptReward);
      push(
        dLogp,
        aligned.map((v, i) => v - startChosen[i]!),
      );
      wall[d.label] = (wall[d.label] ?? 0) + (performance.now() - t0) / 1000;
      const h = result.history;
      if (d.name === 'unidpo') {
        // w_qual = σ(η(S_w − S_l)) per pair, from Uni-DPO's own terms on its (noisy) data
        const cfg = unidpoObjective.parseConfig(d.config);
        const n = data.noisyPairs.length;
        const z = tf.zeros([n]) as tf.Tensor1D;
        const t = unidpoTerms(
          {
            kind: 'pairwise',
            policyChosenLogps: z,
            policyRejectedLogps: z,
            refChosenLogps: z,
            refRejectedLogps: z,
            chosenLengths: tf.ones([n]) as tf.Tensor1D,
            rejectedLengths: tf.ones([n]) as tf.Tensor1D,
            chosenScores: tf.tensor1d(data.noisyPairs.map((x) => x.scoreChosen)),
            rejectedScores: tf.tensor1d(data.noisyPairs.map((x) => x.scoreRejected)),
          },
          cfg,
        );
        const wq = Array.from(t.wQual.dataSync());
        tf.dispose(Object.values(t));
        tf.dispose(z);
        wQual.clean.push(wq.filter((_, k) => !data.noisyPairs[k]!.flipped));
        wQual.flipped.push(wq.filter((_, k) => data.noisyPairs[k]!.flipped));
      }
      if (d.name === 'rao') {
        raoGap.first.push(h[0]!.metrics['rao/gap']!);
        raoGap.last.push(h.at(-1)!.metrics['rao/gap']!);
      }
      if (d.name === 'var')
        varRuns.push({
          wMin: Math.min(...h.map((x) => x.metrics['var/w_min']!)),
          losses: h.map((x) => x.loss),
        });
      if (s === firstSeed) {
        charts.push({
          title: `${d.label}: loss (seed ${s})`,
          series: [{ name: 'loss', points: h.map((x) => [x.step, x.loss]) }],
        });
      }
      log(
        `seed ${s} ${d.label}: ${result.steps} steps in ${result.wallSeconds.toFixed(1)}s, win rate ${(mean(perPromptWin) * 100).toFixed(1)}%`,
      );
      trainer.dispose();
    }
  }
  start.dispose();
  const rows: DemoRow[] = chosen.map((d) => ({
    objective: d.label,
    winRate: bootstrapEstimate(win[d.label]!),
    meanReward: bootstrapEstimate(reward[d.label]!),
    startReward: mean(startRewardAll),
    chosenLogpChange: bootstrapEstimate(dLogp[d.label]!),
    wallSeconds: wall[d.label]!,
  }));
  const claims = demoClaims(rows, win, wQual, raoGap, varRuns);
  const head = [
    'objective',
    'win rate vs start [95% CI]',
    'mean true reward',
    'Δ logp(chosen)',
    'wall s',
  ];
  const body = rows.map((r) => [
    r.objective,
    fmt(r.winRate),
    fmt(r.meanReward),
    fmt(r.chosenLogpChange),
    r.wallSeconds,
  ]);
  const claimHead = ['claim', 'effect', 'estimate [95% CI]', 'verdict'];
  const claimBody = claims.map((c) => [c.claim, c.effect, fmt(c.estimate), c.verdict]);
  const bars = (title: string, pick: (r: DemoRow) => Estimate) => ({
    title,
    kind: 'bar' as const,
    series: rows.map((r) => {
      const e = pick(r);
      return {
        name: r.objective,
        points: [[0, e.mean]] as [number, number][],
        errors: [[e.lo, e.hi]] as [number, number][],
      };
    }),
  });
  const html = renderReport('alignjs demo: the tiny model aligned with each objective', [
    {
      heading: 'Results',
      html: `<p>Backend ${info.backend}; ${nSeeds} seed(s) from ${firstSeed}; ${steps} optimizer steps per objective (batch 8, lr 1e-3); per seed ${trainPrompts.length} training prompts × ${samples} sampled answers and ${evalPrompts.length} held-out prompts × ${evalSamples} samples judged by the true reward against the starting model (ties count half). Means over seeds, 95% intervals by bootstrap over prompts (pairs for Δ logp) within seeds; start model reward ${mean(startRewardAll).toFixed(3)}.</p>${htmlTable(head, body)}`,
      charts: [
        bars('win rate vs starting model', (r) => r.winRate),
        bars('Δ log-prob of chosen answers', (r) => r.chosenLogpChange),
      ],
    },
    { heading: 'The papers’ claims, measured', html: htmlTable(claimHead, claimBody) },
    { heading: 'Training curves', charts },
  ]);
  await mkdir(o.output, { recursive: true });
  await writeFileAtomic(join(o.output, 'report.html'), html);
  await writeFileAtomic(
    join(o.output, 'summary.json'),
    JSON.stringify(
      { backend: info.backend, steps, seeds: nSeeds, firstSeed, rows, claims },
      null,
      2,
    ),
  );
  const text = `${textTable(head, body)}\n\n${textTable(claimHead, claimBody)}`;
  await writeFile(join(o.output, 'summary.md'), `${text}\n`);
  log(text);
  log(`report: ${join(o.output, 'report.html')}`);
  return { rows, claims };
}

/** The claims table: each paper's central claim with its measured effect and a verdict. */
function demoClaims(
  rows: DemoRow[],
  win: Record<string, number[][]>,
  wQual: { clean: number[][]; flipped: number[][] },
  raoGap: { first: number[]; last: number[] },
  varRuns: { wMin: number; losses: number[] }[],
): DemoClaim[] {
  const claims: DemoClaim[] = [];
  const row = (l: string) => rows.find((r) => r.objective === l);
  const verdict = (ok: boolean) => (ok ? ('holds' as const) : ('not shown at this scale' as const));
  const dpo = row('DPO');
  if (dpo)
    claims.push({
      claim: 'DPO lowers logp(chosen)',
      effect: 'Δ logp(chosen), nats',
      estimate: dpo.chosenLogpChange,
      verdict: verdict(dpo.chosenLogpChange.hi < 0),
    });
  for (const [l, why] of [
    ['PRO', 'PRO keeps logp(chosen) up'],
    ['RAO', 'RAO keeps logp(chosen) up'],
    ['Uni-DPO', "Uni-DPO's calibrated NLL keeps logp(chosen) up"],
  ] as const) {
    const r = row(l);
    if (r)
      claims.push({
        claim: why,
        effect: 'Δ logp(chosen), nats',
        estimate: r.chosenLogpChange,
        verdict: verdict(r.chosenLogpChange.lo > 0),
      });
  }
  if (win.UNA && win['UNA-binary']) {
    const diff = win.UNA.map((seed, s) => seed.map((v, i) => v - win['UNA-binary']![s]![i]!));
    const e = bootstrapEstimate(diff);
    claims.push({
      claim: 'UNA with scores beats UNA with binary labels from the same scores',
      effect: 'win-rate difference (paired by prompt)',
      estimate: e,
      verdict: verdict(e.lo > 0),
    });
  }
  if (varRuns.length) {
    const wMin = Math.min(...varRuns.map((v) => v.wMin));
    const finite = varRuns.every((v) => v.losses.every(Number.isFinite));
    const k = Math.max(1, Math.floor(varRuns[0]!.losses.length / 5));
    const ratio = mean(varRuns.map((v) => mean(v.losses.slice(-k)) / mean(v.losses.slice(0, k))));
    claims.push({
      claim: "VAR's weights stay positive and its loss is stable",
      effect: `smallest weight ${wMin.toExponential(2)}; last/first loss (mean of ${k} steps), interval = range over seeds`,
      estimate: {
        mean: ratio,
        lo: Math.min(...varRuns.map((v) => mean(v.losses.slice(-k)) / mean(v.losses.slice(0, k)))),
        hi: Math.max(...varRuns.map((v) => mean(v.losses.slice(-k)) / mean(v.losses.slice(0, k)))),
      },
      verdict: verdict(wMin > 0 && finite && ratio <= 1),
    });
  }
  if (wQual.clean.length && wQual.flipped.every((x) => x.length)) {
    const e = bootstrapEstimate(
      wQual.clean.map((c, s) => [mean(c) - mean(wQual.flipped[s]!)]).map((x) => x),
    );
    const clean = mean(wQual.clean.flat());
    const flipped = mean(wQual.flipped.flat());
    claims.push({
      claim: `Uni-DPO's quality weight discounts noisy pairs (${DEMO_FLIP_FRACTION * 100}% flipped)`,
      effect: `w_qual clean ${clean.toFixed(3)} − flipped ${flipped.toFixed(3)}, interval = range over seeds`,
      estimate: {
        ...e,
        lo: Math.min(...wQual.clean.map((c, s) => mean(c) - mean(wQual.flipped[s]!))),
        hi: Math.max(...wQual.clean.map((c, s) => mean(c) - mean(wQual.flipped[s]!))),
      },
      verdict: verdict(clean > flipped),
    });
  }
  if (raoGap.last.length) {
    const rel = raoGap.last.map((v, s) => v / raoGap.first[s]!);
    claims.push({
      claim: 'RAO meets its prefix-consistency target (the gap R − βρ − β·logZ shrinks)',
      effect: `gap last/first step (first ${mean(raoGap.first).toFixed(3)}, last ${mean(raoGap.last).toFixed(3)}), interval = range over seeds`,
      estimate: { mean: mean(rel), lo: Math.min(...rel), hi: Math.max(...rel) },
      verdict: verdict(Math.max(...rel) < 0.5),
    });
  }
  return claims;
}
