/**
 * The policy trainer: loads the model, data and objective, checks everything before any
 * work, plans every fixed batch once (rewards, layout data, reference log-probs attached),
 * then runs the shared optimizer loop (`loop.ts`) with the micro-step below.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type BackendInfo,
  buildBatch,
  initBackend,
  type LayoutPlan,
  type LossOutput,
  type Objective,
  type ObjectiveNeeds,
  permutation,
  readLoss,
  sequenceLogprobs,
  type TokenExample,
  toTensors,
} from '@alignjs/core-logprob';
import { cacheKey, RefLogpCache, writeFileAtomic } from '@alignjs/core-logprob/cache';
import {
  addLora,
  type CausalLM,
  generate,
  type HfTokenizer,
  loadLora,
  loadModel,
  loadSafetensors,
  loadTokenizer,
  saveLora,
  saveModel,
  saveSafetensors,
  tinyModelDir,
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
import { checkResumeConfig, type TrainConfig } from './config.js';
import { checkKind, type Dataset } from './data.js';
import { loadDataset, loadPrompts } from './data-files.js';
import { type Logger, makeLogger, type StepRecord } from './log.js';
import {
  type LoopHooks,
  type LoopState,
  loopSettings,
  type MicroStepOutput,
  NonFiniteError,
  runLoop,
  totalStepsOf,
} from './loop.js';
import { createOptimizer, type Optimizer, resolveOptimizer } from './optim.js';
import { scoreRows, weightsFingerprint } from './reference.js';
import { trainingReport } from './report.js';
import { rewardFnFromModel } from './reward-model.js';
import { planBatch, type RewardFn } from './rewards.js';
import {
  checkSharedFirstToken,
  type TokenizedExample,
  type TokenizeResult,
  tokenizeDataset,
} from './tokenize.js';

export type { StepRecord };
export { NonFiniteError };

export interface TrainResult {
  steps: number;
  history: StepRecord[];
  evalHistory: { step: number; loss: number; metrics: Record<string, number> }[];
  finalDir: string;
  wallSeconds: number;
  truncated: number;
  backend: BackendInfo;
}

interface TrainerState extends LoopState {
  evalHistory: TrainResult['evalHistory'];
}

export interface TrainerOptions {
  logger?: Logger;
  /** rewards for (prompt, response) texts: required when the config names a `rewardModule` */
  reward?: RewardFn;
  /** called after the trainer's own work at each step, evaluation and save (TrainerCallback) */
  callbacks?: LoopHooks;
}

/**
 * Aligns a causal LM with an objective: `new Trainer(config).train()`. `config.objective`
 * carries the `Objective` itself (`@alignjs/cli` resolves names with its registry).
 * Batches are fixed once from the seed (so VAR's cross rows and KTO's mismatched pairs are
 * precomputable); each epoch visits them in a new seeded order.
 */
export class Trainer {
  readonly config: TrainConfig;
  private readonly log: Logger;
  policy?: CausalLM;
  tokenizer?: HfTokenizer;
  /** a separate reference model: a given `reference`, or a frozen copy for online/TR-DPO runs */
  private reference?: CausalLM;
  private objective?: Objective<object>;
  private objectiveConfig?: object;
  private needs?: ObjectiveNeeds;
  private reward?: RewardFn;
  private dataset?: Dataset;
  private trainBatches: TokenizedExample[][] = [];
  private evalBatches: TokenizedExample[][] = [];
  private truncated = 0;
  /** identity of the reference's weights (the cache key), `#sync-N` after TR-DPO syncs */
  private refId = '';
  private dataFingerprint = '';
  private readonly plans = new Map<TokenizedExample[], LayoutPlan>();
  /** the refId each plan's attached reference was computed under */
  private readonly planRef = new Map<LayoutPlan, string>();
  private online?: Map<number, LayoutPlan>;
  private disposeReward?: () => void;
  private readonly callbacks: LoopHooks;

  constructor(config: TrainConfig, options: TrainerOptions = {}) {
    this.config = config;
    this.log = options.logger ?? makeLogger(join(config.output, 'metrics.jsonl'));
    this.reward = options.reward;
    this.callbacks = options.callbacks ?? {};
  }

  private modelDir(): string {
    return this.config.model === 'builtin:tiny' ? tinyModelDir() : resolve(this.config.model);
  }

