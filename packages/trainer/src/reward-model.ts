/**
 * Bradley–Terry reward models: a causal LM backbone and a scalar head on the last real
 * token (`score.weight [1, E]`, as transformers' *ForSequenceClassification), trained with
 * `−logσ(r_w − r_l)` on pairwise data. Saved as a Hugging Face directory.
 */
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  buildBatch,
  ConfigReader,
  hostValues,
  initBackend,
  logSigmoid,
  permutation,
  type TokenExample,
  toTensors,
} from '@alignjs/core-logprob';
import {
  CausalLM,
  isIgnorableBuffer,
  loadModel,
  loadTokenizer,
  modelWeightFiles,
  parameterShapes,
  parseModelConfig,
  readHeader,
  readTensors,
  saveSafetensors,
  stateDict,
  tinyModelDir,
  writeJsonAtomic,
} from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';
import {
  pruneCheckpoints,
  readTrainerState,
  removeStaleTemp,
  restoreOptimizer,
  saveOptimizer,
  truncateMetrics,
  writeDirAtomic,
  writeTrainerState,
} from './checkpoint.js';
import { checkResumeConfig, stringField } from './config.js';
import { checkKind } from './data.js';
import { loadDataset } from './data-files.js';
import { type Logger, makeLogger, type StepRecord } from './log.js';
import { type LoopState, loopSettings, runLoop } from './loop.js';
import { AdamW, type Schedule } from './optim.js';
import type { RewardFn } from './rewards.js';
import { type TokenizedExample, tokenizeDataset } from './tokenize.js';

export class RewardModel {
  constructor(
    readonly backbone: CausalLM,
    readonly score: tf.Variable,
  ) {}

  /** A reward model on a (copied) policy backbone with a fresh head (N(0, 1/E)). */
  static fromModel(model: CausalLM, seed = 0): RewardModel {
    const E = model.config.hiddenSize;
    const init = tf.randomNormal([1, E], 0, 1 / Math.sqrt(E), 'float32', seed);
    const rm = new RewardModel(model, tf.variable(init, true));
    init.dispose();
    return rm;
  }

  /** `[B]` rewards: the head applied to the hidden state of each row's last real token. */
  rewards(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const [B, T] = inputIds.shape;
      const h = this.backbone.hidden(inputIds, attentionMask);
      const perToken = tf.reshape(tf.matMul(tf.reshape(h, [B * T, -1]), this.score, false, true), [
        B,
        T,
      ]);
      const mask = hostValues(attentionMask);
      const last = new Float32Array(B * T);
      for (let b = 0; b < B; b++) {
        let idx = -1;
        for (let t = 0; t < T; t++) if (mask[b * T + t] === 1) idx = t;
        if (idx < 0) throw new Error(`reward model: row ${b} is all padding`);
        last[b * T + idx] = 1;
      }
      return tf.sum(tf.mul(perToken, tf.tensor2d(last, [B, T])), 1) as tf.Tensor1D;
    });
  }

  /** The backbone's trainable variables except an (unused) LM head, and the score head. */
  trainableVariables(): tf.Variable[] {
    const head = this.backbone.params.get('lm_head.weight');
    return [...this.backbone.trainableVariables().filter((v) => v !== head), this.score];
  }

  /** Scores token rows in batches (no gradient). */
  scoreRows(rows: readonly TokenExample[], padTokenId: number, batchSize = 16): number[] {
    const out: number[] = [];
    for (let i = 0; i < rows.length; i += batchSize) {
      const batch = toTensors(buildBatch(rows.slice(i, i + batchSize), { padTokenId }));
      const r = this.rewards(batch.inputIds, batch.attentionMask);
      out.push(...r.dataSync());
      tf.dispose([r, ...Object.values(batch)]);
    }
    return out;
  }

  /** Writes config.json (a *ForSequenceClassification with num_labels 1) and model.safetensors. */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const state = stateDict(this.backbone);
    state.delete('lm_head.weight');
    state.set('score.weight', {
      shape: [1, this.backbone.config.hiddenSize],
      data: this.score.dataSync() as Float32Array,
    });
    await saveSafetensors(join(dir, 'model.safetensors'), state);
    const raw = { ...this.backbone.config.raw };
    const arch =
      (raw.architectures as string[] | undefined)?.[0]?.replace(/ForCausalLM$|LMHeadModel$/, '') ??
      this.backbone.config.modelType;
    await writeJsonAtomic(join(dir, 'config.json'), {
      ...raw,
      architectures: [`${arch}ForSequenceClassification`],
      num_labels: 1,
    });
  }

  /** Loads a directory written by `save` (backbone weights + `score.weight`). */
  static async load(dir: string): Promise<RewardModel> {
    const path = join(dir, 'config.json');
    const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    // The LM head is not part of a reward model: load the backbone as if it were tied.
    const config = { ...parseModelConfig(raw, path), tieWordEmbeddings: true };
    const expected = parameterShapes(config);
    const params = new Map<string, tf.Variable>();
    let score: tf.Variable | undefined;
    for (const f of (await modelWeightFiles(dir)).files) {
      const header = await readHeader(f);
      await readTensors(header, (name, t) => {
        if (name === 'score.weight') {
          score = tf.variable(tf.tensor(t.data, t.shape), true);
          return;
        }
        if (isIgnorableBuffer(name, config)) return;
        if (!expected.has(name))
          throw new Error(`${f}: unexpected tensor '${name}' in a reward model`);
        params.set(name, tf.variable(tf.tensor(t.data, t.shape), true));
      });
    }
    if (!score) throw new Error(`${dir}: no 'score.weight' (not a reward model directory)`);
    return new RewardModel(new CausalLM(config, params), score);
  }

  dispose(): void {
    this.backbone.dispose();
    this.score.dispose();
  }
}

