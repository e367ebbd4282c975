/**
 * `alignjs demo`: the built-in tiny model aligned with each objective on a synthetic task
 * whose true reward is a rule: an answer scores +1 per pleasant adjective and −1 per
 * unpleasant one (clamped to ±3), +0.5 if it names the subject it was asked about. Data are
 * sampled from the starting model and scored with that rule; every objective gets the same
 * budget; generations on held-out prompts are judged by the rule against the starting model.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBatch, initBackend, sequenceLogprobs, toTensors } from '@alignjs/core-logprob';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import { type Chart, htmlTable, renderReport, textTable } from '@alignjs/eval';
import {
  type CausalLM,
  generate,
  HfTokenizer,
  loadModel,
  TINY_TASK_WORDS,
  tinyModelDir,
} from '@alignjs/models';
import * as tf from '@tensorflow/tfjs-core';
import { parseTrainConfig } from './config.js';
import type { RewardFn } from './features.js';
import { makeLogger } from './log.js';
import { Trainer, type TrainResult } from './trainer.js';

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
  data: 'pairwise' | 'score' | 'multi';
  config: Record<string, unknown>;
  useReward?: boolean;
}

export const DEMO_OBJECTIVES: DemoObjective[] = [
  { label: 'DPO', name: 'dpo', data: 'pairwise', config: { beta: 0.1 } },
  {
    label: 'UNA',
    name: 'una',
    data: 'score',
    config: { feedback: 'score', beta: 0.1, scoreRange: DEMO_SCORE_RANGE },
  },
  { label: 'RAO', name: 'rao', data: 'multi', config: { beta: 0.1, logZ0: 0 } },
  {
    label: 'Uni-DPO',
    name: 'unidpo',
    data: 'pairwise',
    config: { beta: 2, tauGood: 1, lambda: 0.01 },
  },
  {
    label: 'VAR',
    name: 'var',
    data: 'score',
    config: { lambda: 1, mode: 'cross', lengthNormalized: true },
    useReward: true,
  },
  { label: 'PRO', name: 'pro', data: 'pairwise', config: { beta: 0.1 } },
];

export interface DemoOptions {
  output: string;
  quick?: boolean;
  /** optimizer steps per objective (default 60; 4 with quick) */
  steps?: number;
  objectives?: string[];
  log?: (line: string) => void;
}

export interface DemoRow {
  objective: string;
  winRate: number;
  meanReward: number;
  startReward: number;
  chosenLogpChange: number;
  wallSeconds: number;
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

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : 0;
}

