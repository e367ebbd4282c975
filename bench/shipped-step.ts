/**
 * bench/shipped-step: the training step users run — `alignjs train`'s `Trainer` through its
 * public API, a registered objective (DPO, and UNA to show a new objective costs the same),
 * AdamW, the reference cache — timed per optimizer step from the run's own history
 * (`StepRecord.seconds`: forward, backward, clip, finite guard, update and the step's device
 * reads), median over the steps after a warm-up. Shapes: the built-in tiny model and a
 * GPT-2-mini and GPT-2-small shapes (random weights written as a Hugging Face directory).
 * Every (backend, threads, case) runs in its own process, so peak RSS is that case's: wasm
 * at 1 and 2 XNNPACK threads (ALIGNJS_WASM_THREADS), tensorflow at 1 and 2 intra-op
 * threads (TF_NUM_INTRAOP_THREADS) when tfjs-node is built; TRL at the same threads beside
 * each. Also the optimizer update alone, before (per-variable ops) and after (one flat
 * buffer; host moments fused in one pass). Writes one section of bench/results.md.
 *
 *   npm run build && npx tsx bench/shipped-step.ts [--quick]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { initBackend } from '@alignjs/core-logprob';
import {
  applyRope,
  CausalLM,
  parseModelConfig,
  ropeTables,
  saveModel,
  tinyModelDir,
} from '@alignjs/models/node';
import { AdamW, FusedAdamW, HostAdamW, makeLogger, Trainer } from '@alignjs/trainer/node';
import * as tf from '@tensorflow/tfjs-core';
import { fitScaling, median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const STEPS = Number(process.env.ALIGNJS_BENCH_STEPS ?? 0) || (quick ? 3 : 6);

/** The config parser of the installed packages: @alignjs/cli's (objectives by name). */
async function parser(): Promise<(raw: unknown) => unknown> {
  const cli = (await import('@alignjs/cli')) as { parseRunConfig: (raw: unknown) => unknown };
  return cli.parseRunConfig;
}

const PYTHON =
  process.env.ALIGNJS_REF_PYTHON ?? join(import.meta.dirname, '..', '.venv-refs/bin/python');

type Shape = 'tiny' | 'gpt2-mini' | 'gpt2-small' | 'qwen-0.5b';

interface TrlStep {
  seconds: number;
  min: number;
  max: number;
  tokens_per_s: number;
  peak_rss_mb: number;
}

/** TRL 1.13's DPOTrainer step on the same shape (bench/trl_step.py), or why not. */
function trlStep(
  shape: Shape,
  pairs: number,
  seq: number,
  bf16: boolean,
  threads: number,
  steps: number,
  lora = false,
): TrlStep | string {
  if (!existsSync(PYTHON))
    return 'skipped: no TRL (tools/setup-reference-python.sh makes the venv)';
  const args = [
    join(import.meta.dirname, 'trl_step.py'),
    '--shape',
    shape,
    '--pairs',
    String(pairs),
  ];
  args.push(
    '--seq',
    String(seq),
    '--steps',
    String(steps),
    '--threads',
    String(threads),
    ...(bf16 ? ['--bf16'] : []),
    ...(lora ? ['--lora'] : []),
  );
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `skipped: TRL failed (${(r.stderr ?? '').trim().split('\n').at(-1)})`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TrlStep;
}

/** A model directory of `config` with random weights and the tiny model's tokenizer files. */
async function modelDir(config: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'alignjs-bench-model-'));
  const m = CausalLM.random(parseModelConfig(config), 1);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await saveModel(m, dir);
  m.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(join(tinyModelDir(), f), join(dir, f));
  return dir;
}