/** A RewardFn over texts from a saved reward model (plain prompt + response, memoized). */
export async function rewardFnFromModel(
  dir: string,
): Promise<{ reward: RewardFn; dispose: () => void }> {
  const rm = await RewardModel.load(resolve(dir));
  const tok = await loadTokenizer(resolve(dir));
  const memo = new Map<string, number>();
  const reward: RewardFn = (prompt, response) => {
    const key = `${prompt}\u0000${response}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const row = {
      prompt: [
        ...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []),
        ...tok.encode(prompt, { addSpecialTokens: false }),
      ],
      response: [
        ...tok.encode(response, { addSpecialTokens: false }),
        ...(tok.eosTokenId !== undefined ? [tok.eosTokenId] : []),
      ],
    };
    const v = rm.scoreRows([row], tok.padTokenId ?? 0)[0]!;
    memo.set(key, v);
    return v;
  };
  return { reward, dispose: () => rm.dispose() };
}

export interface RewardTrainConfig {
  model: string;
  train: string;
  eval?: string;
  output: string;
  learningRate: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  maxSteps: number;
  epochs: number;
  schedule: Schedule;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  seed: number;
  logSteps: number;
  evalSteps: number;
  saveSteps: number;
  saveTotalLimit: number;
  /** TRL RewardConfig's `max_length` (1024): pairs with a longer row are dropped, as TRL filters them */
  maxLength: number;
  /** TRL 0.x's `max_prompt_length` (unset by default): the prompt is cut to it first */
  maxPromptLength?: number;
}

export function parseRewardTrainConfig(raw: unknown, source = 'config'): RewardTrainConfig {
  const r = new ConfigReader(source, raw);
  const str = (f: string, required: boolean) => stringField(r, raw, f, required);
  const cfg: RewardTrainConfig = {
    model: str('model', false) ?? 'builtin:tiny',
    train: str('train', true)!,
    eval: str('eval', false),
    output: str('output', true)!,
    learningRate: r.number('learningRate', 1e-4, { gt: 0 }),
    batchSize: r.number('batchSize', 8, { min: 1, integer: true }),
    gradientAccumulationSteps: r.number('gradientAccumulationSteps', 1, { min: 1, integer: true }),
    maxSteps: r.number('maxSteps', 0, { min: 0, integer: true }),
    epochs: r.number('epochs', 1, { min: 1, integer: true }),
    schedule: r.oneOf('schedule', 'linear', ['constant', 'linear', 'cosine'] as const),
    warmupSteps: r.number('warmupSteps', 0, { min: 0, integer: true }),
    weightDecay: r.number('weightDecay', 0, { min: 0 }),
    maxGradNorm: r.number('maxGradNorm', 1, { min: 0 }),
    seed: r.number('seed', 42, { integer: true }),
    logSteps: r.number('logSteps', 1, { min: 1, integer: true }),
    evalSteps: r.number('evalSteps', 0, { min: 0, integer: true }),
    saveSteps: r.number('saveSteps', 0, { min: 0, integer: true }),
    saveTotalLimit: r.number('saveTotalLimit', 0, { min: 0, integer: true }),
    maxLength: r.number('maxLength', 1024, { min: 2, integer: true }),
    maxPromptLength: r.optionalNumber('maxPromptLength', { min: 1, integer: true }),
  };
  r.mark('model', 'train', 'eval', 'output');
  r.done();
  return cfg;
}

export interface RewardTrainResult {
  steps: number;
  /** per optimizer step; `metrics['rm/accuracy']` on logging steps */
  history: StepRecord[];
  evalAccuracy?: number;
  outputDir: string;
}

const pairRows = (batch: readonly TokenizedExample[]): TokenExample[] => [
  ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[0]! })),
  ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[1]! })),
];

/**
 * `alignjs train-rm`: trains a Bradley–Terry reward model (`−logσ(r_w − r_l)`) on pairwise
 * data with the shared loop (accumulation, schedule, clipping, finite guard, checkpoints
 * and `resumeFrom`), and saves it as a Hugging Face directory in `<output>/final`.
 */
export async function trainRewardModel(
  c: RewardTrainConfig,
  options: { logger?: Logger; resumeFrom?: string } = {},
): Promise<RewardTrainResult> {
  await initBackend();
  const log = options.logger ?? makeLogger(join(c.output, 'metrics.jsonl'));
  const dir = c.model === 'builtin:tiny' ? tinyModelDir() : resolve(c.model);
  const tok = await loadTokenizer(dir);
  const ds = await loadDataset(resolve(c.train));
  checkKind(ds, 'train-rm', ['pairwise']);
  // TRL 1.13's RewardTrainer tokenizes as its DPOTrainer does and drops (does not truncate)
  // pairs with a row longer than max_length.
  const tokenized = (d: typeof ds, file: string): TokenizedExample[] => {
    const all = tokenizeDataset(d, tok, { maxPromptLength: c.maxPromptLength }).examples;
    const kept = all.filter((e) =>
      e.responses.every((r) => e.prompt.length + r.length <= c.maxLength),
    );
    if (kept.length < all.length)
      log.event({
        event: 'dropped_examples',
        file,
        lines: all.filter((e) => !kept.includes(e)).map((e) => e.line),
        reason: `a row is longer than maxLength ${c.maxLength} (TRL's RewardTrainer drops these too)`,
      });
    return kept;
  };
  const examples = tokenized(ds, c.train);
  let evalExamples: TokenizedExample[] = [];
  if (c.eval) {
    const evalDs = await loadDataset(resolve(c.eval));
    checkKind(evalDs, 'train-rm', ['pairwise']);
    evalExamples = tokenized(evalDs, c.eval);
  }
  const order = permutation(examples.length, c.seed);
  const batches: TokenizedExample[][] = [];
  for (let i = 0; i < order.length; i += c.batchSize)
    batches.push(order.slice(i, i + c.batchSize).map((k) => examples[k]!));
  if (!batches.length) throw new Error(`${c.train}: no training examples`);
  await removeStaleTemp(c.output);
  const rm = options.resumeFrom
    ? await RewardModel.load(options.resumeFrom)
    : RewardModel.fromModel(await loadModel(dir), c.seed);
  const vars = rm.trainableVariables();
  const opt = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay });
  const pad = tok.padTokenId ?? 0;
  const state: LoopState & { evalAccuracy?: number } = {
    step: 0,
    epoch: 0,
    batchInEpoch: 0,
    history: [],
  };
  if (options.resumeFrom) {
    const s = await readTrainerState<
      LoopState & { optimizerStep: number; config: RewardTrainConfig }
    >(options.resumeFrom);
    checkResumeConfig(options.resumeFrom, s.config, c);
    await restoreOptimizer(join(options.resumeFrom, 'optimizer.safetensors'), opt, s.optimizerStep);
    Object.assign(state, {
      step: s.step,
      epoch: s.epoch,
      batchInEpoch: s.batchInEpoch,
      history: s.history,
    });
    await truncateMetrics(join(c.output, 'metrics.jsonl'), s.step);
    log.event({ event: 'resume', step: s.step, dir: options.resumeFrom });
  }
  const saveModelDir = async (to: string) => {
    await rm.save(to);
    for (const f of await readdir(dir))
      if (f.startsWith('tokenizer') || f === 'special_tokens_map.json')
        await copyFile(join(dir, f), join(to, f));
  };
  const evaluate = () => {
    if (!evalExamples.length) return undefined;
    const w = rm.scoreRows(
      evalExamples.map((e) => ({ prompt: e.prompt, response: e.responses[0]! })),
      pad,
    );
    const l = rm.scoreRows(
      evalExamples.map((e) => ({ prompt: e.prompt, response: e.responses[1]! })),
      pad,
    );
    const acc = w.filter((v, i) => v > l[i]!).length / w.length;
    log.event({ event: 'eval', step: state.step, 'rm/accuracy': acc });
    return acc;
  };
  const settings = loopSettings(c, batches.length);
  try {
    await runLoop(
      {
        ...settings,
        optimizer: opt,
        log,
        microStep: (index) => {
          const tokens = toTensors(buildBatch(pairRows(batches[index]!), { padTokenId: pad }));
          try {
            return tf.tidy(() => {
              const r = rm.rewards(tokens.inputIds, tokens.attentionMask);
              const [w, l] = tf.split(r, 2) as [tf.Tensor1D, tf.Tensor1D];
              return {
                loss: tf.neg(tf.mean(logSigmoid(tf.sub(w, l)))) as tf.Scalar,
                metrics: {
                  'rm/accuracy': tf.mean(tf.cast(tf.greater(w, l), 'float32')) as tf.Scalar,
                  'rm/margin': tf.mean(tf.sub(w, l)) as tf.Scalar,
                },
              };
            }) as never;
          } finally {
            tf.dispose(Object.values(tokens));
          }
        },
        hooks: {
          onEval: () => {
            state.evalAccuracy = evaluate();
          },
          onSave: async (s) => {
            const ckpt = join(c.output, `checkpoint-${s.step}`);
            await writeDirAtomic(ckpt, async (tmp) => {
              await saveModelDir(tmp);
              await saveOptimizer(join(tmp, 'optimizer.safetensors'), opt);
              await writeTrainerState(tmp, {
                step: s.step,
                epoch: s.epoch,
                batchInEpoch: s.batchInEpoch,
                optimizerStep: opt.step,
                config: c,
                history: s.history,
              });
            });
            log.event({ event: 'checkpoint', step: s.step, dir: ckpt });
            await pruneCheckpoints(c.output, c.saveTotalLimit);
          },
        },
      },
      state,
    );
    const evalAccuracy =
      c.evalSteps > 0 && state.step % c.evalSteps === 0 ? state.evalAccuracy : evaluate();
    const outputDir = join(c.output, 'final');
    await writeDirAtomic(outputDir, saveModelDir);
    return { steps: state.step, history: state.history, evalAccuracy, outputDir };
  } finally {
    opt.dispose();
    rm.dispose();
  }
}
