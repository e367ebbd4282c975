/**
 * The reference cache is keyed by the reference's weights and the rows' token ids, not by a
 * path: a copied model directory reuses it, a model retrained in place recomputes. A LoRA
 * run's reference is the base with adapters off (no copy of the weights).
 */
import { cp, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addLora, loadModel, saveModel, tinyModelDir } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { makeLogger } from './log.js';
import { scoreRows } from './reference.js';
import { parseRewardTrainConfig, trainRewardModel } from './reward-model.js';
import { testDpoObjective, writeTestData } from './testing.js';
import { Trainer } from './trainer.js';

const tmp = (p: string) => mkdtemp(join(tmpdir(), p));

const dpo = testDpoObjective();

async function precompute(model: string, refCache: string, train: string) {
  const output = await tmp('alignjs-ref-out-');
  const cfg = parseTrainConfig({ model, train, objective: dpo, output, refCache, batchSize: 4 });
  const t = new Trainer(cfg, { logger: makeLogger(undefined, 'quiet') });
  try {
    await t.setup();
    return await t.precomputeReference();
  } finally {
    t.dispose();
  }
}

describe('reference cache keyed by weights', () => {
  it('a copied model reuses the cache; the same path with new weights recomputes', async () => {
    const data = await writeTestData(8);
    const a = join(await tmp('alignjs-model-a-'), 'model');
    await cp(tinyModelDir(), a, { recursive: true });
    const cache = join(await tmp('alignjs-cache-'), 'ref.json');
    const first = await precompute(a, cache, data.pairwise);
    expect(first.computed).toBe(first.rows);
    const before = JSON.parse(await readFile(cache, 'utf8'));
    // a copy elsewhere (a copied checkout): same weights, nothing recomputed
    const b = join(await tmp('alignjs-model-b-'), 'model');
    await cp(a, b, { recursive: true });
    expect((await precompute(b, cache, data.pairwise)).computed).toBe(0);
    // retrained in place: new weights at the same path, every row recomputed
    const m = await loadModel(a);
    const w = m.params.get('model.norm.weight')!;
    w.assign(tf.mul(w, 1.5));
    await saveModel(m, a);
    m.dispose();
    const again = await precompute(a, cache, data.pairwise);
    expect(again.computed).toBe(again.rows);
    const after = JSON.parse(await readFile(cache, 'utf8'));
    expect(after.reference).not.toBe(before.reference);
    const k = Object.keys(after.entries)[0]!;
    expect(before.entries[k]).toBeUndefined();
  });

  it("LoRA: the reference is the base with adapters off, whatever the adapters' values", async () => {
    const base = await loadModel(tinyModelDir());
    const lora = await loadModel(tinyModelDir());
    addLora(lora, { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q_proj', 'v_proj'] }, 1);
    for (const ad of lora.lora.values())
      ad.b.assign(tf.randomNormal(ad.b.shape, 0, 0.5, 'float32', 3));
    const rows = [
      { prompt: [1, 5, 9], response: [12, 7, 2] },
      { prompt: [1, 4], response: [30, 31, 32, 2] },
    ];
    const o = { padTokenId: 0, batchSize: 2 };
    const want = scoreRows(base, rows, o);
    const got = scoreRows(lora, rows, o);
    expect(Array.from(got.sum)).toEqual(Array.from(want.sum));
    expect(Array.from(got.prompt)).toEqual(Array.from(want.prompt));
    // …and the adapters do change the model when on
    const on = scoreRows(
      { ...lora, lora: new Map(), callWithoutAdapters: lora.call } as never,
      rows,
      o,
    );
    expect(Array.from(on.sum)).not.toEqual(Array.from(want.sum));
    base.dispose();
    lora.dispose();
  });
});

describe('reward-model trainer on the shared loop', () => {
  it('checkpoints and resumes exactly: steps 3–4 from checkpoint-2 equal the uninterrupted run', async () => {
    const data = await writeTestData(8);
    const raw = {
      train: data.pairwise,
      maxSteps: 4,
      batchSize: 2,
      gradientAccumulationSteps: 2,
      learningRate: 3e-3,
      warmupSteps: 1,
      saveSteps: 2,
      logSteps: 1,
    };
    const quiet = makeLogger(undefined, 'quiet');
    const a = await tmp('alignjs-rm-a-');
    const full = await trainRewardModel(parseRewardTrainConfig({ ...raw, output: a }), {
      logger: quiet,
    });
    expect(full.steps).toBe(4);
    const b = await tmp('alignjs-rm-b-');
    const resumed = await trainRewardModel(parseRewardTrainConfig({ ...raw, output: b }), {
      logger: quiet,
      resumeFrom: join(a, 'checkpoint-2'),
    });
    expect(resumed.history.map((h) => h.step)).toEqual([1, 2, 3, 4]);
    for (const i of [2, 3]) {
      expect(resumed.history[i]!.loss).toBeCloseTo(full.history[i]!.loss, 5);
      expect(resumed.history[i]!.metrics['rm/accuracy']).toBe(
        full.history[i]!.metrics['rm/accuracy'],
      );
    }
    expect(full.history.at(-1)!.lr).toBeCloseTo(3e-3 * (1 - (3 - 1) / (4 - 1)), 12);
    await expect(
      trainRewardModel(parseRewardTrainConfig({ ...raw, learningRate: 1e-2, output: b }), {
        logger: quiet,
        resumeFrom: join(a, 'checkpoint-2'),
      }),
    ).rejects.toThrow(/made with learningRate = 0.003, this run has 0.01/);
  });
});

describe('Trainer.setup', () => {
  it('runs once: setup() before train() loads the model a single time and leaks nothing', async () => {
    const data = await writeTestData(4);
    const output = await tmp('alignjs-setup-out-');
    const cfg = parseTrainConfig({
      model: 'builtin:tiny',
      train: data.pairwise,
      objective: dpo,
      output,
      batchSize: 4,
      maxSteps: 1,
    });
    const before = tf.memory().numTensors;
    const t = new Trainer(cfg, { logger: makeLogger(undefined, 'quiet') });
    const info = await t.setup();
    const loaded = tf.memory().numTensors;
    expect(loaded).toBeGreaterThan(before);
    // a second call (and train's own) returns the first result without loading again
    expect(await t.setup()).toBe(info);
    expect(tf.memory().numTensors).toBe(loaded);
    const r = await t.train();
    expect(r.history).toHaveLength(1);
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