  /**
   * Loads models, data and the objective; validates everything before any training. Runs
   * once: later calls (and `train`'s own) return the first call's result.
   */
  setup(): Promise<BackendInfo> {
    this.setupOnce ??= this.load();
    return this.setupOnce;
  }

  private setupOnce?: Promise<BackendInfo>;

  private async load(): Promise<BackendInfo> {
    const info = await initBackend();
    const c = this.config;
    // refuses 'adamw_torch_fused' off the tensorflow backend before any work starts
    resolveOptimizer(c.optim, info.backend, 0);
    if (c.bf16 && info.backend !== 'tensorflow')
      throw new Error(
        `config: field 'bf16' needs the tensorflow backend (TensorFlow's bfloat16 matmuls; tfjs has no bfloat16); this run is on '${info.backend}': remove it (float32)`,
      );
    const spec = c.objective;
    if (!spec.objective)
      throw new Error(
        `config: objective '${spec.name}' is a name; the Trainer takes an Objective (@alignjs/cli's parseRunConfig resolves names with its registry)`,
      );
    this.objective = spec.objective;
    this.objectiveConfig = this.objective.parseConfig(withScoreRange(spec, c.scoreRange));
    const needs = this.objective.needs(this.objectiveConfig);
    this.needs = needs;
    if (!needs.reference && c.reference)
      throw new Error(
        `config: field 'reference' is set, but objective '${spec.name}' uses no reference model (remove it)`,
      );
    if (c.syncRefModel) {
      if (!needs.reference)
        throw new Error(
          `config: field 'syncRefModel' needs an objective with a reference model; '${spec.name}' has none`,
        );
      if (c.lora)
        throw new Error(
          "config: field 'syncRefModel' cannot be combined with 'lora' (as in TRL: the reference of a LoRA run is the base model with adapters off)",
        );
      if (c.online)
        throw new Error("config: field 'syncRefModel' is not supported for online runs");
    }
    if (c.rewardModule && !this.reward)
      throw new Error(
        `config: field 'rewardModule' (${c.rewardModule}) is loaded by the alignjs CLI; in code, pass the function as new Trainer(config, {reward})`,
      );
    if (c.online) {
      const cfg = this.objectiveConfig as { feedback?: string };
      if (this.objective.name !== 'una' || cfg.feedback !== 'score') {
        throw new Error(
          "online training runs UNA's score MSE: set objective {name: 'una', config: {feedback: 'score', …}}",
        );
      }
      const prompts = await loadPrompts(resolve(c.train));
      this.dataset = {
        path: c.train,
        kind: 'score',
        examples: prompts.map((p) => ({
          kind: 'score' as const,
          line: p.line,
          prompt: p.prompt,
          completion: 'x',
          score: 0,
        })),
      };
    } else {
      this.dataset = await loadDataset(resolve(c.train), c.scoreRange);
      checkKind(
        this.dataset,
        this.objective.name,
        this.objective.feedbackFor(this.objectiveConfig),
      );
    }
    if (!this.reward && c.rewardModel) {
      const rm = await rewardFnFromModel(c.rewardModel);
      this.reward = rm.reward;
      this.disposeReward = rm.dispose;
    }
    const dir = this.modelDir();
    this.tokenizer = await loadTokenizer(dir);
    this.policy = await loadModel(dir);
    if (needs.reference) {
      if (c.reference) this.reference = await loadModel(resolve(c.reference), { trainable: false });
      // Without a given reference, the reference is the starting policy: its log-probs are
      // computed before the first step, so only runs that need it later keep a frozen copy
      // (online sampling, TR-DPO mixing); a LoRA run uses the base with adapters off.
      else if ((c.online || c.syncRefModel) && !c.lora)
        this.reference = this.policy.clone({ trainable: false });
      if (c.syncRefModel) checkSameParams(this.policy, this.reference!);
      // bf16 reference log-probs are other numbers: cached under their own id
      this.refId = weightsFingerprint(this.reference ?? this.policy) + (c.bf16 ? '/bf16' : '');
    }
    this.policy.bf16 = c.bf16;
    if (this.reference) this.reference.bf16 = c.bf16;
    if (c.lora) addLora(this.policy, c.lora, c.seed);
    const tokOpts = {
      maxLength: c.maxLength ?? undefined,
      maxPromptLength: c.maxPromptLength,
      truncationMode: c.truncationMode,
      // RAO's partition estimate conditions on a first prompt token all prompts share
      keepFirstPromptToken: needs.promptLogps,
    };
    const tok = tokenizeDataset(this.dataset, this.tokenizer, tokOpts);
    this.reportTokenization(tok, c.train);
    if (needs.promptLogps && !c.online)
      checkSharedFirstToken(tok.examples, c.train, this.objective.name);
    this.truncated = tok.truncated;
    let examples = tok.examples;
    let evalExamples: TokenizedExample[] = [];
    if (c.eval) {
      const evalDs = await loadDataset(resolve(c.eval), c.scoreRange);
      checkKind(evalDs, this.objective.name, this.objective.feedbackFor(this.objectiveConfig));
      const ev = tokenizeDataset(evalDs, this.tokenizer, tokOpts);
      this.reportTokenization(ev, c.eval);
      evalExamples = ev.examples;
      if (needs.promptLogps) checkSharedFirstToken(evalExamples, c.eval, this.objective.name);
    } else if (c.evalFraction > 0) {
      const p = permutation(examples.length, c.seed + 1);
      const nEval = Math.max(1, Math.round(examples.length * c.evalFraction));
      evalExamples = p.slice(0, nEval).map((i) => examples[i]!);
      examples = p.slice(nEval).map((i) => examples[i]!);
    }
    const chunk = (xs: TokenizedExample[], seed: number) => {
      const order = permutation(xs.length, seed);
      const out: TokenizedExample[][] = [];
      for (let i = 0; i < order.length; i += c.batchSize)
        out.push(order.slice(i, i + c.batchSize).map((k) => xs[k]!));
      return out;
    };
    this.trainBatches = chunk(examples, c.seed);
    this.dataFingerprint = createHash('sha256')
      .update(
        JSON.stringify(
          [examples, evalExamples].map((xs) =>
            xs.map((e) => [e.prompt, e.responses, e.scores, e.label]),
          ),
        ),
      )
      .digest('hex');
    // Online runs have no fixed responses to evaluate on: their metric is the sampled reward.
    this.evalBatches = evalExamples.length && !c.online ? chunk(evalExamples, c.seed + 2) : [];
    if (this.trainBatches.length === 0) throw new Error(`${c.train}: no training examples`);
    // Scores outside the objective's declared range (PRO's default is [0, 1]) fail now.
    const range = (this.objectiveConfig as { scoreRange?: [number, number] }).scoreRange;
    if (range && needs.rewards && !this.reward && !c.online)
      for (const [file, xs] of [
        [c.train, examples],
        [c.eval ?? c.train, evalExamples],
      ] as const)
        for (const e of xs)
          for (const v of e.scores ?? [])
            if (!(v >= range[0] && v <= range[1]))
              throw new Error(
                `${file}:${e.line}: score ${v} is outside the objective's scoreRange [${range[0]}, ${range[1]}] (set scoreRange to the data's scale)`,
              );
    // Every batch planned now (rewards computed, data uploaded once): data the objective
    // cannot use fails here, naming the file and line, before the reference pass or any output.
    if (!c.online)
      for (const [file, batches] of [
        [c.train, this.trainBatches],
        [c.eval ?? c.train, this.evalBatches],
      ] as const)
        for (const b of batches) {
          try {
            this.plan(b);
          } catch (err) {
            const m = (err as Error).message;
            throw new Error(/^line \d+/.test(m) ? `${file}:${m.slice(5)}` : `${file}: ${m}`);
          }
        }
    this.log.event({
      event: 'setup',
      backend: info.backend,
      objective: this.objective.name,
      data: this.dataset.kind,
      examples: examples.length,
      evalExamples: evalExamples.length,
      truncated: this.truncated,
      batches: this.trainBatches.length,
    });
    return info;
  }

