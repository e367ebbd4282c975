import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectClose } from '@alignjs/core-logprob/testing';
import { lengthControlledWinRate } from '@alignjs/eval/node';
import { makeLogger, NonFiniteError, type TrainConfig, Trainer } from '@alignjs/trainer/node';
import { writeTestData } from '@alignjs/trainer/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { main } from './cli.js';
import { parseRunConfig } from './config-file.js';
import { loadRewardModule } from './reward-module.js';

const out = () => mkdtemp(join(tmpdir(), 'alignjs-train-'));
const quiet = (c: TrainConfig) => makeLogger(join(c.output, 'metrics.jsonl'), 'quiet');

/** Six DPO steps with a checkpoint at step 3: the base config of the resume tests. */
async function resumableRun() {
  const data = await writeTestData(8);
  return {
    train: data.pairwise,
    objective: 'dpo',
    maxSteps: 6,
    batchSize: 2,
    learningRate: 1e-3,
    saveSteps: 3,
    seed: 5,
  };
}

/** Every objective with every data kind it accepts (and the config that kind needs). */
const COMBOS: [string, keyof Awaited<ReturnType<typeof writeTestData>>, Record<string, unknown>][] =
  [
    ['dpo', 'pairwise', {}],
    ['dpo', 'conversational', {}],
    ['dpo', 'implicit', {}],
    ['cdpo', 'pairwise', {}],
    ['robust', 'pairwise', {}],
    ['ipo', 'pairwise', {}],
    ['hinge', 'pairwise', {}],
    ['simpo', 'pairwise', {}],
    ['nca_pair', 'pairwise', {}],
    ['kto', 'binary', {}],
    ['unidpo', 'pairwise', {}],
    ['una', 'pairwise', { feedback: 'pairwise' }],
    ['una', 'binary', { feedback: 'binary' }],
    ['una', 'score', { feedback: 'score', scoreRange: [0, 5] }],
    ['rao', 'multi', {}],
    ['rao', 'pairwise', {}],
    ['rao', 'score', {}],
    ['var', 'score', { mode: 'diagonal' }],
    ['var', 'pairwise', { mode: 'diagonal' }],
    ['pro', 'pairwise', {}],
    ['pro', 'binary', { feedback: 'binary' }],
    ['pro', 'multi', { feedback: 'scalar', scoreRange: [0, 5] }],
  ];

describe('end to end through the CLI on the built-in model', () => {
  it('runs a few steps of every objective from every data kind it accepts', async () => {
    const data = await writeTestData(6);
    for (const [name, kind, config] of COMBOS) {
      const dir = await out();
      const cfgPath = join(dir, 'run.json');
      await writeFile(
        cfgPath,
        JSON.stringify({
          train: data[kind],
          objective: { name, config },
          output: dir,
          maxSteps: 2,
          batchSize: 4,
          learningRate: 1e-3,
        }),
      );
      const code = await main(['train', '--config', cfgPath]);
      expect(code, `${name} on ${kind}`).toBe(0);
      const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const steps = lines.filter((l) => l.event === 'step');
      expect(steps.length, `${name} on ${kind}`).toBe(2);
      expect(
        steps.every((s) => Number.isFinite(s.loss)),
        `${name} on ${kind}`,
      ).toBe(true);
      const files = await readdir(join(dir, 'final'));
      expect(files).toContain('model.safetensors');
      expect(files).toContain('tokenizer.json');
    }
  });

  it('each objective’s loss falls on an overfit batch', async () => {
    const data = await writeTestData(4);
    const seen = new Set<string>();
    for (const [name, kind, config] of COMBOS) {
      if (seen.has(name)) continue;
      seen.add(name);
      const dir = await out();
      const cfg = parseRunConfig({
        train: data[kind],
        objective: { name, config },
        output: dir,
        maxSteps: 12,
        batchSize: 4,
        learningRate: 3e-3,
        schedule: 'constant',
      });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      const r = await t.train();
      t.dispose();
      // The 4-example dataset is one batch: compare the first and last steps' losses.
      const first = r.history[0]!.loss;
      const last = r.history.at(-1)!.loss;
      expect(last, `${name}: ${first} → ${last}`).toBeLessThan(first);
    }
  });
});

