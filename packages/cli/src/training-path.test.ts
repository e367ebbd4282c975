/** The training path does what the papers say, and mismatched data fails before any work. */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { truncateExample } from '@alignjs/core-logprob';
import {
  checkSharedFirstToken,
  makeLogger,
  planBatch,
  type TokenizedExample,
  type TrainConfig,
  Trainer,
} from '@alignjs/trainer/node';
import { writeTestData } from '@alignjs/trainer/testing';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from './config-file.js';
import { resolveObjective } from './objectives.js';

const out = () => mkdtemp(join(tmpdir(), 'alignjs-path-'));
const quiet = (c: TrainConfig) => makeLogger(join(c.output, 'metrics.jsonl'), 'quiet');
async function train(raw: Record<string, unknown>) {
  const cfg = parseRunConfig(raw);
  const t = new Trainer(cfg, { logger: quiet(cfg) });
  try {
    return await t.train();
  } finally {
    t.dispose();
  }
}
const jsonl = async (rows: unknown[]) => {
  const f = join(await out(), 'data.jsonl');
  await writeFile(f, rows.map((r) => JSON.stringify(r)).join('\n'));
  return f;
};

describe('RAO: prompts share their first token', () => {
  it('keep_end truncation keeps the first token; a prompt that breaks the rule is refused, naming file and line', () => {
    const t = truncateExample(
      { prompt: [398, 5, 6, 7, 8], response: [9] },
      { maxPromptLength: 3, truncationMode: 'keep_end', keepFirstPromptToken: true },
    );
    expect(t.prompt).toEqual([398, 7, 8]);
    // TRL's plain keep_end (other objectives) is unchanged
    expect(
      truncateExample({ prompt: [398, 5, 6, 7, 8], response: [9] }, { maxPromptLength: 3 }).prompt,
    ).toEqual([6, 7, 8]);
    const ex = (line: number, first: number): TokenizedExample => ({
      kind: 'multi',
      line,
      prompt: [first, 4, 5],
      responses: [[6]],
      scores: [1],
      promptText: '',
      responseTexts: [''],
    });
    expect(() => checkSharedFirstToken([ex(1, 398), ex(29, 220)], 'train.jsonl', 'rao')).toThrow(
      /train.jsonl:29: rao: every prompt must start with the same token .*token 220, line 1 with 398/,
    );
  });

  it('trains with prompts truncated from the end (the first token kept)', async () => {
    const data = await writeTestData(6);
    const r = await train({
      train: data.multi,
      objective: 'rao',
      output: await out(),
      maxSteps: 2,
      batchSize: 3,
      maxPromptLength: 3,
    });
    expect(r.steps).toBe(2);
    expect(r.truncated).toBeGreaterThan(0);
  });
});

describe('VAR uses every completion', () => {
  it('multi data: each (prompt, completion) is a row, cross rows over all of them', () => {
    const e = (line: number, k: number): TokenizedExample => ({
      kind: 'multi',
      line,
      prompt: [1, 2],
      responses: Array.from({ length: k }, (_, j) => [10 + j]),
      scores: Array.from({ length: k }, (_, j) => 0.9 - 0.4 * j),
      promptText: 'p',
      responseTexts: Array.from({ length: k }, (_, j) => `r${j}`),
    });
    const { objective, config } = resolveObjective({ name: 'var', config: {} });
    const plan = planBatch([e(1, 3), e(2, 2)], 'multi', objective.needs(config));
    expect(plan.rows.length).toBe(5);
    expect(plan.crossRows!.length).toBe(25);
    expect(plan.rows.map((r) => r.response[0])).toEqual([10, 11, 12, 10, 11]);
  });
});

describe('UNA mixed feedback', () => {
  it('a file of binary and score records trains UNA mixed; other objectives refuse it', async () => {
    const data = await writeTestData(4);
    const rows = [
      ...(await readFile(data.binary, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
      ...(await readFile(data.score, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ];
    const f = await jsonl(rows);
    const r = await train({
      train: f,
      objective: { name: 'una', config: { feedback: 'mixed' } },
      scoreRange: [0, 5],
      output: await out(),
      maxSteps: 3,
      batchSize: 8,
    });
    expect(r.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    await expect(
      train({ train: f, objective: 'kto', output: await out(), maxSteps: 1 }),
    ).rejects.toThrow(/the data is mixed binary .* and score .*, but objective 'kto' needs binary/);
  });

  it('UNA on scores logs real rewards and log-probs (no flat zeros)', async () => {
    const data = await writeTestData(4);
    const r = await train({
      train: data.score,
      objective: { name: 'una', config: { feedback: 'score' } },
      scoreRange: [0, 5],
      output: await out(),
      maxSteps: 3,
      batchSize: 6,
      learningRate: 1e-2,
    });
    const lp = r.history.map((h) => h.metrics['logps/policy']!);
    expect(lp.every((v) => Number.isFinite(v) && v < 0)).toBe(true);
    expect(new Set(r.history.map((h) => h.metrics['rewards/mean'])).size).toBeGreaterThan(1);
  });
});

describe('mismatched data fails before any work, naming file, line and field, writing nothing', () => {
  it('unidpo without scores, a score outside scoreRange (passed to UNA), VAR without rewards', async () => {
    const data = await writeTestData(4);
    const noScores = await jsonl(
      (await readFile(data.pairwise, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => {
          const { score_chosen: _a, score_rejected: _b, ...rest } = JSON.parse(l);
          return rest;
        }),
    );
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { train: noScores, objective: 'unidpo' },
        new RegExp(
          `${noScores}:\\d+: this objective needs scores: 'score_chosen' and 'score_rejected'`,
        ),
      ],
      [
        {
          train: data.score,
          objective: { name: 'una', config: { feedback: 'score' } },
          scoreRange: [0, 3],
        },
        /field 'score'|outside/,
      ],
      [{ train: data.score, objective: 'pro' }, /needs|pro/],
    ];
    for (const [raw, re] of cases) {
      const dir = join(await out(), 'run');
      await expect(train({ ...raw, output: dir, maxSteps: 1 })).rejects.toThrow(re);
      await expect(readdir(dir), JSON.stringify(raw)).rejects.toThrow(/ENOENT/);
    }
  });
});

describe("KTO's mismatched pairs", () => {
  it('pair prompt i with completion i − 1 (cyclic), as TRL 1.13', () => {
    const e = (k: number): TokenizedExample => ({
      kind: 'binary',
      line: k + 1,
      prompt: [1, 100 + k],
      responses: [[200 + k]],
      label: 1,
      promptText: '',
      responseTexts: [''],
    });
    const { objective, config } = resolveObjective({ name: 'kto', config: {} });
    const plan = planBatch([e(0), e(1), e(2)], 'binary', objective.needs(config));
    expect(plan.rows.slice(3).map((r) => [r.prompt[1], r.response[0]])).toEqual([
      [100, 202],
      [101, 200],
      [102, 201],
    ]);
  });
});
