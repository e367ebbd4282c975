/**
 * bench/train-step: the DPO training step (forward + backward + AdamW on a concatenated
 * chosen/rejected batch, reference log-probs given) on the wasm backend, next to the same
 * architecture, batch and step in PyTorch on CPU (torch 2.13 with MKL from the reference venv
 * tools/setup-reference-python.sh makes, else the system python3's; "skipped: torch missing"
 * otherwise). Also: achieved GFLOP/s against each side's
 * measured matmul ceiling, the reference cache (step time with precomputed reference
 * log-probs vs a reference forward every step), a scaling table of step time vs sequence
 * length and batch size, and judge-client throughput against a loopback server at
 * concurrency 1, 4, 16. Writes bench/results.md and bench/results.json. Every ratio is
 * measured in this one run.
 *
 *   npm run build && npx tsx bench/train-step.ts [--quick]
 *
 * ALIGNJS_BENCH_PYTHON picks the python with torch (default: .venv-refs/bin/python when it is
 * there, else /usr/bin/python3 — Debian's torch has a generic BLAS, slower than MKL's);
 * ALIGNJS_BENCH_TORCH_THREADS sets torch's threads (default: all cores).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildPairwiseBatch,
  initBackend,
  logSigmoid,
  sequenceLogprobs,
  splitPairwise,
  toTensors,
} from '@alignjs/core-logprob';
import { JudgeClient } from '@alignjs/eval/node';
import {
  CausalLM,
  loadModel,
  type ModelConfig,
  matMulFast,
  parseModelConfig,
  tinyModelDir,
} from '@alignjs/models/node';
import { HostAdamW, resolveOptimizer } from '@alignjs/trainer/node';
import * as tf from '@tensorflow/tfjs-core';
import { median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const HERE = dirname(fileURLToPath(import.meta.url));
const VENV_PYTHON = join(HERE, '..', '.venv-refs/bin/python');
const PYTHON =
  process.env.ALIGNJS_BENCH_PYTHON ?? (existsSync(VENV_PYTHON) ? VENV_PYTHON : '/usr/bin/python3');
const TORCH_THREADS = Number(process.env.ALIGNJS_BENCH_TORCH_THREADS ?? 0) || undefined;
const REPEATS = quick ? 2 : 3;
const lines: string[] = [];
const say = (s: string) => {
  console.log(s);
  lines.push(s);
};

function pairs(V: number, B: number, T: number) {
  return Array.from({ length: B }, (_, b) => {
    const row = (k: number) =>
      Array.from({ length: T }, (_, t) => 1 + ((b * 131 + t * 17 + k * 7) % (V - 1)));
    return { prompt: row(0).slice(0, 4), chosen: row(1).slice(4), rejected: row(2).slice(4) };
  });
}

type Batch = ReturnType<typeof toTensors>;

/** The DPO loss of a concatenated chosen/rejected batch, β = 0.1, reference log-probs given. */
function dpoLoss(model: CausalLM, data: Batch, ref: tf.Tensor): tf.Scalar {
  const lp = sequenceLogprobs(model.call, data).responseSum;
  const { chosen, rejected } = splitPairwise(tf.sub(lp, ref));
  return tf.neg(tf.mean(logSigmoid(tf.mul(0.1, tf.sub(chosen, rejected))))) as tf.Scalar;
}

/**
 * One DPO training step as a function (`run`), with its batch and optimizer; `reference`
 * also runs a reference forward inside the step.
 */
function makeStep(
  model: CausalLM,
  reference: CausalLM | undefined,
  B: number,
  T: number,
  hostOptimizer = false,
): { run: () => void; dispose: () => void } {
  const data = toTensors(
    buildPairwiseBatch(pairs(model.config.vocabSize, B, T), { padTokenId: 0 }),
  );
  const vars = model.trainableVariables();
  const opt = hostOptimizer ? undefined : tf.train.adam(1e-5);
  const hostOpt = hostOptimizer
    ? new HostAdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 })
    : undefined;
  const refFixed = tf.randomNormal([2 * B], -40, 5);
  const run = () => {
    if (hostOpt) {
      // Moments on the host: device memory holds only weights, gradients and activations.
      const { value, grads } = tf.variableGrads(() => dpoLoss(model, data, refFixed), vars);
      value.dataSync();
      hostOpt.apply(
        vars.map((v) => grads[v.name]!),
        1e-5,
      );
      tf.dispose([value, ...Object.values(grads)]);
    } else {
      tf.tidy(() => {
        const ref = reference
          ? sequenceLogprobs(reference.call, data, { noGrad: true }).responseSum
          : refFixed;
        opt!.minimize(() => dpoLoss(model, data, ref), true, vars)?.dataSync();
      });
    }
  };
  const dispose = () => {
    opt?.dispose();
    tf.dispose([refFixed, ...Object.values(data)]);
  };
  return { run, dispose };
}