describe('checkpoints', () => {
  it('resuming continues with exactly the losses the uninterrupted run produced', async () => {
    const base = await resumableRun();
    const full = parseRunConfig({ ...base, output: await out() });
    const a = new Trainer(full, { logger: quiet(full) });
    const ra = await a.train();
    a.dispose();
    const part = parseRunConfig({ ...base, output: await out() });
    const b = new Trainer(part, { logger: quiet(part) });
    const rb = await b.train({ resumeFrom: join(full.output, 'checkpoint-3') });
    b.dispose();
    expect(rb.history.map((h) => h.loss)).toEqual(ra.history.map((h) => h.loss));
    expect(rb.history.slice(3).map((h) => h.step)).toEqual([4, 5, 6]);
  });

  it('a crash while writing a checkpoint leaves the previous checkpoint loadable', async () => {
    const data = await writeTestData(4);
    const cfg = parseRunConfig({
      train: data.pairwise,
      objective: 'dpo',
      maxSteps: 2,
      batchSize: 2,
      learningRate: 1e-3,
      output: await out(),
    });
    const t = new Trainer(cfg, { logger: quiet(cfg) });
    await t.train();
    const before = await readdir(cfg.output);
    expect(before).toContain('checkpoint-2');
    // An optimizer whose state was freed makes the write fail halfway (weights already written).
    const { AdamW } = await import('@alignjs/trainer/node');
    const broken = new AdamW(t.policy!.trainableVariables(), {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
    });
    broken.dispose();
    await expect(
      t.saveCheckpoint(broken, {
        step: 3,
        epoch: 0,
        batchInEpoch: 0,
        history: [],
        evalHistory: [],
      }),
    ).rejects.toThrow();
    const after = await readdir(cfg.output);
    expect(after).not.toContain('checkpoint-3');
    t.dispose();
    const resumed = new Trainer(
      { ...cfg, maxSteps: 3, output: await out() },
      { logger: quiet(cfg) },
    );
    const r = await resumed.train({ resumeFrom: join(cfg.output, 'checkpoint-2') });
    expect(r.steps).toBe(3);
    resumed.dispose();
  });
});

describe('guards and errors', () => {
  it('stops on a non-finite loss, naming the step and the last finite metrics', async () => {
    const data = await writeTestData(4);
    const cfg = parseRunConfig({
      train: data.pairwise,
      objective: { name: 'dpo', config: { beta: 1e30 } },
      maxSteps: 3,
      batchSize: 2,
      learningRate: 1e-3,
      output: await out(),
    });
    const t = new Trainer(cfg, { logger: quiet(cfg) });
    const err = await t.train().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as Error).message).toMatch(
      /non-finite loss or gradient at step \d+; stopped without applying it/,
    );
    t.dispose();
  });

  it('bad configs and data are one clear message, no stack', async () => {
    const data = await writeTestData(2);
    const dir = await out();
    const tensorsBefore = tf.memory().numTensors;
    const write = async (cfg: unknown) => {
      const p = join(dir, `c${Math.random()}.json`);
      await writeFile(p, JSON.stringify(cfg));
      return p;
    };
    await expect(
      main([
        'train',
        '--config',
        await write({ train: data.binary, objective: 'dpo', output: dir }),
      ]),
    ).rejects.toThrow(
      /the data is binary \{prompt, completion, label\}, but objective 'dpo' needs pairwise \{prompt, chosen, rejected\}/,
    );
    await expect(
      main([
        'train',
        '--config',
        await write({ train: data.pairwise, objective: 'dpo', output: dir, batchSize: 0 }),
      ]),
    ).rejects.toThrow(/field 'batchSize' must be an integer >= 1, got 0/);
    await expect(
      main([
        'train',
        '--config',
        await write({ train: data.pairwise, objective: 'dpoo', output: dir }),
      ]),
    ).rejects.toThrow(/unknown objective 'dpoo'; available: dpo, cdpo/);
    await expect(
      main([
        'train',
        '--config',
        await write({
          train: data.pairwise,
          objective: { name: 'dpo', config: { beta: -1 } },
          output: dir,
        }),
      ]),
    ).rejects.toThrow(/dpo config: field 'beta' must be a number > 0, got -1/);
    await expect(
      main(['train', '--config', await write({ objective: 'dpo', output: dir })]),
    ).rejects.toThrow(/field 'train' is required/);
    await expect(main(['train'])).rejects.toThrow(/train needs --config FILE/);
    const yaml = join(dir, 'bad.yaml');
    await writeFile(yaml, 'train: [unclosed');
    await expect(main(['train', '--config', yaml])).rejects.toThrow(/bad.yaml: not valid YAML/);
    // every refusal comes before a model is loaded: nothing left on the device
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });
});