  /** A fixed batch's plan, made once (rewards, cross rewards and data tensors then). */
  /** TRL's dropped examples and boundary warnings, as events; nothing left to train on is an error. */
  private reportTokenization(t: TokenizeResult, file: string): void {
    const max = this.config.maxLength;
    if (t.dropped.length)
      this.log.event({
        event: 'dropped_examples',
        file,
        lines: t.dropped,
        reason: `the prompt alone fills maxLength ${max} under keep_start (TRL 1.13 drops these too)`,
      });
    if (t.boundaryMismatches)
      this.log.event({
        event: 'tokenization_boundary',
        file,
        rows: t.boundaryMismatches,
        note: 'prompt + response tokenized jointly does not start with the prompt ids; the response is the ids after the prompt length, as TRL 1.13 does',
      });
    if (!t.examples.length)
      throw new Error(
        `${file}: no example is left: every prompt alone fills maxLength ${max} (raise maxLength or use truncationMode keep_end)`,
      );
  }

  private plan(batch: TokenizedExample[]): LayoutPlan {
    let p = this.plans.get(batch);
    if (!p) {
      p = planBatch(batch, this.dataset!.kind, this.needs!, this.reward);
      this.plans.set(batch, p);
    }
    return p;
  }

  private referenceRows(p: LayoutPlan): readonly TokenExample[] {
    return [...p.rows, ...(p.crossRows ?? [])];
  }