/**
 * Median seconds per call of each function, after one warm-up call each. The functions take
 * turns within every repeat, so drift of a noisy machine hits all of them alike.
 */
function interleaved(runs: (() => void)[], repeats = REPEATS): number[] {
  for (const r of runs) r();
  const times = runs.map(() => [] as number[]);
  for (let i = 0; i < repeats; i++) {
    runs.forEach((r, j) => {
      const t0 = performance.now();
      r();
      times[j]!.push((performance.now() - t0) / 1000);
    });
  }
  return times.map(median);
}

/** Median seconds of one DPO step. */
function dpoStep(model: CausalLM, B: number, T: number, hostOptimizer = false): number {
  const step = makeStep(model, undefined, B, T, hostOptimizer);
  const [s] = interleaved([step.run]);
  step.dispose();
  return s!;
}

/**
 * Weights that take part in a matmul (attention and MLP projections, the LM head); the input
 * embeddings are a lookup. Forward FLOPs per token = 2 · this + the attention products.
 */
function matmulParams(c: ModelConfig): number {
  const E = c.hiddenSize;
  const attn = E * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * E;
  const mlp = (c.architecture === 'gpt2' ? 2 : 3) * E * c.intermediateSize;
  return c.numLayers * (attn + mlp) + c.vocabSize * E;
}

/** FLOPs of one training step (backward = 2 × forward): projections plus QKᵀ and AV at full T×T. */
function stepFlops(c: ModelConfig, rows: number, T: number): number {
  const perToken = 2 * matmulParams(c) + 4 * c.numLayers * T * c.numHeads * c.headDim;
  return 3 * perToken * rows * T;
}

/** Square sizes both sides time for their matmul ceiling (the best of them is reported). */
const CEILING_SIZES = [256, 512, 1024];

/**
 * Best GFLOP/s of a plain square matmul on the tfjs backend. Reads each result outside any
 * tidy: `tf.tidy(() => t.dataSync())` walks the returned array element by element and made an
 * earlier version of this ceiling read 1 GFLOP/s instead of ~20.
 */
function tfjsMatmulGflops(): number {
  let best = 0;
  for (const n of CEILING_SIZES) {
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    const run = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    run();
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) run();
    best = Math.max(best, (5 * 2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9);
    tf.dispose([a, b]);
  }
  return best;
}

/**
 * Before/after of the matmul change, measured here: forward + backward of `x·W` (and of the
 * transposed LM head `h·Eᵀ`) with stock `tf.matMul`, whose gradient and transposed paths hit
 * tfjs-wasm's slow kernel, against `matMulFast`.
 */
function matmulBeforeAfter(c: ModelConfig, rows: number): string[][] {
  const E = c.hiddenSize;
  const cases: [string, number[], number[], boolean][] = [
    [`x·W [${rows}×${E}]·[${E}×${3 * E}]`, [rows, E], [E, 3 * E], false],
    [`h·Eᵀ [${rows}×${E}]·[${c.vocabSize}×${E}]ᵀ`, [rows, E], [c.vocabSize, E], true],
  ];
  return cases.map(([name, sa, sb, tb]) => {
    const a = tf.randomNormal(sa);
    const b = tf.randomNormal(sb);
    const time = (mm: typeof tf.matMul) => {
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(mm(x, y, false, tb)));
      const once = () => {
        const out = g([a, b]);
        for (const t of out) t.dataSync();
        tf.dispose(out);
      };
      once();
      const ts: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const t0 = performance.now();
        once();
        ts.push(performance.now() - t0);
      }
      return median(ts);
    };
    const before = time(tf.matMul);
    const after = time(matMulFast as typeof tf.matMul);
    tf.dispose([a, b]);
    return [name, before.toFixed(1), after.toFixed(1), (before / after).toFixed(2)];
  });
}

/**
 * Kernel time by kernel name over one training step (tf.profile), largest first. Custom-
 * gradient wrappers ("unnamed scope") contain kernels that are also listed on their own, so
 * they are left out of the shares.
 */