/** `pairs` preference rows whose prompt + response tokenize past `seq` tokens (then truncated). */
async function data(pairs: number, seq: number): Promise<string> {
  const words = ['cat', 'dog', 'sun', 'tree', 'happy', 'bright', 'sad', 'dark', 'kind', 'cold'];
  const text = (i: number, k: number) =>
    Array.from({ length: seq }, (_, t) => words[(i * 7 + t * 3 + k) % words.length]).join(' ');
  const file = join(await mkdtemp(join(tmpdir(), 'alignjs-bench-data-')), 'train.jsonl');
  const rows = Array.from({ length: pairs }, (_, i) => ({
    prompt: `Tell me about item ${i}.`,
    chosen: text(i, 1),
    rejected: text(i, 2),
  }));
  await writeFile(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return file;
}

async function shippedStep(
  model: string,
  objective: unknown,
  pairs: number,
  seq: number,
  steps: number,
  lora?: Record<string, unknown>,
  afterStep?: (step: number) => void,
): Promise<{ seconds: number[]; tokens: number; stepPeakRssMb: number }> {
  const parse = await parser();
  const train = await data(pairs, seq);
  const output = await mkdtemp(join(tmpdir(), 'alignjs-bench-run-'));
  const config = parse({
    model,
    train,
    objective,
    output,
    batchSize: pairs,
    maxSteps: 1 + steps,
    epochs: 1 + steps,
    maxLength: seq,
    maxPromptLength: 8,
    learningRate: 1e-5,
    ...(lora ? { lora } : {}),
    // a lever's "before": the optimizer it replaced (the default is 'auto')
    ...(process.env.ALIGNJS_BENCH_OPTIM ? { optim: process.env.ALIGNJS_BENCH_OPTIM } : {}),
    // TRL's default precision (bf16 autocast), the tensorflow backend only
    ...(process.env.ALIGNJS_BENCH_BF16 === '1' ? { bf16: true } : {}),
  }) as ConstructorParameters<typeof Trainer>[0];
  // VmHWM after each optimizer step: the peak of the steps, before the final checkpoint save
  // (TRL's side saves nothing: save_strategy "no")
  let stepPeakRssMb = 0;
  const t = new Trainer(config, {
    logger: makeLogger(undefined, 'quiet'),
    callbacks: {
      onStep: (record) => {
        stepPeakRssMb = peakRssMb();
        afterStep?.(record.step);
      },
    },
  });
  try {
    const r = await t.train();
    return {
      seconds: r.history.slice(1).map((h) => h.seconds),
      tokens: 2 * pairs * seq,
      stepPeakRssMb,
    };
  } finally {
    t.dispose();
    // the run's checkpoints (GPT-2 small: ~1.9 GB a row) and its data file
    await Promise.all([output, dirname(train)].map((d) => rm(d, { recursive: true, force: true })));
  }
}

/**
 * The update before this change, kept here as the baseline: torch.optim.AdamW as a dozen
 * tfjs ops per variable (what `AdamW` did), plus the averaged and clipped gradient copies
 * the loop made.
 */
function perVariableAdamW(vars: tf.Variable[]) {
  const m = vars.map((x) => tf.variable(tf.zerosLike(x), false));
  const v = vars.map((x) => tf.variable(tf.zerosLike(x), false));
  let step = 0;
  return {
    apply(grads: tf.Tensor[], lr: number) {
      step++;
      const [b1, b2] = [0.9, 0.999];
      tf.tidy(() => {
        const avg = grads.map((g) => tf.div(g, 1));
        const norm = tf.sqrt(tf.addN(avg.map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(1, tf.add(norm, 1e-6)));
        vars.forEach((w, i) => {
          const g = tf.mul(avg[i]!, scale);
          const mi = tf.add(tf.mul(m[i]!, b1), tf.mul(g, 1 - b1));
          const vi = tf.add(tf.mul(v[i]!, b2), tf.mul(tf.square(g), 1 - b2));
          m[i]!.assign(mi);
          v[i]!.assign(vi);
          const denom = tf.add(tf.div(tf.sqrt(vi), Math.sqrt(1 - b2 ** step)), 1e-8);
          w.assign(tf.sub(w, tf.mul(tf.div(mi, denom), lr / (1 - b1 ** step))));
        });
      });
    },
    dispose: () => tf.dispose([...m, ...v]),
  };
}

const OPTIMIZERS = [
  'before: per-variable ops',
  'adamw_torch: one flat buffer',
  'adamw_host: fused pass',
  "adamw_torch_fused: TensorFlow's kernel",
] as const;

/** Milliseconds of one update of `vars` (median of 5 after a warm-up), for each optimizer. */
function optimizerTimes(vars: tf.Variable[]): Record<string, number> {
  const grads = vars.map((x) => tf.randomNormal(x.shape, 0, 1e-3));
  const o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const opts: [string, { apply(g: tf.Tensor[], lr: number): void; dispose(): void }][] = [
    [OPTIMIZERS[0], perVariableAdamW(vars)],
    [OPTIMIZERS[1], new AdamW(vars, o)],
    [OPTIMIZERS[2], new HostAdamW(vars, o)],
    ...(tf.getBackend() === 'tensorflow'
      ? [[OPTIMIZERS[3], new FusedAdamW(vars, o)] as [string, FusedAdamW]]
      : []),
  ];
  const out: Record<string, number> = {};
  for (const [name, opt] of opts) {
    const ts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      opt.apply(grads, 1e-5);
      vars[0]!.dataSync();
      if (i > 0) ts.push(performance.now() - t0);
    }
    out[name] = median(ts);
    opt.dispose();
  }
  tf.dispose(grads);
  return out;
}

interface Case {
  name: string;
  shape: Shape;
  objective: unknown;
  pairs: number;
  seq: number;
  steps: number;
  /** LoRA (the run config's `lora`); TRL gets PEFT's LoraConfig of the same */
  lora?: Record<string, unknown>;
  /** backends this case runs on (default: all) */
  backends?: string[];
}

const GPT2_MINI = {
  model_type: 'gpt2',
  vocab_size: 8192,
  n_positions: 1024,
  n_embd: 256,
  n_layer: 4,
  n_head: 4,
};
// transformers' GPT2Config() defaults: 124M parameters
const GPT2_SMALL = {
  model_type: 'gpt2',
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
};
// Qwen2.5-0.5B's config.json: 494M parameters, more than the wasm heap holds
const QWEN_05B = {
  model_type: 'qwen2',
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  hidden_act: 'silu',
};
const una = { name: 'una', config: { feedback: 'pairwise' } };
const CASES: Case[] = [
  {
    name: 'built-in tiny (Llama, 2L/64)',
    shape: 'tiny',
    objective: 'dpo',
    pairs: 8,
    seq: 64,
    steps: STEPS,
  },
  {
    name: 'built-in tiny (Llama, 2L/64)',
    shape: 'tiny',
    objective: una,
    pairs: 8,
    seq: 64,
    steps: STEPS,
  },
  {
    name: 'GPT-2 mini (4L/256)',
    shape: 'gpt2-mini',
    objective: 'dpo',
    pairs: 2,
    seq: 64,
    steps: STEPS,
  },
  {
    name: 'GPT-2 mini (4L/256)',
    shape: 'gpt2-mini',
    objective: una,
    pairs: 2,
    seq: 64,
    steps: STEPS,
  },
  {
    name: 'GPT-2 small (124M)',
    shape: 'gpt2-small',
    objective: 'dpo',
    pairs: 1,
    seq: 64,
    steps: quick ? 2 : 3,
  },
  {
    name: 'Qwen2.5-0.5B shape, LoRA r 8 (q, v)',
    shape: 'qwen-0.5b',
    objective: 'dpo',
    pairs: 1,
    seq: 64,
    steps: 2,
    lora: { r: 8, loraAlpha: 16, targetModules: ['q_proj', 'v_proj'] },
    backends: ['wasm ×1', 'tensorflow ×1', 'tensorflow ×2', 'tensorflow ×1, bf16'],
  },
];

/**
 * The scaling grid: GPT-2 mini's DPO step over batch 1–8 × sequence 64–512 (cells up to
 * 4,096 tokens a step), to show the cost is linear in tokens up to the attention term.
 */
const SCALE_CASES: Case[] = [1, 2, 4, 8].flatMap((pairs) =>
  [64, 128, 256, 512]
    .filter((seq) => 2 * pairs * seq <= 4096)
    .map((seq) => ({
      name: 'GPT-2 mini (4L/256)',
      shape: 'gpt2-mini' as const,
      objective: 'dpo',
      pairs,
      seq,
      steps: quick ? 2 : 3,
    })),
);
const ALL_CASES = [...CASES, ...SCALE_CASES];

interface ChildResult {
  backend: string;
  threads: number;
  seconds: number[];
  tokens: number;
  /** VmHWM after the last optimizer step */
  stepPeakRssMb: number;
  /** VmHWM at the end (the final checkpoint save included) */
  peakRssMb: number;
  optimizer?: Record<string, number>;
  /** ms of a tiny step's RoPE before / after (the tiny DPO case only) */
  rope?: Record<string, number>;
  /** alternating runs: the steps on the stock kernels (`seconds` are ours) */
  stockSeconds?: number[];
}

/** One case on the backend the environment selects, in this (fresh) process. */
async function child(index: number, modelDirOf: string): Promise<void> {
  const names = process.env.ALIGNJS_BENCH_STOCK?.split(',').filter(Boolean) ?? [];
  const stock = names.length > 0 ? await stockWasmKernels(names) : undefined;
  // a kernel lever measured step by step: its stock and our kernel take turns
  const alternate = process.env.ALIGNJS_BENCH_ALTERNATE?.split(',').filter(Boolean) ?? [];
  const restoreStock = alternate.length > 0 ? await stockWasmKernels(alternate) : undefined;
  const info = await initBackend();
  stock?.();
  const restoreOurs = restoreStock ? kernelsNow(alternate) : undefined;
  const c = ALL_CASES[index]!;
  const model = c.shape === 'tiny' ? 'builtin:tiny' : modelDirOf;
  let r: Awaited<ReturnType<typeof shippedStep>>;
  try {
    // Alternating: step 1 (the warm-up) and every odd step on ours, every even step on stock.
    const afterStep = restoreStock
      ? (step: number) => ((step + 1) % 2 === 0 ? restoreStock() : restoreOurs!())
      : undefined;
    const steps = restoreStock ? 2 * c.steps : c.steps;
    r = await shippedStep(model, c.objective, c.pairs, c.seq, steps, c.lora, afterStep);
  } catch (err) {
    // a case the backend refuses (the 0.5B model on wasm): its message is the result
    console.log(`REFUSED ${JSON.stringify((err as Error).message.split('\n')[0])}`);
    return;
  }
  const threads =
    info.backend === 'wasm'
      ? info.wasm!.threadCount
      : Number(process.env.TF_NUM_INTRAOP_THREADS ?? 0) || 2;
  let optimizer: Record<string, number> | undefined;
  let rope: Record<string, number> | undefined;
  if (index < CASES.length && c.objective === 'dpo' && !restoreStock) {
    if (c.shape === 'gpt2-mini') {
      const m = CausalLM.random(parseModelConfig(GPT2_MINI), 1);
      optimizer = optimizerTimes(m.trainableVariables());
      m.dispose();
    }
    if (c.shape === 'tiny') rope = ropeTimes(c.pairs, c.seq);
  }
  // seconds[i] is step i + 2's: stock on even steps, so on even i
  const split = restoreStock
    ? {
        seconds: r.seconds.filter((_, i) => i % 2 === 1),
        stockSeconds: r.seconds.filter((_, i) => i % 2 === 0),
      }
    : {};
  const out: ChildResult = {
    backend: info.backend,
    threads,
    ...r,
    ...split,
    peakRssMb: peakRssMb(),
    ...(optimizer ? { optimizer } : {}),
    ...(rope ? { rope } : {}),
  };
  console.log(`RESULT ${JSON.stringify(out)}`);
}

/** The kernels registered now for `names` (ours, once initBackend has patched them): a function that registers them again. */
function kernelsNow(names: readonly string[]): () => void {
  const kernels = names.map((k) => tf.getKernel(k, 'wasm')!);
  return () => {
    for (const k of kernels) {
      tf.unregisterKernel(k.kernelName, 'wasm');
      tf.registerKernel(k);
    }
  };
}

const ROPE = ['before: split, neg, concat', 'after: one rotation product'] as const;

/**
 * Milliseconds of one training step's RoPE, forward and backward, on the built-in tiny
 * model's shapes (`pairs` × 2 rows of `seq`: q `[B, 4, T, 16]` and k `[B, 2, T, 16]` in each
 * of 2 layers), median of 20 taking turns: the formula as autodiff ran it before
 * (transformers' rotate_half: split, negate, concatenate) and models' `applyRope`.
 */
function ropeTimes(pairs: number, seq: number): Record<string, number> {
  const [B, T, D] = [2 * pairs, seq, 16];
  const positions = Int32Array.from({ length: B * T }, (_, i) => i % T);
  const { cos, sin } = ropeTables(positions, B, T, D, {
    type: 'default',
    theta: 10000,
    dim: D,
    maxPositions: 128,
  });
  const before = (x: tf.Tensor) => {
    const [x1, x2] = tf.split(x, [D / 2, D / 2], 3);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2!), x1!], 3), sin));
  };
  const after = (x: tf.Tensor) => applyRope(x as tf.Tensor4D, cos, sin);
  const xs = [4, 2].map((h) => tf.randomNormal([B, h, T, D]));
  const times: Record<string, number[]> = { [ROPE[0]]: [], [ROPE[1]]: [] };
  for (let i = 0; i < 21; i++) {
    for (const [name, f] of [
      [ROPE[0], before],
      [ROPE[1], after],
    ] as const) {
      const t0 = performance.now();
      for (let layer = 0; layer < 2; layer++)
        for (const x of xs) {
          const g = tf.grad(f)(x, tf.onesLike(x));
          g.dataSync();
          g.dispose();
        }
      if (i > 0) times[name]!.push(performance.now() - t0);
    }
  }
  tf.dispose([cos, sin, ...xs]);
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