/** Runs the demo; writes data files, per-objective runs, report.html and summary.json under `output`. */
export async function runDemo(o: DemoOptions): Promise<DemoRow[]> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const info = await initBackend();
  const steps = o.steps ?? (o.quick ? 4 : 60);
  const samples = o.quick ? 2 : 4;
  const evalSamples = o.quick ? 1 : 4;
  const maxNew = 24;
  await mkdir(o.output, { recursive: true });
  const tok = await HfTokenizer.fromDir(tinyModelDir());
  const start = await loadModel(tinyModelDir());
  const W = TINY_TASK_WORDS;
  const prompts = W.subjects.flatMap((s) => W.prompts.map((p) => p.replace('{s}', s)));
  const evalPrompts = prompts.filter((_, i) => i % 3 === 2).slice(0, o.quick ? 4 : 12);
  const trainPrompts = prompts.filter((_, i) => i % 3 !== 2).slice(0, o.quick ? 8 : 24);
  log(
    `alignjs demo on ${info.backend}: sampling ${samples} answers for ${trainPrompts.length} prompts from the tiny model`,
  );
  const answers = sampleAnswers(start, tok, trainPrompts, samples, 1, maxNew);
  const scored = trainPrompts.map((p, i) => answers[i]!.map((a) => ({ a, r: demoReward(p, a) })));
  // The data files, in TRL's schemas.
  const pairwise = scored.flatMap((s, i) => {
    const sorted = [...s].sort((x, y) => y.r - x.r);
    const best = sorted[0]!;
    const worst = sorted.at(-1)!;
    return best.r > worst.r
      ? [
          {
            prompt: [{ role: 'user', content: trainPrompts[i] }],
            chosen: [{ role: 'assistant', content: best.a }],
            rejected: [{ role: 'assistant', content: worst.a }],
            score_chosen: best.r,
            score_rejected: worst.r,
          },
        ]
      : [];
  });
  const score = scored.flatMap((s, i) =>
    s.map((x) => ({
      prompt: [{ role: 'user', content: trainPrompts[i] }],
      completion: [{ role: 'assistant', content: x.a }],
      score: x.r,
    })),
  );
  const multi = scored.map((s, i) => ({
    prompt: [{ role: 'user', content: trainPrompts[i] }],
    completions: s.map((x) => [{ role: 'assistant', content: x.a }]),
    scores: s.map((x) => x.r),
  }));
  const files = {
    pairwise: join(o.output, 'data', 'pairwise.jsonl'),
    score: join(o.output, 'data', 'score.jsonl'),
    multi: join(o.output, 'data', 'multi.jsonl'),
  };
  await mkdir(join(o.output, 'data'), { recursive: true });
  for (const [k, rows] of Object.entries({ pairwise, score, multi })) {
    await writeFileAtomic(
      files[k as keyof typeof files],
      rows.map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
  }
  if (pairwise.length === 0)
    throw new Error('demo: every sampled pair tied under the true reward; nothing to learn from');
  // The starting model's answers on held-out prompts, and its log-probs of the chosen answers.
  const evalStart = sampleAnswers(start, tok, evalPrompts, evalSamples, 1000, maxNew);
  const chosenRows = pairwise.map((p) => {
    const promptIds = tok.encode(chat(tok, p.prompt[0]!.content!), { addSpecialTokens: false });
    const full = tok.applyChatTemplate([...p.prompt, ...p.chosen] as {
      role: string;
      content: string;
    }[]);
    return {
      prompt: promptIds,
      response: tok.encode(full.slice(chat(tok, p.prompt[0]!.content!).length), {
        addSpecialTokens: false,
      }),
    };
  });
  const chosenLogps = (m: CausalLM) => {
    const batch = toTensors(buildBatch(chosenRows, { padTokenId: tok.padTokenId ?? 0 }));
    const r = sequenceLogprobs(m.call, batch, { noGrad: true });
    const v = Array.from(r.responseSum.dataSync());
    tf.dispose([...Object.values(r), ...Object.values(batch)]);
    return v;
  };
  const startChosen = chosenLogps(start);
  const startRewards = evalPrompts.map((p, i) => evalStart[i]!.map((a) => demoReward(p, a)));
  const rows: DemoRow[] = [];
  const charts: Chart[] = [];
  const runs: Record<string, TrainResult> = {};
  const chosen = DEMO_OBJECTIVES.filter((d) => !o.objectives || o.objectives.includes(d.name));
  for (const d of chosen) {
    const t0 = performance.now();
    const out = join(o.output, 'runs', d.name);
    const config = parseTrainConfig(
      {
        model: 'builtin:tiny',
        train: files[d.data],
        objective: { name: d.name, config: d.config },
        output: out,
        learningRate: 1e-3,
        batchSize: 8,
        maxSteps: steps,
        schedule: 'constant',
        seed: 7,
        maxLength: 96,
        maxPromptLength: 32,
        scoreRange: DEMO_SCORE_RANGE,
      },
      `demo ${d.name}`,
    );
    const trainer = new Trainer(config, {
      logger: makeLogger(join(out, 'metrics.jsonl'), 'quiet'),
      reward: d.useReward ? demoReward : undefined,
    });
    const result = await trainer.train();
    runs[d.name] = result;
    const evalAligned = sampleAnswers(trainer.policy!, tok, evalPrompts, evalSamples, 1000, maxNew);
    let wins = 0;
    let n = 0;
    const rewards: number[] = [];
    evalPrompts.forEach((p, i) => {
      evalAligned[i]!.forEach((a, k) => {
        const r = demoReward(p, a);
        rewards.push(r);
        const r0 = startRewards[i]![k]!;
        wins += r > r0 ? 1 : r === r0 ? 0.5 : 0;
        n++;
      });
    });
    const aligned = chosenLogps(trainer.policy!);
    rows.push({
      objective: d.label,
      winRate: wins / n,
      meanReward: mean(rewards),
      startReward: mean(startRewards.flat()),
      chosenLogpChange: mean(aligned.map((v, i) => v - startChosen[i]!)),
      wallSeconds: (performance.now() - t0) / 1000,
    });
    charts.push({
      title: `${d.label}: loss`,
      series: [{ name: 'loss', points: result.history.map((h) => [h.step, h.loss]) }],
    });
    const m = (k: string) =>
      result.history
        .filter((h) => h.metrics[k] !== undefined)
        .map((h) => [h.step, h.metrics[k]!] as [number, number]);
    const rewardSeries = ['rewards/chosen', 'rewards/rejected', 'rewards/margins']
      .map((k) => ({ name: k, points: m(k) }))
      .filter((s) => s.points.length);
    if (rewardSeries.length)
      charts.push({ title: `${d.label}: implicit rewards`, series: rewardSeries });
    const logpSeries = ['logps/chosen', 'logps/rejected', 'logps/policy']
      .map((k) => ({ name: k, points: m(k) }))
      .filter((s) => s.points.length);
    if (logpSeries.length) charts.push({ title: `${d.label}: log-probs`, series: logpSeries });
    log(
      `${d.label}: ${result.steps} steps in ${result.wallSeconds.toFixed(1)}s, win rate ${(rows.at(-1)!.winRate * 100).toFixed(1)}%`,
    );
    trainer.dispose();
  }
  start.dispose();
  const head = [
    'objective',
    'win rate vs start',
    'mean true reward',
    'start model reward',
    'Δ logp(chosen)',
    'wall s',
  ];
  const body = rows.map((r) => [
    r.objective,
    r.winRate,
    r.meanReward,
    r.startReward,
    r.chosenLogpChange,
    r.wallSeconds,
  ]);
  const table = textTable(head, body);
  const html = renderReport('alignjs demo: the tiny model aligned with each objective', [
    {
      heading: 'Results',
      html: `<p>Backend ${info.backend}; ${steps} optimizer steps per objective (batch 8, lr 1e-3); ${trainPrompts.length} training prompts × ${samples} sampled answers; ${evalPrompts.length} held-out prompts × ${evalSamples} samples judged by the true reward against the starting model (ties count half).</p>${htmlTable(head, body)}`,
      charts: [
        {
          title: 'win rate vs starting model',
          kind: 'bar',
          series: rows.map((r) => ({ name: r.objective, points: [[0, r.winRate]] })),
        },
        {
          title: 'Δ log-prob of chosen answers',
          kind: 'bar',
          series: rows.map((r) => ({ name: r.objective, points: [[0, r.chosenLogpChange]] })),
        },
      ],
    },
    { heading: 'Training curves', charts },
  ]);
  await writeFileAtomic(join(o.output, 'report.html'), html);
  await writeFileAtomic(
    join(o.output, 'summary.json'),
    JSON.stringify({ backend: info.backend, steps, rows }, null, 2),
  );
  await writeFile(join(o.output, 'summary.md'), `${table}\n`);
  log(table);
  log(`report: ${join(o.output, 'report.html')}`);
  return rows;
}