async function profileStep(model: CausalLM, B: number, T: number): Promise<string[][]> {
  const data = toTensors(
    buildPairwiseBatch(pairs(model.config.vocabSize, B, T), { padTokenId: 0 }),
  );
  const ref = tf.randomNormal([2 * B], -40, 5);
  const opt = tf.train.adam(1e-5);
  const stepOnce = () =>
    tf.tidy(() => {
      opt.minimize(() => dpoLoss(model, data, ref), false, model.trainableVariables());
    });
  stepOnce();
  const info = await tf.profile(stepOnce);
  const byName = new Map<string, number>();
  for (const k of info.kernels) {
    if (k.name === 'unnamed scope') continue;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byName.set(k.name, (byName.get(k.name) ?? 0) + ms);
  }
  opt.dispose();
  tf.dispose([ref, ...Object.values(data)]);
  const total = [...byName.values()].reduce((s, x) => s + x, 0);
  return [
    ...[...byName.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 6)
      .map(([name, ms]) => [name, ms.toFixed(0), `${((100 * ms) / total).toFixed(0)}%`]),
    ['all kernels', total.toFixed(0), '100%'],
  ];
}

async function judgeThroughput(): Promise<string[][]> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'M' } }] }));
      }, 20),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const rows: string[][] = [];
  for (const c of [1, 4, 16]) {
    const judge = new JudgeClient({ baseUrl: url, model: 'j', concurrency: c, timeoutMs: 5000 });
    const n = 64;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, () => judge.chat([{ role: 'user', content: 'x' }])),
    );
    const s = (performance.now() - t0) / 1000;
    rows.push([String(c), String(n), (n / s).toFixed(1)]);
  }
  server.close();
  return rows;
}

