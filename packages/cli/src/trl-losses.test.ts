/**
 * TRL's loss types through the trainer: the TRL-spelling parser (`loss_type`, `loss_weights`,
 * snake_case fields) against TRL 1.13's own numbers, weighted objectives through the CLI,
 * reference-free runs without a reference model, LD-DPO rows, and TR-DPO reference syncing.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectClose, pairwiseFromRecord } from '@alignjs/core-logprob/testing';
import { loadSafetensors, tinyModelDir } from '@alignjs/models/node';
import type { TokenizedExample } from '@alignjs/trainer/node';
import { makeLogger, planBatch, type TrainConfig, Trainer } from '@alignjs/trainer/node';
import { writeTestData } from '@alignjs/trainer/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { parseRunConfig } from './config-file.js';
import { resolveObjective } from './objectives.js';

const out = () => mkdtemp(join(tmpdir(), 'alignjs-trl-'));
const quiet = (c: TrainConfig) => makeLogger(join(c.output, 'metrics.jsonl'), 'quiet');

interface Golden {
  trainer: string;
  batch: string;
  config: Record<string, unknown>;
  inputs: Record<string, number[]>;
  loss: number;
}
const goldenFile = fileURLToPath(
  new URL('../../loss-dpo/fixtures/trl-goldens.json', import.meta.url),
);

describe("TRL's spelling of the objective", () => {
  it("gives TRL 1.13's loss on every DPO golden (loss_type, loss_weights, snake_case fields)", async () => {
    const cases = (JSON.parse(await readFile(goldenFile, 'utf8')) as { cases: Golden[] }).cases;
    const dpo = cases.filter((g) => g.trainer === 'dpo');
    expect(dpo.length).toBeGreaterThan(60);
    for (const g of dpo) {
      // exactly the DPOConfig fields the golden was made with
      const cfg = parseRunConfig({ train: 'x.jsonl', output: 'o', objective: g.config });
      const { objective, config } = resolveObjective(cfg.objective);
      const inputs = pairwiseFromRecord(g.inputs);
      const r = objective.loss(inputs, config);
      expectClose(r.loss.dataSync()[0]!, g.loss, {
        atol: 1e-5,
        rtol: 1e-5,
        label: `${g.batch} ${JSON.stringify(g.config)}`,
      });
      tf.dispose([r.loss, ...Object.values(inputs).filter((v) => v instanceof tf.Tensor)]);
    }
  });

  it('accepts every spelling and names the field on a mistake', () => {
    const parse = (objective: unknown) =>
      parseRunConfig({ train: 'x.jsonl', output: 'o', objective }).objective;
    expect(parse('sigmoid')).toEqual({ name: 'sigmoid', config: {} });
    expect(parse({ name: 'robust', config: { label_smoothing: 0.2 } })).toEqual({
      name: 'robust',
      config: { labelSmoothing: 0.2 },
    });
    const list = parse([{ name: 'dpo', weight: 0.8 }, { name: 'bco_pair', weight: 0.2 }, 'sft']);
    expect(list.name).toBe('weighted');
    expect((list.config.parts as { weight: number }[]).map((p) => p.weight)).toEqual([0.8, 0.2, 1]);
    const trl = parse({
      loss_type: ['sigmoid', 'robust'],
      loss_weights: [1, 2],
      label_smoothing: 0.1,
    });
    // TRL's defaults and semantics: sigmoid ignores label_smoothing, robust gets it
    expect(trl.config.parts).toEqual([
      {
        name: 'sigmoid',
        weight: 1,
        config: {
          beta: 0.1,
          fDivergenceType: 'reverse_kl',
          fAlphaDivergenceCoef: 0.5,
          useWeighting: false,
          referenceFree: false,
        },
      },
      {
        name: 'robust',
        weight: 2,
        config: {
          beta: 0.1,
          labelSmoothing: 0.1,
          fDivergenceType: 'reverse_kl',
          fAlphaDivergenceCoef: 0.5,
          useWeighting: false,
          referenceFree: false,
        },
      },
    ]);
    expect(() => parse({ loss_type: 'sigmoid', label_smoothing: 0.1 })).toThrow(
      /field 'labelSmoothing' is not used by sigmoid \(TRL 1.13's sigmoid ignores label_smoothing; 'cdpo' is conservative DPO\)/,
    );
    expect(() =>
      parse({ loss_type: ['sigmoid', 'bco_pair'], f_divergence_type: 'js_divergence' }),
    ).toThrow(
      /'fDivergenceType' = "js_divergence" applies to every loss type, but 'bco_pair' does not support it/,
    );
    expect(() => parse({ loss_type: ['sigmoid', 'sft'], loss_weights: [1] })).toThrow(
      /loss_weights has 1 values for 2 loss types/,
    );
    expect(() => parse({ loss_type: 'sigmod' })).toThrow(
      /unknown objective 'sigmod'; available: .*; did you mean 'sigmoid'\?/,
    );
    expect(() => resolveObjective(parse('dop'))).toThrow(
      /unknown objective 'dop'; available: .*; did you mean 'dpo'\?/,
    );
    expect(() =>
      resolveObjective(parse({ name: 'sigmoid', config: { label_smoothing: 0.1 } })),
    ).toThrow(/TRL 1.13's sigmoid loss ignores label_smoothing/);
    expect(() => parse([{ name: 'dpo', weight: -1 }])).toThrow(
      /weight must be a finite number >= 0/,
    );
    expect(() => parse({ name: 'dpo', beta: 0.1 })).toThrow(
      /unknown field 'beta' \(an objective is \{name, config\}/,
    );
  });
});

describe('new objectives and weighted sums train end to end', () => {
  it('every new TRL loss type, ORPO, CPO and a weighted sum run through the CLI', async () => {
    const data = await writeTestData(6);
    const runs: [string, unknown][] = [
      ...['exo_pair', 'bco_pair', 'sppo_hard', 'aot', 'aot_unpaired', 'apo_zero', 'apo_down'].map(
        (n) => [n, n] as [string, unknown],
      ),
      ...['discopop', 'sigmoid_norm', 'sft', 'orpo', 'cpo', 'sigmoid'].map(
        (n) => [n, n] as [string, unknown],
      ),
      [
        'wpo + ld + js',
        {
          name: 'dpo',
          config: { useWeighting: true, ldAlpha: 0.5, fDivergenceType: 'js_divergence' },
        },
      ],
      [
        'list',
        [
          { name: 'dpo', weight: 0.8 },
          { name: 'bco_pair', weight: 0.2 },
          { name: 'sft', weight: 1 },
        ],
      ],
      ['trl', { loss_type: ['sigmoid', 'bco_pair', 'sft'], loss_weights: [0.8, 0.2, 1.0] }],
    ];
    for (const [label, objective] of runs) {
      const dir = await out();
      const cfgPath = join(dir, 'run.json');
      await writeFile(
        cfgPath,
        JSON.stringify({
          train: data.pairwise,
          objective,
          output: dir,
          maxSteps: 2,
          batchSize: 3,
          learningRate: 1e-3,
        }),
      );
      expect(await main(['train', '--config', cfgPath]), label).toBe(0);
      const steps = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .filter((l) => l.event === 'step');
      expect(steps.length, label).toBe(2);
      expect(
        steps.every((s) => Number.isFinite(s.loss)),
        label,
      ).toBe(true);
      if (label === 'list' || label === 'trl') {
        for (const k of ['dpo/loss', 'bco_pair/rewards/margins', 'sft/nll_loss', 'sft/loss'])
          expect(Number.isFinite(steps[0][k]), `${label} ${k}`).toBe(true);
        const parts =
          steps[1]['dpo/loss'] * 0.8 + steps[1]['bco_pair/loss'] * 0.2 + steps[1]['sft/loss'];
        expectClose(steps[1].loss, parts, { atol: 1e-5, label });
      }
      const files = await readdir(dir);
      // reference-free objectives get no reference model and no reference cache
      const free = ['sft', 'orpo', 'cpo'].includes(label);
      expect(files.includes('ref-logps.json'), label).toBe(!free);
    }
  });

  it('a reference-free objective refuses a reference model by name', async () => {
    const data = await writeTestData(4);
    const cfg = parseRunConfig({
      train: data.pairwise,
      objective: 'orpo',
      reference: tinyModelDir(),
      output: await out(),
      maxSteps: 1,
    });
    const t = new Trainer(cfg, { logger: quiet(cfg) });
    await expect(t.setup()).rejects.toThrow(
      /field 'reference' is set, but objective 'orpo' uses no reference model/,
    );
    t.dispose();
  });
});

describe('LD-DPO rows', () => {
  it('weigh tokens past the shared length of each pair, in the cache key too', () => {
    const ex: TokenizedExample = {
      kind: 'pairwise',
      line: 1,
      prompt: [1, 2],
      responses: [
        [5, 6, 7, 8],
        [9, 10],
      ],
      promptText: '',
      responseTexts: ['', ''],
    };
    const { objective, config } = resolveObjective({ name: 'dpo', config: { ldAlpha: 0.25 } });
    const plan = planBatch([ex], 'pairwise', objective.needs(config));
    expect(plan.rows.map((r) => r.tailWeight)).toEqual([
      { after: 2, alpha: 0.25 },
      { after: 2, alpha: 0.25 },
    ]);
    const plain = planBatch(
      [ex],
      'pairwise',
      resolveObjective({ name: 'dpo', config: {} }).objective.needs({} as never),
    );
    expect(plain.rows[0]!.tailWeight).toBeUndefined();
  });
});

describe('TR-DPO reference syncing', () => {
  it('mixes the policy into the reference every refModelSyncSteps, and resumes exactly', async () => {
    const data = await writeTestData(6);
    const base = {
      train: data.pairwise,
      objective: 'dpo',
      maxSteps: 4,
      batchSize: 3,
      learningRate: 5e-3,
      saveSteps: 2,
      syncRefModel: true,
      refModelMixupAlpha: 0.5,
      refModelSyncSteps: 2,
      seed: 3,
    };
    const full = parseRunConfig({ ...base, output: await out() });
    const a = new Trainer(full, { logger: quiet(full) });
    const ra = await a.train();
    a.dispose();
    const initial = await loadSafetensors(join(tinyModelDir(), 'model.safetensors'));
    const policy2 = await loadSafetensors(join(full.output, 'checkpoint-2', 'model.safetensors'));
    const ref2 = await loadSafetensors(join(full.output, 'checkpoint-2', 'reference.safetensors'));
    const policy4 = await loadSafetensors(join(full.output, 'checkpoint-4', 'model.safetensors'));
    const ref4 = await loadSafetensors(join(full.output, 'checkpoint-4', 'reference.safetensors'));
    let checked = 0;
    for (const [name, r2] of ref2) {
      const p2 = policy2.get(name);
      const p0 = initial.get(name);
      if (!p2 || !p0) continue;
      const want2 = Array.from(p2.data, (v, i) => 0.5 * v + 0.5 * Number(p0.data[i]));
      expectClose(r2.data as Float32Array, want2, { atol: 1e-6, label: `${name} @2` });
      const want4 = Array.from(
        policy4.get(name)!.data,
        (v, i) => 0.5 * v + 0.5 * Number(r2.data[i]),
      );
      expectClose(ref4.get(name)!.data as Float32Array, want4, { atol: 1e-6, label: `${name} @4` });
      checked++;
    }
    expect(checked).toBeGreaterThan(3);
    // After a sync the loss uses the new reference: the run differs from one without syncing.
    const noSync = parseRunConfig({ ...base, syncRefModel: false, output: await out() });
    const c = new Trainer(noSync, { logger: quiet(noSync) });
    const rc = await c.train();
    c.dispose();
    expect(rc.history[2]!.loss).not.toBe(ra.history[2]!.loss);
    expect(rc.history[1]!.loss).toBe(ra.history[1]!.loss);
    // Resuming from checkpoint-2 (right after a sync) reproduces the uninterrupted run.
    const part = parseRunConfig({ ...base, output: await out() });
    const b = new Trainer(part, { logger: quiet(part) });
    const rb = await b.train({ resumeFrom: join(full.output, 'checkpoint-2') });
    b.dispose();
    expect(rb.history.map((h) => h.loss)).toEqual(ra.history.map((h) => h.loss));
  });

  it('is refused with LoRA or a reference-free objective, naming the field', async () => {
    const data = await writeTestData(4);
    for (const [extra, msg] of [
      [{ lora: {} }, /'syncRefModel' cannot be combined with 'lora'/],
      [
        { objective: 'sft' },
        /'syncRefModel' needs an objective with a reference model; 'sft' has none/,
      ],
    ] as const) {
      const cfg = parseRunConfig({
        train: data.pairwise,
        objective: 'dpo',
        output: await out(),
        syncRefModel: true,
        ...extra,
      });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      await expect(t.setup()).rejects.toThrow(msg);
      t.dispose();
    }
  });
});