  /** Attaches reference values to a plan from per-row numbers (rows, then cross rows). */
  private attach(p: LayoutPlan, sum: Float32Array, prompt: Float32Array): void {
    const n = p.rows.length;
    p.setReference({
      sum: sum.subarray(0, n),
      prompt: prompt.subarray(0, n),
      ...(p.crossRows ? { cross: sum.subarray(n) } : {}),
    });
    this.planRef.set(p, this.refId);
  }

  private scoreReference(rows: readonly TokenExample[], label?: string) {
    return scoreRows(this.reference ?? this.policy!, rows, {
      padTokenId: this.tokenizer!.padTokenId ?? 0,
      batchSize: this.config.batchSize,
      ...(label ? { onProgress: (d, t) => this.log.progress(label, d, t) } : {}),
    });
  }

  /**
   * Runs the frozen reference once over every row the objective will need (including VAR's
   * B×B cross rows and KTO's mismatched pairs), through the on-disk cache keyed by the
   * reference's weights and the rows' token ids, and attaches the numbers to each batch.
   */
  async precomputeReference(): Promise<{ rows: number; computed: number }> {
    if (!this.needs!.reference) return { rows: 0, computed: 0 };
    const cachePath = this.config.refCache ?? join(this.config.output, 'ref-logps.json');
    const cache = await RefLogpCache.open(cachePath, this.refId, { replaceOther: true });
    const plans = [...this.trainBatches, ...this.evalBatches].map((b) => this.plan(b));
    const rows = plans.flatMap((p) => this.referenceRows(p));
    const key = (r: TokenExample) => cacheKey(this.refId, r);
    const todo = new Map<string, TokenExample>();
    for (const r of rows) if (!cache.get(key(r))) todo.set(key(r), r);
    const unique = [...todo.values()];
    const got = this.scoreReference(unique, 'reference');
    unique.forEach((r, k) => {
      cache.set(key(r), {
        responseSum: got.sum[k]!,
        responseLength: r.response.length,
        promptSum: got.prompt[k]!,
        promptLength: r.prompt.length,
      });
    });
    await cache.save();
    for (const p of plans) {
      const rs = this.referenceRows(p);
      const e = rs.map((r) => cache.require(key(r)));
      this.attach(
        p,
        Float32Array.from(e, (x) => x.responseSum),
        Float32Array.from(e, (x) => x.promptSum ?? 0),
      );
    }
    return { rows: rows.length, computed: unique.length };
  }

  /** A plan whose attached reference is current (recomputed after a TR-DPO sync). */
  private current(p: LayoutPlan): LayoutPlan {
    if (this.needs!.reference && this.planRef.get(p) !== this.refId) {
      const got = this.scoreReference(this.referenceRows(p));
      this.attach(p, got.sum, got.prompt);
    }
    return p;
  }

  /** One micro-batch: the policy's log-probs of the plan's rows, assembled, through the loss. */
  private batchLoss(p: LayoutPlan, training: boolean): LossOutput {
    const tokens = toTensors(buildBatch(p.rows, { padTokenId: this.tokenizer!.padTokenId ?? 0 }));
    try {
      return tf.tidy(() => {
        const lp = sequenceLogprobs(
          training ? this.policy!.callTraining : this.policy!.call,
          tokens,
          { wpo: this.needs!.wpoWeights === true },
        );
        const inputs = p.assemble({
          sum: lp.responseSum,
          prompt: lp.promptSum,
          ...(lp.responseWpoMean ? { wpo: lp.responseWpoMean } : {}),
        });
        return this.objective!.loss(inputs, this.objectiveConfig!) as never;
      }) as LossOutput;
    } finally {
      tf.dispose(Object.values(tokens));
    }
  }