async function main(): Promise<void> {
  const info = await initBackend({ backend: (process.env.ALIGNJS_BACKEND as 'wasm') ?? 'wasm' });
  const results: Record<string, unknown> = { backend: info.backend, quick };
  say(
    `## Training step (bench/train-step) — ${info.backend}, median of ${REPEATS}, ${new Date().toISOString()}\n`,
  );

  // 1. Training step vs PyTorch-CPU: the built-in model's architecture and GPT-2 shapes,
  // random weights on both sides (step time does not depend on the values).
  const torchOk = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const gpt2 = (vocab: number, embd: number, layers: number, heads: number) => ({
    model_type: 'gpt2',
    vocab_size: vocab,
    n_positions: 1024,
    n_embd: embd,
    n_layer: layers,
    n_head: heads,
  });
  const tinyConfig = JSON.parse(
    readFileSync(join(tinyModelDir(), 'config.json'), 'utf8'),
  ) as Record<string, unknown>;
  const shapes = [
    { name: 'built-in tiny (Llama, 2L/64)', config: tinyConfig, pairs: 8, seq: 64 },
    { name: 'GPT-2 mini (4L/256)', config: gpt2(8192, 256, 4, 4), pairs: 2, seq: 64 },
    ...(quick
      ? []
      : [{ name: 'GPT-2 small (12L/768)', config: gpt2(50257, 768, 12, 12), pairs: 1, seq: 32 }]),
  ];
  const ceiling = tfjsMatmulGflops();
  const stepRows: string[][] = [];
  const notes: string[] = [];
  for (const s of shapes) {
    const config = parseModelConfig(s.config);
    const model = CausalLM.random(config, 1);
    // Weights, gradients and Adam's two moments live in the wasm heap, which tfjs-wasm cannot
    // use past ~2 GiB: the trainer's `optim: auto` rule keeps big models' moments on the host.
    const host = resolveOptimizer('auto', info.backend, model.numParameters) === 'adamw_host';
    const tokens = 2 * s.pairs * s.seq;
    const flops = stepFlops(config, 2 * s.pairs, s.seq);
    const ours = dpoStep(model, s.pairs, s.seq, host);
    let torchCol = ['skipped: torch missing', '–', '–'];
    if (torchOk) {
      const p = spawnSync(
        PYTHON,
        [
          join(HERE, 'torch_step.py'),
          JSON.stringify({
            ...s,
            repeats: REPEATS,
            ceilingSizes: CEILING_SIZES,
            threads: TORCH_THREADS,
          }),
        ],
        { encoding: 'utf8' },
      );
      if (p.status === 0) {
        const t = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as {
          step_s: number;
          matmul_gflops: number;
          threads: number;
          params: number;
        };
        if (t.params !== model.numParameters)
          notes.push(
            `${s.name}: PyTorch has ${t.params} parameters, wasm ${model.numParameters} — not the same model.`,
          );
        torchCol = [
          `${(tokens / t.step_s).toFixed(0)} tok/s (${t.threads} threads)`,
          (ours / t.step_s).toFixed(2),
          `${(flops / t.step_s / 1e9).toFixed(1)} / ${t.matmul_gflops.toFixed(1)}`,
        ];
      } else torchCol = [`torch failed: ${p.stderr.split('\n').filter(Boolean).at(-1)}`, '–', '–'];
    }
    stepRows.push([
      `${s.name}${host ? ', Adam moments on the host' : ''}`,
      `${s.pairs}×2×${s.seq}`,
      `${(tokens / ours).toFixed(0)} tok/s`,
      `${(flops / ours / 1e9).toFixed(2)} / ${ceiling.toFixed(1)}`,
      ...torchCol,
    ]);
    model.dispose();
  }
  results.trainStep = { rows: stepRows, notes, ceilingSizes: CEILING_SIZES };
  say('### DPO training step (forward + backward + AdamW)\n');
  say(
    table(
      [
        'model',
        'pairs×2×seq',
        'wasm (1 thread)',
        'wasm GFLOP/s / matmul ceiling',
        'PyTorch-CPU',
        'wasm ÷ torch step time',
        'torch GFLOP/s / ceiling',
      ],
      stepRows,
    ),
  );
  say(
    `\nGFLOP/s count the projections, LM head and attention products (backward = 2 × forward); the ceiling is the best plain square matmul of sizes ${CEILING_SIZES.join(', ')} on each side. Same random-weight architecture on both sides (parameter counts checked).`,
  );
  for (const n of notes) say(`\n**${n}**`);

  // 1b. Where the wasm step's time goes, and the matmul change measured before/after.
  const miniShape = shapes.find((x) => x.name.startsWith('GPT-2 mini'))!;
  const miniConfig = parseModelConfig(miniShape.config);
  const mini = CausalLM.random(miniConfig, 1);
  const prof = await profileStep(mini, miniShape.pairs, miniShape.seq);
  mini.dispose();
  results.profile = prof;
  say(`\n### Kernel time in one GPT-2-mini step (tf.profile, ${info.backend})\n`);
  say(table(['kernel', 'ms', 'share'], prof));
  const ba = matmulBeforeAfter(miniConfig, 2 * miniShape.pairs * miniShape.seq);
  results.matmulBeforeAfter = ba;
  say('\n### Matmul forward + backward: stock `tf.matMul` vs `matMulFast` (GPT-2-mini shapes)\n');
  say(table(['product', 'tf.matMul ms', 'matMulFast ms', 'speed-up'], ba));

  // 2. Reference cache.
  const tiny = await loadModel(tinyModelDir());
  const ref = tiny.clone({ trainable: false });
  const steps = [makeStep(tiny, undefined, 8, 48), makeStep(tiny, ref, 8, 48)];
  const [cached, live] = interleaved(
    steps.map((x) => x.run),
    quick ? 5 : 15,
  ) as [number, number];
  for (const x of steps) x.dispose();
  results.refCache = { cachedStepS: cached, liveStepS: live };
  say(
    `\n### Reference cache (tiny model, 8 pairs × 48 tokens, median of ${quick ? 5 : 15}, interleaved)\n`,
  );
  say(
    table(
      ['reference log-probs', 'step s', 'ratio'],
      [
        ['precomputed', cached.toFixed(3), '1.00'],
        ['forward every step', live.toFixed(3), (live / cached).toFixed(2)],
      ],
    ),
  );

  // 3. Scaling.
  const scale: string[][] = [];
  for (const T of quick ? [32, 64] : [32, 64, 128]) {
    const row = [String(T)];
    for (const B of quick ? [2, 4] : [2, 4, 8]) row.push(dpoStep(tiny, B, T).toFixed(3));
    scale.push(row);
  }
  results.scaling = scale;
  say(
    '\n### Scaling (tiny model): step seconds by sequence length (rows) and pairs per batch (columns)\n',
  );
  say(table(['seq \\ pairs', ...(quick ? ['2', '4'] : ['2', '4', '8'])], scale));
  tiny.dispose();
  ref.dispose();

  // 4. Judge throughput.
  const judge = await judgeThroughput();
  results.judge = judge;
  say('\n### Judge client throughput (loopback server, 20 ms per answer, 64 requests)\n');
  say(table(['concurrency', 'requests', 'requests/s'], judge));

  await recordResult('trainStep', results);
  await writeSection('train-step', lines.join('\n'));
}

await main();
