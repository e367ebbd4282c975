/**
 * Bradley–Terry reward models: a causal LM backbone and a scalar head on the last real
 * token (`score.weight [1, E]`, as transformers' *ForSequenceClassification), trained with
 * `−logσ(r_w − r_l)` on pairwise data. Saved as a Hugging Face directory.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  buildBatch,
  ConfigReader,
  initBackend,
  logSigmoid,
  permutation,
  toTensors,
} from '@alignjs/core-logprob';
import { type PreferenceFn, scoreJudge } from '@alignjs/eval';
import {
  CausalLM,
  HfTokenizer,
  isIgnorableBuffer,
  loadModel,
  modelWeightFiles,
  parameterShapes,
  parseModelConfig,
  readHeader,
  readTensors,
  saveSafetensors,
  stateDict,
  tinyModelDir,
  writeJsonAtomic,
} from '@alignjs/models';
import * as tf from '@tensorflow/tfjs-core';
import { checkKind, loadDataset } from './data.js';
import type { RewardFn } from './features.js';
import { type Logger, makeLogger } from './log.js';
import { AdamW, clipByGlobalNorm } from './optim.js';
import type { Row } from './tokenize.js';
import { tokenizeDataset } from './tokenize.js';

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
      const mask = attentionMask.dataSync();
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
  scoreRows(rows: Row[], padTokenId: number, batchSize = 16): number[] {
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
  const tok = await HfTokenizer.fromDir(resolve(dir));
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
  maxSteps: number;
  epochs: number;
  seed: number;
  maxLength: number;
  maxPromptLength: number;
}

export function parseRewardTrainConfig(raw: unknown, source = 'config'): RewardTrainConfig {
  const r = new ConfigReader(source, raw);
  const obj = (raw ?? {}) as Record<string, unknown>;
  const str = (f: string, required: boolean) => {
    const v = obj[f];
    if (v === undefined) {
      if (required) r.fail(f, 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v === '')
      r.fail(f, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return v as string;
  };
  const cfg: RewardTrainConfig = {
    model: str('model', false) ?? 'builtin:tiny',
    train: str('train', true)!,
    eval: str('eval', false),
    output: str('output', true)!,
    learningRate: r.number('learningRate', 1e-4, { gt: 0 }),
    batchSize: r.number('batchSize', 8, { min: 1, integer: true }),
    maxSteps: r.number('maxSteps', 0, { min: 0, integer: true }),
    epochs: r.number('epochs', 1, { min: 1, integer: true }),
    seed: r.number('seed', 42, { integer: true }),
    maxLength: r.number('maxLength', 512, { min: 2, integer: true }),
    maxPromptLength: r.number('maxPromptLength', 256, { min: 1, integer: true }),
  };
  r.mark('model', 'train', 'eval', 'output');
  r.done();
  return cfg;
}

export interface RewardTrainResult {
  steps: number;
  history: { step: number; loss: number; accuracy: number }[];
  evalAccuracy?: number;
  outputDir: string;
}

/** `alignjs train-rm`: trains a Bradley–Terry reward model on pairwise data and saves it. */
export async function trainRewardModel(
  c: RewardTrainConfig,
  logger?: Logger,
): Promise<RewardTrainResult> {
  await initBackend();
  const log = logger ?? makeLogger(join(c.output, 'metrics.jsonl'));
  const dir = c.model === 'builtin:tiny' ? tinyModelDir() : resolve(c.model);
  const tok = await HfTokenizer.fromDir(dir);
  const ds = await loadDataset(resolve(c.train));
  checkKind(ds, 'train-rm', ['pairwise']);
  const opts = { maxLength: c.maxLength, maxPromptLength: c.maxPromptLength };
  const examples = tokenizeDataset(ds, tok, opts).examples;
  const evalExamples = c.eval
    ? tokenizeDataset(await loadDataset(resolve(c.eval)), tok, opts).examples
    : [];
  const rm = RewardModel.fromModel(await loadModel(dir), c.seed);
  const vars = rm.trainableVariables();
  const opt = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  const pad = tok.padTokenId ?? 0;
  const pairBatch = (batch: typeof examples) =>
    toTensors(
      buildBatch(
        [
          ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[0]! })),
          ...batch.map((e) => ({ prompt: e.prompt, response: e.responses[1]! })),
        ],
        { padTokenId: pad },
      ),
    );
  const nb = Math.ceil(examples.length / c.batchSize);
  const total = c.maxSteps > 0 ? c.maxSteps : nb * c.epochs;
  const history: RewardTrainResult['history'] = [];
  for (let step = 0; step < total; step++) {
    const epoch = Math.floor(step / nb);
    const order = permutation(examples.length, c.seed + epoch);
    const k = step % nb;
    const batch = order.slice(k * c.batchSize, (k + 1) * c.batchSize).map((i) => examples[i]!);
    const tokens = pairBatch(batch);
    let acc = 0;
    const { value, grads } = tf.variableGrads(() => {
      const r = rm.rewards(tokens.inputIds, tokens.attentionMask);
      const [w, l] = tf.split(r, 2) as [tf.Tensor1D, tf.Tensor1D];
      acc = tf.tidy(() => tf.mean(tf.cast(tf.greater(w, l), 'float32')).dataSync()[0]!);
      return tf.neg(tf.mean(logSigmoid(tf.sub(w, l)))) as tf.Scalar;
    }, vars);
    const { grads: clipped } = clipByGlobalNorm(
      vars.map((v) => grads[v.name]!),
      1,
    );
    opt.apply(clipped, c.learningRate);
    const loss = value.dataSync()[0]!;
    tf.dispose([value, ...clipped, ...Object.values(tokens)]);
    if (!Number.isFinite(loss)) throw new Error(`train-rm: non-finite loss at step ${step + 1}`);
    history.push({ step: step + 1, loss, accuracy: acc });
    log.event({ event: 'step', step: step + 1, loss, 'rm/accuracy': acc });
    log.progress('train-rm', step + 1, total);
  }
  log.done();
  let evalAccuracy: number | undefined;
  if (evalExamples.length) {
    const w = rm.scoreRows(
      evalExamples.map((e) => ({ prompt: e.prompt, response: e.responses[0]! })),
      pad,
    );
    const l = rm.scoreRows(
      evalExamples.map((e) => ({ prompt: e.prompt, response: e.responses[1]! })),
      pad,
    );
    evalAccuracy = w.filter((v, i) => v > l[i]!).length / w.length;
    log.event({ event: 'eval', 'rm/accuracy': evalAccuracy });
  }
  const outputDir = join(c.output, 'final');
  await rm.save(outputDir);
  const { copyFile, readdir } = await import('node:fs/promises');
  for (const f of await readdir(dir))
    if (f.startsWith('tokenizer')) await copyFile(join(dir, f), join(outputDir, f));
  opt.dispose();
  rm.dispose();
  return { steps: total, history, evalAccuracy, outputDir };
}

/**
 * A local judge from a saved reward model, for `@alignjs/eval`'s `annotateLocal`: the
 * answer with the higher reward wins (AlpacaEval preference 2 = model, 1 = reference).
 */
export async function rewardModelJudge(
  dir: string,
): Promise<{ prefer: PreferenceFn; dispose: () => void }> {
  const { reward, dispose } = await rewardFnFromModel(dir);
  return { prefer: scoreJudge(reward), dispose };
}