  /**
   * Online UNA (una.txt section 3.1.2): samples `samplesPerPrompt` responses per prompt from
   * the current policy, scores them with the reward function or model, and plans them as
   * score examples with their reference log-probs. Adds `online/reward_mean`.
   */
  private sampleOnline(prompts: TokenizedExample[], step: number): LayoutPlan {
    const o = this.config.online!;
    const tok = this.tokenizer!;
    const ids = prompts.flatMap((p) => Array.from({ length: o.samplesPerPrompt }, () => p.prompt));
    const g = generate(this.policy!, ids, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      seed: this.config.seed + 7919 * (step + 1),
      stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
      decode: (x) => tok.decode(x),
    });
    const examples = ids.map((prompt, n) => {
      const src = prompts[Math.floor(n / o.samplesPerPrompt)]!;
      const response = g.ids[n]!.length ? g.ids[n]! : [tok.eosTokenId ?? 0];
      const text = g.texts![n]!.trim();
      return {
        kind: 'score' as const,
        line: src.line,
        prompt,
        responses: [response],
        scores: [this.reward!(src.promptText, text)],
        promptText: src.promptText,
        responseTexts: [text],
      };
    });
    const p = planBatch(examples, 'score', this.needs!);
    const got = this.scoreReference(p.rows);
    this.attach(p, got.sum, got.prompt);
    this.onlineReward = examples.reduce((s, e) => s + e.scores[0]!, 0) / examples.length;
    return p;
  }
  private onlineReward = 0;

  /**
   * TR-DPO (TRL `sync_ref_model`): `π_ref ← α·π_θ + (1 − α)·π_ref` (α = `refModelMixupAlpha`)
   * every `refModelSyncSteps` optimizer steps. Attached reference log-probs no longer hold
   * after a sync; each batch's are recomputed when it is next used.
   */
  private syncReference(step: number): void {
    const a = this.config.refModelMixupAlpha;
    for (const [name, ref] of this.reference!.params) {
      const p = this.policy!.params.get(name)!;
      tf.tidy(() => ref.assign(tf.add(tf.mul(p, a), tf.mul(ref, 1 - a))));
    }
    this.refId = `${this.refId.replace(/#sync-\d+$/, '')}#sync-${step}`;
    this.log.event({ event: 'sync_ref_model', step, alpha: a });
  }

  private referenceState(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.reference!.params)
      out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  /** A synced reference as the checkpoint saved it (its log-probs are recomputed as needed). */
  private async restoreReference(dir: string, refId: string | undefined): Promise<void> {
    const file = join(dir, 'reference.safetensors');
    const saved = await loadSafetensors(file).catch(() => {
      throw new Error(
        `${file}: missing (a checkpoint of a syncRefModel run carries the reference)`,
      );
    });
    for (const [name, v] of this.reference!.params) {
      const t = saved.get(name);
      if (!t) throw new Error(`${file}: missing tensor '${name}'`);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape)));
    }
    if (refId) this.refId = refId;
  }

  /** Mean loss and metrics over the held-out batches (no gradients). */
  evaluate(): { loss: number; metrics: Record<string, number> } | undefined {
    if (!this.evalBatches.length) return undefined;
    let loss = 0;
    const sums: Record<string, number> = {};
    for (const b of this.evalBatches) {
      const r = readLoss(this.batchLoss(this.current(this.plan(b)), false));
      loss += r.loss;
      for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
    }
    const n = this.evalBatches.length;
    return {
      loss: loss / n,
      metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])),
    };
  }

  get totalSteps(): number {
    return totalStepsOf(this.config, this.trainBatches.length);
  }

  /** Trains to the end (or from `resumeFrom`, a checkpoint directory) and saves the final model. */
  async train(options: { resumeFrom?: string } = {}): Promise<TrainResult> {
    const started = performance.now();
    const info = await this.setup();
    const c = this.config;
    await removeStaleTemp(c.output);
    if (!c.online) await this.precomputeReference();
    const vars = this.policy!.trainableVariables();
    const optim = resolveOptimizer(
      c.optim,
      info.backend,
      vars.reduce((n, v) => n + v.size, 0),
    );
    this.log.event({ event: 'optimizer', optim });
    const opt = createOptimizer(optim, vars, {
      beta1: c.adamBeta1,
      beta2: c.adamBeta2,
      eps: c.adamEpsilon,
      weightDecay: c.weightDecay,
    });
    const state: TrainerState = {
      step: 0,
      epoch: 0,
      batchInEpoch: 0,
      history: [],
      evalHistory: [],
    };
    if (options.resumeFrom) await this.restore(options.resumeFrom, opt, state);
    if (c.online) this.online = new Map();
    try {
      await runLoop(
        {
          ...loopSettings(c, this.trainBatches.length),
          optimizer: opt,
          log: this.log,
          beforeMicroStep: (index, s) => {
            if (this.online)
              this.online.set(index, this.sampleOnline(this.trainBatches[index]!, s.step));
            else this.current(this.plan(this.trainBatches[index]!));
          },
          microStep: (index) => {
            const online = this.online?.get(index);
            const out = this.batchLoss(online ?? this.plan(this.trainBatches[index]!), true);
            if (online) {
              online.dispose();
              this.online!.delete(index);
              out.metrics['online/reward_mean'] = tf.scalar(this.onlineReward);
            }
            return out as MicroStepOutput;
          },
          hooks: {
            onStep: async (r, s) => {
              if (c.syncRefModel && s.step % c.refModelSyncSteps === 0) this.syncReference(s.step);
              await this.callbacks.onStep?.(r, s);
            },
            onEval: async (s) => {
              this.recordEval(state);
              await this.callbacks.onEval?.(s);
            },
            onSave: async (s) => {
              await this.saveCheckpoint(opt, state);
              await this.callbacks.onSave?.(s);
            },
          },
        },
        state,
      );
    } catch (err) {
      opt.dispose();
      throw err;
    }
    if (this.evalBatches.length && (c.evalSteps === 0 || state.step % c.evalSteps !== 0))
      this.recordEval(state);
    await this.saveCheckpoint(opt, state);
    await writeFileAtomic(
      join(c.output, 'report.html'),
      trainingReport(this.objective!.name, c, state),
    );
    const finalDir = join(c.output, 'final');
    await writeDirAtomic(finalDir, (tmp) => this.saveModelFiles(tmp));
    opt.dispose();
    return {
      steps: state.step,
      history: state.history,
      evalHistory: state.evalHistory,
      finalDir,
      wallSeconds: (performance.now() - started) / 1000,
      truncated: this.truncated,
      backend: info,
    };
  }

  private recordEval(state: TrainerState): void {
    const e = this.evaluate();
    if (!e) return;
    state.evalHistory.push({ step: state.step, ...e });
    this.log.event({ event: 'eval', step: state.step, loss: e.loss, ...e.metrics });
  }

  /** Writes `checkpoint-<step>` atomically: a temp directory renamed into place. */
  async saveCheckpoint(opt: Optimizer, state: TrainerState): Promise<string> {
    const dir = join(this.config.output, `checkpoint-${state.step}`);
    await writeDirAtomic(dir, async (tmp) => {
      await this.saveModelFiles(tmp);
      await saveOptimizer(join(tmp, 'optimizer.safetensors'), opt);
      if (this.config.syncRefModel)
        await saveSafetensors(join(tmp, 'reference.safetensors'), this.referenceState());
      await writeTrainerState(tmp, {
        step: state.step,
        epoch: state.epoch,
        batchInEpoch: state.batchInEpoch,
        optimizerStep: opt.step,
        seed: this.config.seed,
        config: this.config,
        dataFingerprint: this.dataFingerprint,
        ...(this.config.syncRefModel ? { refId: this.refId } : {}),
        history: state.history,
        evalHistory: state.evalHistory,
      });
    });
    this.log.event({ event: 'checkpoint', step: state.step, dir });
    await pruneCheckpoints(this.config.output, this.config.saveTotalLimit);
    return dir;
  }

  /** Weights (or adapters) plus what `AutoTokenizer` and generation need, into `dir`. */
  private async saveModelFiles(dir: string): Promise<void> {
    if (this.policy!.lora.size) await saveLora(this.policy!, dir, this.modelDir());
    else await saveModel(this.policy!, dir);
    for (const f of await readdir(this.modelDir())) {
      if (f === 'additional_chat_templates')
        await cp(join(this.modelDir(), f), join(dir, f), { recursive: true });
      else if (
        f.startsWith('tokenizer') ||
        f === 'special_tokens_map.json' ||
        f === 'chat_template.jinja' ||
        f === 'generation_config.json'
      )
        await copyFile(join(this.modelDir(), f), join(dir, f));
    }
    // transformers' save_pretrained writes generation_config.json from the model config when
    // the model has none (GenerationConfig.from_model_config); so do we.
    if (!existsSync(join(dir, 'generation_config.json'))) {
      const c = this.policy!.config;
      await writeFile(
        join(dir, 'generation_config.json'),
        `${JSON.stringify(
          {
            _from_model_config: true,
            ...(c.bosTokenId !== undefined ? { bos_token_id: c.bosTokenId } : {}),
            ...(c.eosTokenId !== undefined ? { eos_token_id: c.eosTokenId } : {}),
            ...(c.padTokenId !== undefined ? { pad_token_id: c.padTokenId } : {}),
          },
          null,
          2,
        )}\n`,
      );
    }
  }

  private async restore(dir: string, opt: Optimizer, state: TrainerState): Promise<void> {
    const s = await readTrainerState<
      TrainerState & {
        optimizerStep: number;
        seed: number;
        refId?: string;
        config?: TrainConfig;
        dataFingerprint?: string;
      }
    >(dir);
    if (s.seed !== this.config.seed)
      throw new Error(
        `${dir}: checkpoint was made with seed ${s.seed}, this run has seed ${this.config.seed}`,
      );
    checkResumeConfig(dir, s.config, this.config);
    if (s.dataFingerprint && s.dataFingerprint !== this.dataFingerprint)
      throw new Error(
        `${dir}: the training data differ from the checkpoint's (another file, or the same file edited); resume with the data the run started with`,
      );
    await truncateMetrics(join(this.config.output, 'metrics.jsonl'), s.step);
    if (this.policy!.lora.size) {
      const adapters = await loadSafetensors(join(dir, 'adapter_model.safetensors'));
      for (const [name, m] of this.policy!.lora) {
        m.a.assign(
          tf.tensor(adapters.get(`base_model.model.${name}.lora_A.weight`)!.data, m.a.shape),
        );
        m.b.assign(
          tf.tensor(adapters.get(`base_model.model.${name}.lora_B.weight`)!.data, m.b.shape),
        );
      }
    } else {
      const saved = await loadModel(dir);
      for (const [k, v] of this.policy!.params) v.assign(saved.params.get(k)!);
      saved.dispose();
    }
    await restoreOptimizer(join(dir, 'optimizer.safetensors'), opt, s.optimizerStep);
    if (this.config.syncRefModel) await this.restoreReference(dir, s.refId);
    Object.assign(state, {
      step: s.step,
      epoch: s.epoch,
      batchInEpoch: s.batchInEpoch,
      history: s.history,
      evalHistory: s.evalHistory,
    });
    this.log.event({ event: 'resume', step: s.step, dir });
  }

  dispose(): void {
    for (const p of this.plans.values()) p.dispose();
    this.plans.clear();
    this.policy?.dispose();
    this.reference?.dispose();
    this.disposeReward?.();
  }
}

/**
 * The run's declared `scoreRange` reaches an objective that takes one (UNA's min-max
 * normalizer, PRO's scalar scores) unless its own config sets it.
 */
function withScoreRange(
  spec: TrainConfig['objective'],
  range: [number, number] | undefined,
): Record<string, unknown> {
  if (!range || spec.config.scoreRange !== undefined) return spec.config;
  const o = spec.objective!;
  try {
    o.parseConfig({ ...spec.config, scoreRange: range });
  } catch (err) {
    if ((err as Error).message.includes("unknown field 'scoreRange'")) return spec.config;
  }
  return { ...spec.config, scoreRange: range };
}

/** TR-DPO mixes the reference with the policy: both must have the same parameters. */
function checkSameParams(policy: CausalLM, reference: CausalLM): void {
  for (const [name, p] of policy.params) {
    const r = reference.params.get(name);
    if (!r || r.shape.join() !== p.shape.join())
      throw new Error(
        `config: field 'syncRefModel' needs a reference with the policy's parameters; '${name}' ${r ? `has shape [${r.shape}] vs [${p.shape}]` : 'is missing from the reference'}`,
      );
  }
}

export { loadLora };