describe('reward models', () => {
  it('train-rm learns the pairs, saves a Hugging Face directory that loads back, and feeds VAR’s cross mode', async () => {
    const data = await writeTestData(8);
    const dir = await out();
    const cfgPath = join(dir, 'rm.json');
    await writeFile(
      cfgPath,
      JSON.stringify({
        train: data.pairwise,
        eval: data.pairwise,
        output: dir,
        maxSteps: 25,
        batchSize: 8,
        learningRate: 3e-3,
      }),
    );
    expect(await main(['train-rm', '--config', cfgPath])).toBe(0);
    const final = join(dir, 'final');
    const config = JSON.parse(await readFile(join(final, 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['LlamaForSequenceClassification']);
    expect(config.num_labels).toBe(1);
    const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.event === 'step');
    expect(steps.at(-1).loss).toBeLessThan(steps[0].loss);
    expect(lines.find((l) => l.event === 'eval')['rm/accuracy']).toBeGreaterThan(0.5);
    const { rewardFnFromModel } = await import('@alignjs/trainer/node');
    const rm = await rewardFnFromModel(final);
    expect(Number.isFinite(rm.reward('Tell me about the cat.', 'The cat is happy.'))).toBe(true);
    rm.dispose();
    // The same reward model as a local judge (no server).
    const { rewardModelJudge } = await import('./reward-module.js');
    const { annotateLocal } = await import('@alignjs/eval/node');
    const j = await rewardModelJudge(final);
    const ann = await annotateLocal(
      {
        instructions: ['Tell me about the cat.'],
        outputs: ['The cat is happy.'],
        references: ['The cat is sad.'],
        generator: 'm',
        referenceGenerator: 'r',
      },
      j.prefer,
    );
    expect([1, 1.5, 2]).toContain(ann.annotations[0]!.preference);
    j.dispose();
    const run = await out();
    const cfg = parseRunConfig({
      train: data.score,
      objective: { name: 'var', config: { mode: 'cross' } },
      rewardModel: final,
      output: run,
      maxSteps: 2,
      batchSize: 3,
      learningRate: 1e-3,
    });
    const t = new Trainer(cfg, { logger: quiet(cfg) });
    const r = await t.train();
    expect(r.steps).toBe(2);
    t.dispose();
  });
});

describe('online UNA', () => {
  it('samples from the current policy, scores with a reward module, and raises the reward', async () => {
    const data = await writeTestData(8);
    const dir = await out();
    const module = join(dir, 'reward.mjs');
    // A rule the tiny model can learn: pleasant words up, unpleasant words down.
    await writeFile(
      module,
      `const pos = ['happy','bright','kind','warm','lovely','calm','sweet','gentle'];
const neg = ['sad','dark','cold','angry','dull','noisy','bitter','rough'];
export function reward(prompt, response) {
  const w = response.toLowerCase().match(/[a-z]+/g) ?? [];
  return Math.max(-3, Math.min(3, w.filter((x) => pos.includes(x)).length - w.filter((x) => neg.includes(x)).length));
}\n`,
    );
    const cfg = parseRunConfig({
      train: data.pairwise,
      objective: { name: 'una', config: { feedback: 'score', beta: 1, scoreRange: [-3, 3] } },
      rewardModule: module,
      online: { samplesPerPrompt: 2, maxNewTokens: 16, temperature: 1 },
      output: dir,
      maxSteps: 30,
      batchSize: 4,
      learningRate: 0.001,
      schedule: 'constant',
    });
    // the library takes the function; the CLI loads `rewardModule` (commands/train.ts)
    await expect(new Trainer(cfg, { logger: quiet(cfg) }).setup()).rejects.toThrow(
      /'rewardModule' .* is loaded by the alignjs CLI; in code, pass the function/,
    );
    const t = new Trainer(cfg, { logger: quiet(cfg), reward: await loadRewardModule(module) });
    const r = await t.train();
    t.dispose();
    const rewards = r.history.map((h) => h.metrics['online/reward_mean']!);
    expect(rewards.every(Number.isFinite)).toBe(true);
    const first = rewards.slice(0, 10).reduce((s, v) => s + v, 0) / 10;
    const last = rewards.slice(-10).reduce((s, v) => s + v, 0) / 10;
    console.log(
      `online UNA: mean sampled reward ${first.toFixed(3)} (steps 1–10) → ${last.toFixed(3)} (steps 21–30)`,
    );
    expect(last).toBeGreaterThan(first);
    expect(() => parseRunConfig({ train: 'x', objective: 'una', output: dir, online: {} })).toThrow(
      /'online' needs a reward source/,
    );
  });
});

describe('generate and judge through the CLI', () => {
  it('writes model_outputs.json, judges it against a reference on a loopback judge, and writes the leaderboard', async () => {
    const { createServer } = await import('node:http');
    const dir = await out();
    await writeFile(
      join(dir, 'instructions.json'),
      JSON.stringify([
        { instruction: 'Tell me about the cat.' },
        { instruction: 'Describe the dog.' },
      ]),
    );
    expect(
      await main([
        'generate',
        '--model',
        'builtin:tiny',
        '--instructions',
        join(dir, 'instructions.json'),
        '--output',
        join(dir, 'model_outputs.json'),
        '--max-tokens',
        '12',
      ]),
    ).toBe(0);
    const outputs = JSON.parse(await readFile(join(dir, 'model_outputs.json'), 'utf8'));
    expect(outputs.map((o: { instruction: string }) => o.instruction)).toEqual([
      'Tell me about the cat.',
      'Describe the dog.',
    ]);
    await writeFile(
      join(dir, 'reference.json'),
      JSON.stringify(
        outputs.map((o: { instruction: string }) => ({
          instruction: o.instruction,
          output: 'No idea.',
          generator: 'ref',
        })),
      ),
    );
    // A judge that always prefers answer M.
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'M' } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const args = [
        'judge',
        '--model-outputs',
        join(dir, 'model_outputs.json'),
        '--reference-outputs',
        join(dir, 'reference.json'),
        '--base-url',
        `http://127.0.0.1:${port}/v1`,
        '--judge-model',
        'm',
        '--output',
        dir,
      ];
      expect(await main(args)).toBe(0);
      const annotations = JSON.parse(await readFile(join(dir, 'annotations.json'), 'utf8'));
      expect(annotations).toHaveLength(2);
      // "M" is the second answer shown: the model when not switched, the reference when switched.
      for (const a of annotations) expect(a.preference).toBe(a.switched ? 1 : 2);
      const csv = await readFile(join(dir, 'leaderboard.csv'), 'utf8');
      expect(csv.split('\n')[0]).toBe(
        ',win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,avg_length,length_controlled_winrate,lc_standard_error',
      );
      // With AlpacaEval's df_gamed.csv the leaderboard carries the LC fit and says so.
      const dfGamed = fileURLToPath(
        new URL('../../../../shared/data/alpaca-lc/df_gamed.csv', import.meta.url),
      );
      expect(
        await main([...args, '--df-gamed', dfGamed, '--glm', 'length_controlled_minimal']),
      ).toBe(0);
      const [head, row] = (await readFile(join(dir, 'leaderboard.csv'), 'utf8')).split('\n');
      const cols = head!.split(',');
      expect(cols.at(-1)).toBe('length_controlled_method');
      const values = row!.split(',');
      const lc = lengthControlledWinRate(annotations, {
        dfGamed,
        glm: 'length_controlled_minimal',
      });
      expect(Number(values[cols.indexOf('length_controlled_winrate')])).toBeCloseTo(
        lc.length_controlled_winrate,
        9,
      );
      expect(values.at(-1)).toBe(`length_controlled_minimal fit (C ${lc.C})`);
    } finally {
      server.close();
    }
  });
});

