/**
 * bench/train-step: the DPO training step (forward + backward + AdamW on a concatenated
 * chosen/rejected batch, reference log-probs given) on the wasm backend, next to the same
 * architecture, batch and step in PyTorch on CPU (Debian's python3-torch under the system
 * python3; "skipped: torch missing" otherwise). Also: achieved GFLOP/s against each side's
 * measured matmul ceiling, the reference cache (step time with precomputed reference
 * log-probs vs a reference forward every step), a scaling table of step time vs sequence
 * length and batch size, and judge-client throughput against a loopback server at
 * concurrency 1, 4, 16. Writes bench/results.md and bench/results.json. Every ratio is
 * measured in this one run.
 *
 *   npm run build && npx tsx bench/train-step.ts [--quick]
 */
import { spawnSync } from 'node:child_process';
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
import { JudgeClient } from '@alignjs/eval';
import { CausalLM, loadModel, parseModelConfig, tinyModelDir } from '@alignjs/models';
import { HostAdamW } from '@alignjs/trainer';
import * as tf from '@tensorflow/tfjs-core';
import { median, recordResult, table, writeSection } from './util.js';

const quick = process.argv.includes('--quick');
const HERE = dirname(fileURLToPath(import.meta.url));
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

/** Median seconds of one DPO step; `refEachStep` also runs a reference forward inside. */
function dpoStep(
  model: CausalLM,
  reference: CausalLM | undefined,
  B: number,
  T: number,
  hostOptimizer = false,
): number {
  const data = toTensors(
    buildPairwiseBatch(pairs(model.config.vocabSize, B, T), { padTokenId: 0 }),
  );
  const vars = model.trainableVariables();
  const opt = tf.train.adam(1e-5);
  const hostOpt = hostOptimizer
    ? new HostAdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 })
    : undefined;
  const refFixed = tf.randomNormal([2 * B], -40, 5);
  const times: number[] = [];
  for (let r = 0; r <= REPEATS; r++) {
    const t0 = performance.now();
    if (hostOptimizer) {
      // Moments on the host: device memory holds only weights, gradients and activations.
      const { value, grads } = tf.variableGrads(() => {
        const lp = sequenceLogprobs(model.call, data).responseSum;
        const { chosen, rejected } = splitPairwise(tf.sub(lp, refFixed));
        return tf.neg(tf.mean(logSigmoid(tf.mul(0.1, tf.sub(chosen, rejected))))) as tf.Scalar;
      }, vars);
      value.dataSync();
      hostOpt!.apply(
        vars.map((v) => grads[v.name]!),
        1e-5,
      );
      tf.dispose([value, ...Object.values(grads)]);
    } else {
      tf.tidy(() => {
        const ref = reference
          ? sequenceLogprobs(reference.call, data, { noGrad: true }).responseSum
          : refFixed;
        const cost = opt.minimize(
          () => {
            const lp = sequenceLogprobs(model.call, data).responseSum;
            const { chosen, rejected } = splitPairwise(tf.sub(lp, ref));
            return tf.neg(tf.mean(logSigmoid(tf.mul(0.1, tf.sub(chosen, rejected))))) as tf.Scalar;
          },
          true,
          vars,
        );
        cost?.dataSync();
      });
    }
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  opt.dispose();
  tf.dispose([refFixed, ...Object.values(data)]);
  return median(times);
}

/** Forward + backward FLOPs of a GPT-2 step ≈ 6 · params · tokens (+ attention, ignored). */
const stepFlops = (params: number, tokens: number) => 6 * params * tokens;