/**
 * The wasm kernels our levers replace (core-logprob's wasm-kernels.ts). "before" rows restore
 * them for a whole run (Identity + Cast: their effect is on memory, a run's peak RSS); the
 * alternating section lets stock and ours take turns step by step in one process (speed,
 * without the run-to-run spread between processes).
 */
const STOCK_LEVERS = [['Identity', 'Cast']] as const;
const ALTERNATING_LEVERS = [['Transpose'], ['Slice', 'SplitV'], ['Identity', 'Cast']] as const;

/**
 * tfjs-backend-wasm's own kernels `names`, captured before `initBackend` patches them: the
 * returned function registers them again (a lever's "before").
 */
async function stockWasmKernels(names: readonly string[]): Promise<() => void> {
  await import('@tensorflow/tfjs-backend-wasm');
  return kernelsNow(names);
}

/**
 * This process's peak RSS in MB: VmHWM, which starts afresh at exec (getrusage's maxrss
 * keeps the spawning parent's peak across fork + exec, so every child reported ≥ ours).
 */
function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

function hasTfjsNode(): boolean {
  const r = spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], {
    encoding: 'utf8',
  });
  return r.status === 0;
}

/**
 * Runs case `index` of {@link ALL_CASES} in a fresh process with `env`: its result, the
 * message it was refused with, or undefined when it failed (its stderr printed).
 */