describe('harness through the CLI', () => {
  it('writes lm-eval-layout results for a local task file; a missing external harness is a clear error', async () => {
    const dir = await out();
    const docs = join(import.meta.dirname, '..', '..', 'eval', 'fixtures', 'tasks', 'arc.jsonl');
    expect(
      await main([
        'harness',
        '--model',
        'builtin:tiny',
        '--task',
        'arc_easy',
        '--docs',
        docs,
        '--output',
        join(dir, 'results.json'),
      ]),
    ).toBe(0);
    const r = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8'));
    expect(Object.keys(r.results.arc_easy)).toEqual(
      expect.arrayContaining(['alias', 'acc,none', 'acc_stderr,none', 'acc_norm,none']),
    );
    expect(r['n-samples'].arc_easy).toEqual({ original: 3, effective: 3 });
    const { isInstalled } = await import('@alignjs/eval/node');
    if (!isInstalled('lm_eval'))
      await expect(
        main(['harness', '--external', 'lm_eval', '--task', 'arc_easy', '--output', dir]),
      ).rejects.toThrow(/lm_eval is not installed/);
    await expect(main(['harness', '--external', 'nope'])).rejects.toThrow(
      /--external must be lm_eval or alpaca_eval/,
    );
  });
});

/**
 * The optimizers this backend runs: `FusedAdamW` (TensorFlow's fused kernel) only on
 * tensorflow; elsewhere its refusal is tested below.
 */