function tfjsMatmulGflops(): number {
  const a = tf.randomNormal([512, 512]);
  const b = tf.randomNormal([512, 512]);
  tf.matMul(a, b).dataSync();
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.matMul(a, b).dataSync());
  const s = (performance.now() - t0) / 1000;
  tf.dispose([a, b]);
  return (5 * 2 * 512 ** 3) / s / 1e9;
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

  // 1. Training step vs PyTorch-CPU, GPT-2 shapes.
  const torchOk =
    spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const mini = {
    name: 'GPT-2 mini (4L/256)',
    vocab: 8192,
    embd: 256,
    layers: 4,
    heads: 4,
    pairs: 2,
    seq: 64,
  };
  const small = {
    name: 'GPT-2 small (12L/768)',
    vocab: 50257,
    embd: 768,
    layers: 12,
    heads: 12,
    pairs: 1,
    seq: 32,
  };
  const shapes = quick ? [mini] : [mini, small];
  const ceiling = tfjsMatmulGflops();
  const stepRows: string[][] = [];
  for (const s of shapes) {
    // Weights, gradients and Adam's two moments live in the wasm heap, which tfjs-wasm cannot
    // use past ~2 GiB (reads and writes return garbage or trap): past ~1.5 GB keep the
    // moments on the host (HostAdamW).
    const params = s.vocab * s.embd + 1024 * s.embd + s.layers * 12 * s.embd * s.embd;
    const host = info.backend === 'wasm' && (4 * params * 4) / 2 ** 20 > 1500;
    const model = CausalLM.random(
      parseModelConfig({
        model_type: 'gpt2',
        vocab_size: s.vocab,
        n_positions: 1024,
        n_embd: s.embd,
        n_layer: s.layers,
        n_head: s.heads,
      }),
      1,
    );
    const tokens = 2 * s.pairs * s.seq;
    const ours = dpoStep(model, undefined, s.pairs, s.seq, host);
    const gf = stepFlops(model.numParameters, tokens) / ours / 1e9;
    let torchCol = ['skipped: torch missing', '–', '–'];
    if (torchOk) {
      const p = spawnSync(
        '/usr/bin/python3',
        [join(HERE, 'torch_step.py'), JSON.stringify({ ...s, positions: 1024, repeats: REPEATS })],
        { encoding: 'utf8' },
      );
      if (p.status === 0) {
        const t = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as {
          step_s: number;
          matmul_gflops: number;
          threads: number;
        };
        torchCol = [
          `${(tokens / t.step_s).toFixed(0)} tok/s`,
          (ours / t.step_s).toFixed(1),
          `${(stepFlops(model.numParameters, tokens) / t.step_s / 1e9).toFixed(1)} / ${t.matmul_gflops.toFixed(0)}`,
        ];
      } else torchCol = [`torch failed: ${p.stderr.split('\n').filter(Boolean).at(-1)}`, '–', '–'];
    }
    stepRows.push([
      `${s.name}${host ? ', Adam moments on the host' : ''}`,
      `${s.pairs}×2×${s.seq}`,
      `${(tokens / ours).toFixed(0)} tok/s`,
      `${gf.toFixed(2)} / ${ceiling.toFixed(1)}`,
      ...torchCol,
    ]);
    model.dispose();
  }
  results.trainStep = stepRows;
  say('### DPO training step (forward + backward + AdamW)\n');
  say(
    table(
      [
        'model',
        'pairs×2×seq',
        'wasm',
        'wasm GFLOP/s / matmul ceiling',
        'PyTorch-CPU',
        'wasm ÷ torch step time',
        'torch GFLOP/s / ceiling',
      ],
      stepRows,
    ),
  );

  // 2. Reference cache.
  const tiny = await loadModel(tinyModelDir());
  const ref = tiny.clone({ trainable: false });
  const cached = dpoStep(tiny, undefined, 8, 48);
  const live = dpoStep(tiny, ref, 8, 48);
  results.refCache = { cachedStepS: cached, liveStepS: live };
  say('\n### Reference cache (tiny model, 8 pairs × 48 tokens)\n');
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
    for (const B of quick ? [2, 4] : [2, 4, 8]) row.push(dpoStep(tiny, undefined, B, T).toFixed(3));
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