function runChild(
  index: number,
  dir: string,
  env: Record<string, string>,
): ChildResult | string | undefined {
  const r = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      import.meta.filename,
      '--child',
      String(index),
      dir,
      ...(quick ? ['--quick'] : []),
    ],
    { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 1_200_000 },
  );
  const refused = r.stdout?.split('\n').find((l) => l.startsWith('REFUSED '));
  if (refused) return JSON.parse(refused.slice(8)) as string;
  const line = r.stdout?.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    console.error(r.stderr?.slice(-2000));
    return undefined;
  }
  return JSON.parse(line.slice(7)) as ChildResult;
}

/**
 * The scaling grid on `cfg` (tensorflow ×1 when built, else wasm ×1) beside TRL at its
 * default precision (bf16) at 1 thread: tokens/s per cell, and a least-squares fit of the
 * step time on [1, tokens, Σ seq²] for each side.
 */
function scalingSection(
  cfg: { label: string; env: Record<string, string> },
  dir: string,
  json: Record<string, unknown>[],
): string {
  const rows: string[][] = [];
  const ours: { tokens: number; attention: number; seconds: number }[] = [];
  const trl: { tokens: number; attention: number; seconds: number }[] = [];
  for (const [k, c] of SCALE_CASES.entries()) {
    const load = loadavg()[0]!;
    const res = runChild(CASES.length + k, dir, cfg.env);
    if (!res || typeof res === 'string') {
      console.error(`scaling ${c.pairs}×2×${c.seq} on ${cfg.label}: ${res ?? 'failed'}`);
      continue;
    }
    const t = trlStep('gpt2-mini', c.pairs, c.seq, true, 1, c.steps);
    const tokens = 2 * c.pairs * c.seq;
    const attention = 2 * c.pairs * c.seq ** 2;
    const sec = median(res.seconds);
    ours.push({ tokens, attention, seconds: sec });
    if (typeof t !== 'string') trl.push({ tokens, attention, seconds: t.seconds });
    rows.push([
      String(c.pairs),
      String(c.seq),
      fmt(tokens),
      spread(res.seconds.map((s) => tokens / s)),
      typeof t === 'string' ? t : fmt(t.tokens_per_s),
      typeof t === 'string' ? '–' : (tokens / sec / t.tokens_per_s).toFixed(2),
      fmt(res.stepPeakRssMb),
      typeof t === 'string' ? '–' : fmt(t.peak_rss_mb),
      load.toFixed(2),
    ]);
    console.log(`scaling | ${rows.at(-1)!.join(' | ')}`);
    json.push({ case: `scaling ${c.pairs}×2×${c.seq}`, config: cfg.env, ...res, trl: t, load });
  }
  const describe = (name: string, cells: typeof ours) => {
    if (cells.length < 4) return `- ${name}: too few cells to fit`;
    const { coef, maxResidual } = fitScaling(cells);
    const big = cells.reduce((a, b) => (b.attention > a.attention ? b : a));
    const share =
      (coef[2] * big.attention) / (coef[0] + coef[1] * big.tokens + coef[2] * big.attention);
    return `- ${name}: step ≈ ${(coef[0] * 1e3).toFixed(1)} ms + ${(coef[1] * 1e6).toFixed(1)} µs × tokens + ${(coef[2] * 1e9).toFixed(2)} ns × Σ seq²; the largest residual ${(100 * maxResidual).toFixed(1)}%; the quadratic (attention) term is ${(100 * share).toFixed(1)}% of the longest rows' step (${fmt(big.tokens)} tokens)`;
  };
  return `### Scaling: GPT-2 mini's DPO step over batch × sequence (${cfg.label}; TRL bf16 at 1 thread), median (min–max) of ${SCALE_CASES[0]!.steps} steps

${table(
  [
    'pairs',
    'seq',
    'tokens / step',
    'tokens / s',
    'TRL bf16 tok/s',
    'ours ÷ TRL',
    'peak RSS MB (steps)',
    'TRL peak RSS MB',
    'load (1 min)',
  ],
  rows,
)}

Least squares of the step time on [1, tokens, Σ seq² over the rows] (float64 normal equations):

${describe(`alignjs ${cfg.label}`, ours)}
${describe('TRL bf16 ×1', trl)}
`;
}