async function optimizers() {
  const { AdamW, FusedAdamW, HostAdamW } = await import('@alignjs/trainer/node');
  return tf.getBackend() === 'tensorflow' ? [AdamW, HostAdamW, FusedAdamW] : [AdamW, HostAdamW];
}

/** A 2×2 and a length-3 variable: optimizers over more than one shape. */
const twoVariables = () => [
  tf.variable(
    tf.tensor2d([
      [0.5, -1],
      [2, 0.1],
    ]),
  ),
  tf.variable(tf.tensor1d([0.3, -0.7, 1.1])),
];

describe('optimizers', () => {
  it('AdamW, HostAdamW (and FusedAdamW on tensorflow) follow torch.optim.AdamW (float64 oracle, weight decay on)', async () => {
    // ε as TRL sets it, and one large enough that its place in the update shows
    for (const eps of [1e-8, 0.3]) {
      const o = { beta1: 0.9, beta2: 0.99, eps, weightDecay: 0.1 };
      const lr = 0.05;
      const w0 = [0.5, -1, 2, 0.1];
      const gradAt = (s: number) => [s - 1, -0.5, 0.25 * s, 3];
      // torch.optim.AdamW's documented algorithm: θ ← θ − γλθ; m, v moving averages;
      // θ ← θ − γ·m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
      const theta = [...w0];
      const m = w0.map(() => 0);
      const v = w0.map(() => 0);
      for (let t = 1; t <= 6; t++) {
        const g = gradAt(t);
        for (let k = 0; k < theta.length; k++) {
          theta[k]! -= lr * o.weightDecay * theta[k]!;
          m[k] = o.beta1 * m[k]! + (1 - o.beta1) * g[k]!;
          v[k] = o.beta2 * v[k]! + (1 - o.beta2) * g[k]! ** 2;
          const mh = m[k]! / (1 - o.beta1 ** t);
          const vh = v[k]! / (1 - o.beta2 ** t);
          theta[k]! -= (lr * mh) / (Math.sqrt(vh) + o.eps);
        }
      }
      for (const Opt of await optimizers()) {
        const w = tf.variable(tf.tensor1d(w0));
        const opt = new Opt([w], o);
        for (let t = 1; t <= 6; t++) {
          const g = tf.tensor1d(gradAt(t));
          opt.apply([g], lr);
          g.dispose();
        }
        expectClose(w.dataSync(), theta, { atol: 1e-6, label: `${Opt.name} ε ${eps}` });
        opt.dispose();
        w.dispose();
      }
    }
  });

  it('gradScale multiplies the gradient before the update (the loop’s averaging and clipping)', async () => {
    // Adam is scale-invariant but for ε: a large ε makes an ignored scale show
    const o = { beta1: 0.9, beta2: 0.99, eps: 0.5, weightDecay: 0.1 };
    for (const Opt of await optimizers()) {
      // two variables of different shapes: the flat device buffers must split them back
      const mk = twoVariables;
      const [a, b] = [mk(), mk()];
      const [scaled, plain] = [new Opt(a, o), new Opt(b, o)];
      for (let s = 1; s <= 4; s++) {
        const g = [
          tf.tensor2d([
            [s, -1],
            [0.5, 2],
          ]),
          tf.tensor1d([0.1 * s, -0.2, 3]),
        ];
        const g3 = g.map((t) => tf.mul(t, 0.3));
        scaled.apply(g, 0.01, 0.3);
        plain.apply(g3, 0.01);
        tf.dispose([...g, ...g3]);
      }
      for (const [i, v] of a.entries())
        expectClose(v.dataSync(), Array.from(b[i]!.dataSync()), { atol: 1e-6, label: Opt.name });
      // moments come back per variable, in the variables' sizes
      expect(scaled.moments().m.map((x) => x.length)).toEqual([4, 3]);
      scaled.dispose();
      plain.dispose();
      tf.dispose([...a, ...b]);
    }
  });

  it('AdamW in segments (packed, split, exactly full) equals HostAdamW; moments round-trip and leak nothing', async () => {
    const { AdamW, HostAdamW } = await import('@alignjs/trainer/node');
    // segments of ≤ 64 elements: [40] + [10] packed together, the 150-element matrix split
    // into three segments of 50, [7] alone, then a variable of exactly 64
    const limit = 64;
    const shapes = [[40], [10], [15, 10], [7], [8, 8]];
    const sizes = shapes.map((s) => s.reduce((x, y) => x * y, 1));
    const mk = () => shapes.map((s, i) => tf.variable(tf.randomUniform(s, -1, 1, 'float32', i)));
    const [a, b, c] = [mk(), mk(), mk()];
    const o = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 };
    const before = tf.memory().numTensors;
    const [dev, host] = [new AdamW(a, o, limit), new HostAdamW(b, o)];
    const grads = shapes.map((s, i) => tf.randomUniform(s, -1, 1, 'float32', 10 + i));
    const start = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      dev.apply(grads, 0.01, 0.5);
      host.apply(grads, 0.01, 0.5);
    }
    // every segment's temporaries freed: only the variables and moments remain
    expect(tf.memory().numTensors).toBe(start);
    for (const [i, v] of a.entries()) {
      expect(v.shape).toEqual(shapes[i]);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(v, b[i]!))).dataSync()[0]!);
      expect(diff, `variable ${i}`).toBeLessThan(1e-6);
    }
    // the moments come back per variable and equal the host optimizer's
    const { m, v } = dev.moments();
    expect(m.map((x) => x.length)).toEqual(sizes);
    for (const [i, x] of m.entries()) {
      expectClose(x, Array.from(host.m[i]!), { atol: 1e-6, label: `m ${i}` });
      expectClose(v[i]!, Array.from(host.v[i]!), { atol: 1e-6, label: `v ${i}` });
    }
    // a fresh AdamW (another segment size) given the moments continues exactly like the original
    for (const [i, w] of c.entries()) w.assign(a[i]!);
    const resumed = new AdamW(c, o, 100);
    resumed.setMoments(m, v);
    resumed.step = dev.step;
    dev.apply(grads, 0.01);
    resumed.apply(grads, 0.01);
    for (const [i, w] of c.entries())
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(w, a[i]!))).dataSync()[0]!)).toBe(0);
    // wrong sizes are refused before anything is assigned
    expect(() => resumed.setMoments(m.slice(0, 2), v)).toThrow(
      /variable 2 has the wrong size \(m\)/,
    );
    for (const opt of [dev, host, resumed]) opt.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...a, ...b, ...c]);
  });

  it('learning-rate schedules match transformers’ (warm-up, linear, cosine, constant)', async () => {
    const { learningRateAt } = await import('@alignjs/trainer/node');
    const at = (schedule: 'constant' | 'linear' | 'cosine', step: number) =>
      learningRateAt(step, { learningRate: 2, schedule, warmupSteps: 2, totalSteps: 10 });
    // Warm-up: lr·step/warmup; then linear lr·(total − step)/(total − warmup),
    // cosine lr·½(1 + cos(π·progress)), constant lr.
    expect([0, 1, 2].map((s) => at('linear', s))).toEqual([0, 1, 2]);
    expect(at('linear', 6)).toBeCloseTo(1, 12);
    expect(at('linear', 10)).toBe(0);
    expect(at('cosine', 6)).toBeCloseTo(1, 12);
    expect(at('cosine', 4)).toBeCloseTo(1 + Math.cos(Math.PI / 4), 12);
    expect(at('constant', 9)).toBe(2);
    expect(at('constant', 1)).toBe(1);
  });

  it('HostAdamW makes the same updates as the device AdamW', async () => {
    const { AdamW, HostAdamW } = await import('@alignjs/trainer/node');
    const mk = twoVariables;
    const a = mk();
    const b = mk();
    const o = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 };
    const dev = new AdamW(a, o);
    const host = new HostAdamW(b, o);
    for (let s = 0; s < 5; s++) {
      const g = [
        tf.tensor2d([
          [s, -1],
          [0.5, 2],
        ]),
        tf.tensor1d([0.1 * s, -0.2, 3]),
      ];
      dev.apply(g, 0.01);
      host.apply(g, 0.01);
      tf.dispose(g);
    }
    a.forEach((v, i) => {
      const x = Array.from(v.dataSync());
      const y = Array.from(b[i]!.dataSync());
      x.forEach((xv, k) => {
        expect(Math.abs(xv - y[k]!)).toBeLessThan(1e-6);
      });
    });
    dev.dispose();
    tf.dispose([...a, ...b]);
  });

  it('optim: adamw_host trains like adamw_torch, and checkpoints resume across the two', async () => {
    const base = await resumableRun();
    const run = async (optim: string, resumeFrom?: string) => {
      const cfg = parseRunConfig({ ...base, optim, output: await out() });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      const r = await t.train(resumeFrom ? { resumeFrom } : {});
      t.dispose();
      const chosen = (await readFile(join(cfg.output, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event?: string; optim?: string })
        .find((e) => e.event === 'optimizer')?.optim;
      return { losses: r.history.map((h) => h.loss), output: cfg.output, chosen };
    };
    const dev = await run('adamw_torch');
    const host = await run('adamw_host');
    expect([dev.chosen, host.chosen]).toEqual(['adamw_torch', 'adamw_host']);
    // The same AdamW in float32 on the device or in JS numbers on the host: equal up to rounding.
    for (const [i, l] of host.losses.entries())
      expect(Math.abs(l - dev.losses[i]!)).toBeLessThan(1e-4);
    // Resume a host run from its own checkpoint: exactly the uninterrupted losses.
    const hostResumed = await run('adamw_host', join(host.output, 'checkpoint-3'));
    expect(hostResumed.losses).toEqual(host.losses);
    // A device-optimizer checkpoint resumed with host moments continues the same run.
    const crossed = await run('adamw_host', join(dev.output, 'checkpoint-3'));
    for (const [i, l] of crossed.losses.entries())
      expect(Math.abs(l - dev.losses[i]!)).toBeLessThan(1e-4);
    // 'auto' keeps a small model's moments on the device: TensorFlow's fused kernel on tensorflow
    const tensorflow = tf.getBackend() === 'tensorflow';
    const auto = await run('auto');
    expect(auto.chosen).toBe(tensorflow ? 'adamw_torch_fused' : 'adamw_torch');
    if (!tensorflow) return;
    // the fused kernel trains like the tfjs ops, and its checkpoints resume exactly, and across
    for (const [i, l] of auto.losses.entries())
      expect(Math.abs(l - dev.losses[i]!)).toBeLessThan(1e-4);
    const fusedResumed = await run('adamw_torch_fused', join(auto.output, 'checkpoint-3'));
    expect(fusedResumed.losses).toEqual(auto.losses);
    const fromDev = await run('adamw_torch_fused', join(dev.output, 'checkpoint-3'));
    for (const [i, l] of fromDev.losses.entries())
      expect(Math.abs(l - dev.losses[i]!)).toBeLessThan(1e-4);
  });

  it('FusedAdamW: TensorFlow’s kernel on tensorflow only; weights assigned from elsewhere are picked up; values others hold stay; nothing leaks', async () => {
    const { FusedAdamW, HostAdamW, resolveOptimizer } = await import('@alignjs/trainer/node');
    const o = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 };
    if (tf.getBackend() !== 'tensorflow') {
      // refused, naming the field and the remedy, before any work (the Trainer checks in setup)
      expect(() => new FusedAdamW(twoVariables(), o)).toThrow(/tensorflow backend.*adamw_torch/);
      expect(() => resolveOptimizer('adamw_torch_fused', tf.getBackend(), 10)).toThrow(
        /field 'optim' is 'adamw_torch_fused'.*use 'adamw_torch' or 'auto'/,
      );
      const cfg = parseRunConfig({
        ...(await resumableRun()),
        optim: 'adamw_torch_fused',
        output: await out(),
      });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      await expect(t.train()).rejects.toThrow(/field 'optim'/);
      t.dispose();
      expect(await readdir(cfg.output)).not.toContain('checkpoint-3');
      return;
    }
    const [a, b] = [twoVariables(), twoVariables()];
    const before = tf.memory().numTensors;
    const [fused, host] = [new FusedAdamW(a, o), new HostAdamW(b, o)];
    const grads = [
      tf.tensor2d([
        [1, -1],
        [0.5, 2],
      ]),
      tf.tensor1d([0.1, -0.2, 3]),
    ];
    const start = tf.memory().numTensors;
    const same = (label: string) => {
      for (const [i, v] of a.entries())
        expectClose(v.dataSync(), Array.from(b[i]!.dataSync()), { atol: 1e-6, label });
    };
    for (let s = 0; s < 3; s++) {
      // a tensor that shares the variable's data keeps its values through the in-place update
      const held = tf.clone(a[0]!);
      const was = Array.from(held.dataSync());
      fused.apply(grads, 0.01, 0.5);
      host.apply(grads, 0.01, 0.5);
      expect(Array.from(held.dataSync())).toEqual(was);
      expect(Array.from(a[0]!.dataSync())).not.toEqual(was);
      held.dispose();
    }
    same('fused vs host');
    // weights assigned from elsewhere (a restore, a reference sync) are where the next step starts
    const outside = tf.tensor1d([5, 6, 7]);
    for (const w of [a[1]!, b[1]!]) (w as tf.Variable).assign(outside);
    outside.dispose();
    fused.apply(grads, 0.01);
    host.apply(grads, 0.01);
    same('after an outside assign');
    // no temporaries left, moments equal the host's and round-trip
    expect(tf.memory().numTensors).toBe(start);
    const { m, v } = fused.moments();
    for (const [i, x] of m.entries()) {
      expectClose(x, Array.from(host.m[i]!), { atol: 1e-6, label: `m ${i}` });
      expectClose(v[i]!, Array.from(host.v[i]!), { atol: 1e-6, label: `v ${i}` });
    }
    const resumed = new FusedAdamW(b, o);
    resumed.setMoments(m, v);
    resumed.step = fused.step;
    for (const [i, w] of b.entries()) (w as tf.Variable).assign(a[i]!);
    fused.apply(grads, 0.01);
    resumed.apply(grads, 0.01);
    for (const [i, w] of b.entries())
      expect(Array.from(w.dataSync())).toEqual(Array.from(a[i]!.dataSync()));
    expect(() => resumed.setMoments(m.slice(0, 1), v)).toThrow(
      /variable 1 has the wrong size \(m\)/,
    );
    // the variables keep their values after the optimizer (whose buffers they share) is gone
    const kept = a.map((w) => Array.from(w.dataSync()));
    for (const opt of [fused, host, resumed]) opt.dispose();
    expect(a.map((w) => Array.from(w.dataSync()))).toEqual(kept);
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...a, ...b]);
  });

  it('bf16: bfloat16 matmuls on tensorflow (losses near float32, its own reference cache); refused elsewhere before any work', async () => {
    const base = { ...(await resumableRun()), saveSteps: 0 };
    if (tf.getBackend() !== 'tensorflow') {
      const cfg = parseRunConfig({ ...base, bf16: true, output: await out() });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      await expect(t.train()).rejects.toThrow(
        /config: field 'bf16' needs the tensorflow backend.*this run is on/,
      );
      t.dispose();
      expect(await readdir(cfg.output)).not.toContain('ref-logps.json');
      return;
    }
    const refCache = join(await out(), 'ref.json');
    const run = async (bf16: boolean) => {
      const cfg = parseRunConfig({ ...base, bf16, refCache, output: await out() });
      const t = new Trainer(cfg, { logger: quiet(cfg) });
      await t.setup();
      const ref = await t.precomputeReference();
      t.dispose();
      const t2 = new Trainer(cfg, { logger: quiet(cfg) });
      const r = await t2.train();
      t2.dispose();
      return { computed: ref.computed, losses: r.history.map((h) => h.loss) };
    };
    const f32 = await run(false);
    const b16 = await run(true);
    // bfloat16 reference log-probs are not the float32 ones: computed afresh, not read back
    expect(f32.computed).toBeGreaterThan(0);
    expect(b16.computed).toBe(f32.computed);
    expect((await run(true)).computed).toBe(0);
    // policy = reference at the start in both precisions: DPO's first loss is ln 2
    expect(b16.losses[0]).toBeCloseTo(Math.LN2, 5);
    let differs = false;
    for (const [i, l] of b16.losses.entries()) {
      expect(Math.abs(l - f32.losses[i]!)).toBeLessThan(2e-2);
      differs ||= l !== f32.losses[i];
    }
    expect(differs).toBe(true);
  });

  it('resolveOptimizer: host moments only on wasm past the heap budget; bad names are a config error', async () => {
    const { resolveOptimizer, WASM_DEVICE_OPTIMIZER_LIMIT } = await import('@alignjs/trainer/node');
    const big = Math.ceil(WASM_DEVICE_OPTIMIZER_LIMIT / 16) + 1;
    expect(resolveOptimizer('auto', 'wasm', big)).toBe('adamw_host');
    expect(resolveOptimizer('auto', 'wasm', big - 2)).toBe('adamw_torch');
    expect(resolveOptimizer('auto', 'cpu', big)).toBe('adamw_torch');
    expect(resolveOptimizer('adamw_host', 'cpu', 10)).toBe('adamw_host');
    expect(resolveOptimizer('auto', 'tensorflow', big)).toBe('adamw_torch_fused');
    expect(resolveOptimizer('adamw_torch', 'tensorflow', 10)).toBe('adamw_torch');
    expect(() =>
      parseRunConfig({ train: 'x', output: 'y', objective: 'dpo', optim: 'sgd' }),
    ).toThrow(/optim/);
  });
});