const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
const spread = (xs: number[]) =>
  `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

async function main(): Promise<void> {
  await initBackend(); // for writing the random checkpoints only; each case picks its own
  const dirs: Record<string, string> = {
    'gpt2-mini': await modelDir(GPT2_MINI),
    'gpt2-small': await modelDir(GPT2_SMALL),
    'qwen-0.5b': await modelDir(QWEN_05B),
  };
  // `only`: a lever measured on one case (before/after within this run), not a default
  const configs: { label: string; env: Record<string, string>; only?: Shape[] }[] = [
    { label: 'wasm ×1', env: { ALIGNJS_BACKEND: 'wasm', ALIGNJS_WASM_THREADS: '1' } },
    { label: 'wasm ×2', env: { ALIGNJS_BACKEND: 'wasm', ALIGNJS_WASM_THREADS: '2' } },
    ...STOCK_LEVERS.map((kernels) => ({
      label: `wasm ×1, before: stock ${kernels.join(' + ')}`,
      env: {
        ALIGNJS_BACKEND: 'wasm',
        ALIGNJS_WASM_THREADS: '1',
        ALIGNJS_BENCH_STOCK: kernels.join(','),
      },
      only: ['gpt2-mini', 'gpt2-small'] as Shape[],
    })),
  ];
  if (hasTfjsNode())
    for (const t of ['1', '2'])
      configs.push({
        label: `tensorflow ×${t}`,
        env: {
          ALIGNJS_BACKEND: 'tensorflow',
          TF_NUM_INTRAOP_THREADS: t,
          TF_NUM_INTEROP_THREADS: t,
        },
      });
  if (hasTfjsNode())
    for (const t of ['1', '2'])
      configs.push({
        label: `tensorflow ×${t}, bf16`,
        env: {
          ALIGNJS_BACKEND: 'tensorflow',
          TF_NUM_INTRAOP_THREADS: t,
          TF_NUM_INTEROP_THREADS: t,
          ALIGNJS_BENCH_BF16: '1',
        },
      });
  if (hasTfjsNode())
    configs.push({
      label: 'tensorflow ×1, before: optim adamw_torch (tfjs ops)',
      env: {
        ALIGNJS_BACKEND: 'tensorflow',
        TF_NUM_INTRAOP_THREADS: '1',
        TF_NUM_INTEROP_THREADS: '1',
        ALIGNJS_BENCH_OPTIM: 'adamw_torch',
      },
      only: ['gpt2-mini', 'gpt2-small'],
    });
  if (hasTfjsNode())
    configs.push({
      label: 'tensorflow ×1, TF_ENABLE_ONEDNN_OPTS=0',
      env: {
        ALIGNJS_BACKEND: 'tensorflow',
        TF_NUM_INTRAOP_THREADS: '1',
        TF_NUM_INTEROP_THREADS: '1',
        TF_ENABLE_ONEDNN_OPTS: '0',
      },
      only: ['gpt2-small'],
    });
  const rows: string[][] = [];
  const optRows: string[][] = [];
  const ropeRows: string[][] = [];
  const json: Record<string, unknown>[] = [];
  const trlCache = new Map<string, (TrlStep | string)[]>();
  for (const [i, c] of CASES.entries()) {
    for (const cfg of configs) {
      if (c.backends && !c.backends.includes(cfg.label)) continue;
      if (cfg.only && (!cfg.only.includes(c.shape) || c.objective !== 'dpo')) continue;
      const load = loadavg()[0]!;
      const out = runChild(i, dirs[c.shape] ?? '', cfg.env);
      const label =
        typeof c.objective === 'string' ? c.objective : (c.objective as { name: string }).name;
      if (typeof out === 'string') {
        rows.push([
          c.name,
          label,
          `${c.pairs}×2×${c.seq}`,
          cfg.label,
          `refused: ${out}`,
          ...Array(8).fill('–'),
        ]);
        continue;
      }
      if (!out) {
        console.error(`${c.name} on ${cfg.label}: failed`);
        continue;
      }
      const res = out;
      // TRL has no UNA: its DPO step is the comparison for every row of a shape
      const key = `${c.shape}/${res.threads}`;
      if (!trlCache.has(key))
        trlCache.set(key, [
          trlStep(c.shape, c.pairs, c.seq, false, res.threads, c.steps, c.lora !== undefined),
          trlStep(c.shape, c.pairs, c.seq, true, res.threads, c.steps, c.lora !== undefined),
        ]);
      const trl = trlCache.get(key)!;
      const toks = res.seconds.map((s) => res.tokens / s);
      const ours = res.tokens / median(res.seconds);
      const cell = (t: TrlStep | string) => (typeof t === 'string' ? t : fmt(t.tokens_per_s));
      const ratio = (t: TrlStep | string) =>
        typeof t === 'string' ? '–' : (ours / t.tokens_per_s).toFixed(2);
      rows.push([
        c.name,
        label,
        `${c.pairs}×2×${c.seq}`,
        cfg.only || cfg.label.includes(',') ? cfg.label : `${res.backend} ×${res.threads}`,
        spread(toks),
        cell(trl[0]!),
        cell(trl[1]!),
        ratio(trl[0]!),
        ratio(trl[1]!),
        `${fmt(res.stepPeakRssMb)} / ${fmt(res.peakRssMb)}`,
        typeof trl[0] === 'string' ? '–' : fmt(trl[0]!.peak_rss_mb),
        typeof trl[0] === 'string' ? '–' : (res.stepPeakRssMb / trl[0]!.peak_rss_mb).toFixed(2),
        load.toFixed(2),
      ]);
      console.log(rows.at(-1)!.join(' | '));
      if (res.rope)
        ropeRows.push([
          cfg.only || cfg.label.includes(',') ? cfg.label : `${res.backend} ×${res.threads}`,
          ...ROPE.map((k) => res.rope![k]?.toFixed(2) ?? '–'),
        ]);
      if (res.optimizer)
        optRows.push([
          cfg.only || cfg.label.includes(',') ? cfg.label : `${res.backend} ×${res.threads}`,
          ...OPTIMIZERS.map((k) => res.optimizer![k]?.toFixed(1) ?? '–'),
        ]);
      json.push({ case: c.name, objective: label, config: cfg.env, ...res, trl, load });
    }
  }
  const altRows: string[][] = [];
  for (const [i, c] of CASES.entries()) {
    if (c.objective !== 'dpo' || !['tiny', 'gpt2-mini', 'gpt2-small'].includes(c.shape)) continue;
    for (const kernels of ALTERNATING_LEVERS) {
      const load = loadavg()[0]!;
      const env = { ALIGNJS_BACKEND: 'wasm', ALIGNJS_WASM_THREADS: '1' };
      const out = runChild(i, dirs[c.shape] ?? '', {
        ...env,
        ALIGNJS_BENCH_ALTERNATE: kernels.join(','),
      });
      if (!out || typeof out === 'string' || !out.stockSeconds) {
        console.error(`${c.name}, alternating ${kernels.join(' + ')}: failed`);
        continue;
      }
      const [ours, stock] = [out.seconds, out.stockSeconds].map((x) => out.tokens / median(x));
      altRows.push([
        c.name,
        `${c.pairs}×2×${c.seq}`,
        kernels.join(' + '),
        String(out.seconds.length),
        spread(out.stockSeconds.map((x) => out.tokens / x)),
        spread(out.seconds.map((x) => out.tokens / x)),
        (ours! / stock!).toFixed(2),
        load.toFixed(2),
      ]);
      console.log(altRows.at(-1)!.join(' | '));
      json.push({ case: c.name, alternating: kernels, config: env, ...out, load });
    }
  }
  const scaleCfg = configs.find((c) => c.label === (hasTfjsNode() ? 'tensorflow ×1' : 'wasm ×1'))!;
  const scaleMd = scalingSection(scaleCfg, dirs['gpt2-mini']!, json);
  const md = `## The shipped training step (bench/shipped-step) — median (min–max) of ${STEPS} steps after a warm-up (GPT-2 small: ${CASES.at(-1)!.steps}), ${new Date().toISOString()}

The \`Trainer\`'s own optimizer step (\`alignjs train\`'s code: objective from the registry, AdamW,
reference log-probs attached from the cache, clipping, finite guard, logging every step), with
token counts at the truncation limit (prompt ≤ 8 tokens, prompt + response = 64). Each row
is its own process (peak RSS is that run's). Threads: XNNPACK's on wasm
(\`ALIGNJS_WASM_THREADS\`), libtensorflow's intra-op pool on tensorflow, \`torch.set_num_threads\`
for TRL — the same count on both sides of a row. Machine: ${machine()}. The ratios depend on
the CPU: torch's matmuls are MKL's, which is much faster on Intel than on AMD, so TRL's
numbers (and our ratios to them) move between machines of the same size.

${table(
  [
    'shape',
    'objective',
    'pairs × 2 × seq',
    'backend × threads',
    'tokens / s',
    'TRL fp32 tok/s',
    'TRL bf16 tok/s',
    'ours ÷ TRL fp32',
    'ours ÷ TRL bf16',
    'peak RSS MB (steps / run)',
    'TRL peak RSS MB',
    "steps' peak ÷ TRL's",
    'load (1 min)',
  ],
  rows,
)}

TRL: 1.13's \`DPOTrainer\` (bench/trl_step.py, torch 2.13 CPU with MKL, the same architecture
and batch, pre-tokenized rows, AdamW, one step per batch, its default reference model
forward every step), median of the same number of steps after a warm-up; bf16 is TRL's
default on CPU (autocast). "ours ÷ TRL" > 1 means we are faster. UNA rows compare with TRL's
DPO step (TRL has no UNA).

### The optimizer update alone (GPT-2 mini's 52 variables, 5.5M parameters), ms, median of 5

${table(['backend × threads', ...OPTIMIZERS], optRows)}

"before" is the update as it was: a dozen tfjs ops per variable plus the loop's averaged and
clipped gradient copies. Now the loop folds averaging and clipping into one factor the
optimizer applies as it reads the gradients; \`adamw_torch\` updates one flat moment buffer
pair, \`adamw_host\` fuses the update into one host pass per variable (straight on the wasm heap).

Peak RSS: VmHWM after the last optimizer step (the steps' peak, what TRL's number measures:
its run saves nothing) and at the end of the run (our final checkpoint save included: the
weights and both moments pass through host memory on the way to disk). The
\`TF_ENABLE_ONEDNN_OPTS=0\` row is a memory lever measured, not kept: libtensorflow's oneDNN
kernels keep their scratch memory, and turning them off lowers the peak but costs speed
(users who need the memory can set it; it is TensorFlow's own variable).

The "wasm ×1, before: stock Identity + Cast" rows are a lever kept, measured before/after in
this run: tfjs-backend-wasm's \`Identity\` copies its input, and the gradient tape clones
every tensor it saves for the backward pass through it (~400 clones per GPT-2-mini step), as
it does same-dtype \`Cast\`s (~135). Ours (core-logprob's wasm-kernels.ts) share the input's
memory instead, as the cpu and tensorflow backends' do; compare each with the wasm ×1 row of
its shape (tokens/s and the steps' peak RSS).

### wasm kernel levers, stock and ours taking turns step by step (wasm ×1, one process per row)

Between processes the same step's speed on this machine spreads by up to ~40% (a tiny-model
run at 73 ms a step, the next at 127 ms, same code), more than these levers move it, so each
row here is one run whose optimizer steps alternate: the warm-up and every odd step on our
kernels, every even step on tfjs-backend-wasm's stock ones.

${table(
  [
    'shape',
    'pairs × 2 × seq',
    'lever',
    'steps each',
    'stock: tokens / s',
    'ours: tokens / s',
    'ours ÷ stock',
    'load (1 min)',
  ],
  altRows,
)}

\`Transpose\`: the stock kernel walks the output with per-element index arithmetic and strided
reads, 4–19 ns per element on these shapes (19 for the \`[8192, 256]\` block that
\`matMulFast\`'s swapped LM-head product transposes back). Ours, for every permutation that is
one swap of two axes once size-1 axes are dropped and neighbours merged (matrices, batched
matrices, attention's head split and merge), is a cache-blocked 32 × 32 copy on the heap
whose inner loop runs along the shorter stride: 1.7–2.2 ns per element on the same shapes.
\`Slice\` + \`SplitV\`: the stock kernels copy the whole input out of the heap for every
slice (\`SplitV\`: for every piece) and then copy element by element; ours copy each
contiguous run of the slice with one memmove on the heap (GPT-2's q, k, v split was 4% of a
GPT-2-mini step; "stock" here is tfjs's own \`Slice\`, before the contiguous-slice patch of
earlier rounds too). \`Identity\` + \`Cast\`: the memory lever of the main table's "before" rows, here for its speed.

### RoPE: one tiny-model step's rotary embedding, forward and backward, ms (median of 20, taking turns)

${table(['backend × threads', ...ROPE], ropeRows)}

The built-in tiny model's q \`[16, 4, 64, 16]\` and k \`[16, 2, 64, 16]\` in each of its 2
layers. "before" is transformers' \`rotate_half\` as autodiff ran it: split, negate and
concatenate forward, and the same three kernels' gradients backward (on wasm 11% of the tiny
step's kernel time). Now models' \`applyRope\` rotates the halves as one product with a
signed permutation matrix and writes its gradient out (\`dy·cos + rotate_halfᵀ(dy·sin)\`).

The "tensorflow ×1, before: optim adamw_torch (tfjs ops)" rows are the other lever kept: on
tensorflow, \`optim: auto\` now picks \`adamw_torch_fused\`, TensorFlow's own fused Adam kernel
(\`ResourceApplyAdam\`: one pass updating weight and both moments in place) instead of a dozen
tfjs ops over the flat moment buffers; compare each with the tensorflow ×1 row of its shape,
and the optimizer table above for the update alone.

Six changes of the previous round have no switch to measure "before" in the same run; the
run of this bench before them (2026-12-03 17:23–17:45 UTC, commit d0e3f14, same kind of machine
(2 vCPUs; its CPU model was not recorded), load 1.3–1.6) had: tiny DPO tensorflow ×1 13,773
tokens/s; GPT-2 mini DPO wasm ×1 385 (steps' peak RSS 695 MB), tensorflow ×1 1,232; GPT-2 small tensorflow ×1 70 (0.70 of TRL bf16), ×1 bf16 96;
Qwen LoRA tensorflow ×1 43 tokens/s at 3,983 MB, ×2 55 at 3,977 MB, ×1 bf16 49 at 4,051 MB.
(1) The loop's backward pass (core-logprob \`variableGrads\`) frees each intermediate gradient
and each activation saved for the backward pass as soon as the last op that needs it has run;
tfjs's own \`variableGrads\` holds all of them until the whole backward pass ends. (2) The
log-prob gather's backward frees its vocabulary-sized temporaries one by one. (3) LayerNorm and
RMSNorm are one custom op each with a closed-form backward (a dozen tape entries each before).
(4) Off wasm, that backward's one-hot is float32 from the start (no int32 one-hot and cast).
(5) The gradient norm for clipping is one \`L2Loss\` kernel per gradient on tensorflow (was
square, sum and add per gradient). (6) The attention weights \`softmax(scores/√d + bias)\` are
one custom op that keeps only the weights for the backward pass (tfjs's autodiff also kept the
raw and the scaled scores: two \`[B, heads, T, S]\` tensors per layer); a run with (1)–(5) and
not (6) (2026-12-04 03:39–04:03 UTC, commit 94207ff, same kind of machine) had, in the scaling table
below, 4 × 512: 1,465 tokens/s at 2,198 MB (1.31× TRL's RSS), 2 × 512: 1,568 at 1,475 MB,
8 × 256: 1,862 at 2,060 MB (1.28×), and a quadratic term of 478 ns × Σ seq².

Why tensorflow ×2 can be slower than ×1 on the tiny model and GPT-2 mini: their matmuls are
small, and libtensorflow's intra-op pool wakes its worker threads for every kernel (futex
wake-ups; in a probe of the same steps system time rose 0.28 → 0.81 s while CPU use stayed
near 120%); torch's OpenMP team spins and runs part of the work on the calling thread. Neither
\`TF_NUM_INTEROP_THREADS=1\`, \`TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1\` nor
\`TF_ENABLE_ONEDNN_OPTS=0\` changed it. From GPT-2 small up, ×2 wins.

${scaleMd}
`;
  await writeSection('shipped-step', md);
  await recordResult('shipped-step', { machine: machine(), cases: json });
  // the random checkpoints (the Qwen-shaped one is ~2 GB)
  await Promise.all(Object.values(dirs).map((d) => rm(d, { recursive: true, force: true })));
}

/** CPU model, logical core count and Node version, for the results' header (ratios to MKL depend on the CPU). */
function machine(): string {
  const list = cpus();
  return `${list[0]?.model.trim() ?? 'unknown CPU'}, ${list.length} logical CPUs, Node ${process.version}`;
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(Number(process.argv[at + 1]), process.argv[at + 2] ?? '');
else await main();
