import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type BackendInfo,
  buildBatch,
  initBackend,
  type Objective,
  type ObjectiveNeeds,
  permutation,
  sequenceLogprobs,
  toTensors,
} from '@alignjs/core-logprob';
import { cacheKey, RefLogpCache, writeFileAtomic } from '@alignjs/core-logprob/cache';
import { type Chart, htmlTable, renderReport } from '@alignjs/eval';
import {
  addLora,
  type CausalLM,
  generate,
  HfTokenizer,
  loadLora,
  loadModel,
  loadSafetensors,
  saveLora,
  saveModel,
  saveSafetensors,
  tinyModelDir,
} from '@alignjs/models';
import * as tf from '@tensorflow/tfjs-core';
import { firstConfigDifference, RESUME_SAFE_FIELDS, type TrainConfig } from './config.js';
import { checkKind, type Dataset, loadDataset, loadPrompts } from './data.js';
import { type BatchPlan, planBatch, type RewardFn, type RowLogps } from './features.js';
import { type Logger, makeLogger, type StepRecord } from './log.js';
import { resolveObjective } from './objectives.js';
import {
  clipByGlobalNorm,
  createOptimizer,
  learningRateAt,
  type Optimizer,
  resolveOptimizer,
} from './optim.js';
import { rewardFnFromModel } from './reward-model.js';
import {
  checkSharedFirstToken,
  type Row,
  type TokenizedExample,
  tokenizeDataset,
} from './tokenize.js';

export type { StepRecord };

export interface TrainResult {
  steps: number;
  history: StepRecord[];
  evalHistory: { step: number; loss: number; metrics: Record<string, number> }[];
  finalDir: string;
  wallSeconds: number;
  truncated: number;
  backend: BackendInfo;
}

/** A run that stopped on a non-finite loss or gradient. */
export class NonFiniteError extends Error {
  constructor(
    readonly step: number,
    readonly lastFinite: StepRecord | undefined,
  ) {
    super(
      `non-finite loss or gradient at step ${step}; stopped without applying it. Last finite step: ${
        lastFinite
          ? `${lastFinite.step} (loss ${lastFinite.loss.toFixed(6)}, ${JSON.stringify(lastFinite.metrics)})`
          : 'none'
      }. The last checkpoint in the output directory is intact.`,
    );
    this.name = 'NonFiniteError';
  }
}

interface TrainerState {
  step: number;
  epoch: number;
  /** batches of the current epoch already consumed */
  batchInEpoch: number;
  history: StepRecord[];
  evalHistory: TrainResult['evalHistory'];
}

const sizeof = (rows: Row[]) => rows.length;

/**
 * Aligns a causal LM with any registered objective. `new Trainer(config).train()`.
 * Batches are fixed once from the seed (so VAR's cross rows and KTO's mismatched pairs are
 * precomputable); each epoch visits them in a new seeded order.
 */
export class Trainer {
  readonly config: TrainConfig;
  private readonly log: Logger;
  policy?: CausalLM;
  tokenizer?: HfTokenizer;
  private reference?: CausalLM;
  private objective?: Objective<object>;
  private objectiveConfig?: object;
  private needs?: ObjectiveNeeds;
  private reward?: RewardFn;
  private dataset?: Dataset;
  private trainBatches: TokenizedExample[][] = [];
  private evalBatches: TokenizedExample[][] = [];
  private truncated = 0;
  private refRows = new Map<string, { sum: number; prompt: number }>();
  private refId = '';
  private dataFingerprint = '';
  private readonly plans = new WeakMap<TokenizedExample[], BatchPlan>();
  private disposeReward?: () => void;

  constructor(config: TrainConfig, options: { logger?: Logger; reward?: RewardFn } = {}) {
    this.config = config;
    this.log = options.logger ?? makeLogger(join(config.output, 'metrics.jsonl'));
    this.reward = options.reward;
  }

  private modelDir(): string {
    return this.config.model === 'builtin:tiny' ? tinyModelDir() : resolve(this.config.model);
  }

  /** Loads models, data and the objective; validates everything before any training. */
  async setup(): Promise<BackendInfo> {
    const info = await initBackend();
    const c = this.config;
    const resolved = resolveObjective(withScoreRange(c.objective, c.scoreRange));
    this.objective = resolved.objective;
    this.objectiveConfig = resolved.config;
    this.needs = this.objective.needs(this.objectiveConfig);
    if (!this.needs.reference && c.reference)
      throw new Error(
        `config: field 'reference' is set, but objective '${c.objective.name}' uses no reference model (remove it)`,
      );
    if (c.syncRefModel) {
      if (!this.needs.reference)
        throw new Error(
          `config: field 'syncRefModel' needs an objective with a reference model; '${c.objective.name}' has none`,
        );
      if (c.lora)
        throw new Error(
          "config: field 'syncRefModel' cannot be combined with 'lora' (as in TRL: the reference of a LoRA run is the base model with adapters off)",
        );
      if (c.online)
        throw new Error("config: field 'syncRefModel' is not supported for online runs");
    }
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
    if (!this.reward && c.rewardModule)
      this.reward = await loadRewardModule(resolve(c.rewardModule));
    if (!this.reward && c.rewardModel) {
      const rm = await rewardFnFromModel(c.rewardModel);
      this.reward = rm.reward;
      this.disposeReward = rm.dispose;
    }
    const dir = this.modelDir();
    this.tokenizer = await HfTokenizer.fromDir(dir);
    this.policy = await loadModel(dir);
    if (this.needs.reference) {
      this.reference = c.reference
        ? await loadModel(resolve(c.reference), { trainable: false })
        : this.policy.clone({ trainable: false });
      if (c.syncRefModel) checkSameParams(this.policy, this.reference);
    }
    if (c.lora) addLora(this.policy, c.lora, c.seed);
    this.refId = `${c.reference ? resolve(c.reference) : dir}`;
    const tokOpts = {
      maxLength: c.maxLength,
      maxPromptLength: c.maxPromptLength,
      truncationMode: c.truncationMode,
      // RAO's partition estimate conditions on a first prompt token all prompts share
      keepFirstPromptToken: this.needs.promptLogps,
    };
    const tok = tokenizeDataset(this.dataset, this.tokenizer, tokOpts);
    if (this.needs.promptLogps && !c.online)
      checkSharedFirstToken(tok.examples, c.train, this.objective.name);
    this.truncated = tok.truncated;
    let examples = tok.examples;
    let evalExamples: TokenizedExample[] = [];
    if (c.eval) {
      const evalDs = await loadDataset(resolve(c.eval), c.scoreRange);
      checkKind(evalDs, this.objective.name, this.objective.feedbackFor(this.objectiveConfig));
      evalExamples = tokenizeDataset(evalDs, this.tokenizer, tokOpts).examples;
      if (this.needs.promptLogps) checkSharedFirstToken(evalExamples, c.eval, this.objective.name);
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
    if (range && this.needs.rewards && !this.reward && !c.online)
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
    // Every batch planned now: data the objective cannot use fails here, naming the file and
    // line, before the reference pass or any output.
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

  /** A batch's plan, made once per fixed batch (rewards and cross rewards computed then). */
  private plan(batch: TokenizedExample[]): BatchPlan {
    let p = this.plans.get(batch);
    if (!p) {
      p = planBatch(batch, this.dataset!.kind, this.needs!, this.reward);
      this.plans.set(batch, p);
    }
    return p;
  }

  /** Reference log-probs of rows, from the in-memory map (filled by `precomputeReference`). */
  private refFor(rows: Row[]): RowLogps {
    const got = rows.map((r) => {
      const v = this.refRows.get(cacheKey(this.refId, r));
      if (!v) throw new Error('internal: reference log-probs were not precomputed for a row');
      return v;
    });
    return {
      sum: tf.tensor1d(got.map((g) => g.sum)),
      prompt: tf.tensor1d(got.map((g) => g.prompt)),
    };
  }

  /**
   * Runs the frozen reference once over every row the objective will need (including VAR's
   * B×B cross rows and KTO's mismatched pairs), through the on-disk cache.
   */
  async precomputeReference(): Promise<{ rows: number; computed: number }> {
    if (!this.needs!.reference) return { rows: 0, computed: 0 };
    const cachePath = this.config.refCache ?? join(this.config.output, 'ref-logps.json');
    const cache = await RefLogpCache.open(cachePath, this.refId);
    const rows: Row[] = [];
    for (const b of [...this.trainBatches, ...this.evalBatches]) {
      const plan = this.plan(b);
      rows.push(...plan.rows, ...(plan.crossRows ?? []));
    }
    const todo = rows.filter((r) => !cache.get(cacheKey(this.refId, r)));
    const unique = [...new Map(todo.map((r) => [cacheKey(this.refId, r), r])).values()];
    const pad = this.tokenizer!.padTokenId ?? 0;
    const B = Math.max(1, this.config.batchSize);
    for (let i = 0; i < unique.length; i += B) {
      const part = unique.slice(i, i + B);
      const batch = toTensors(buildBatch(part, { padTokenId: pad }));
      const lp = sequenceLogprobs(this.reference!.call, batch, { noGrad: true });
      const sums = lp.responseSum.dataSync();
      const lens = lp.responseLength.dataSync();
      const prompts = lp.promptSum.dataSync();
      const plens = lp.promptLength.dataSync();
      part.forEach((r, k) => {
        cache.set(cacheKey(this.refId, r), {
          responseSum: sums[k]!,
          responseLength: lens[k]!,
          promptSum: prompts[k]!,
          promptLength: plens[k]!,
        });
      });
      tf.dispose([...Object.values(lp), ...Object.values(batch)]);
      this.log.progress('reference', Math.min(i + B, unique.length), unique.length);
    }
    await mkdir(this.config.output, { recursive: true });
    await cache.save();
    for (const r of rows) {
      const e = cache.require(cacheKey(this.refId, r));
      this.refRows.set(cacheKey(this.refId, r), { sum: e.responseSum, prompt: e.promptSum ?? 0 });
    }
    return { rows: rows.length, computed: unique.length };
  }

  /** Loss (scalar tensor) and metrics of one batch under the current policy. */
  private batchLoss(
    batch: TokenizedExample[],
    training: boolean,
  ): { loss: tf.Scalar; metrics: Record<string, number> } {
    const plan = this.plan(batch);
    const pad = this.tokenizer!.padTokenId ?? 0;
    const tokens = toTensors(buildBatch(plan.rows, { padTokenId: pad }));
    try {
      const out = tf.tidy(() => {
        const lp = sequenceLogprobs(
          training ? this.policy!.callTraining : this.policy!.call,
          tokens,
          { wpo: this.needs!.wpoWeights === true },
        );
        const ref = this.needs!.reference ? this.refFor(plan.rows) : undefined;
        const refCross = plan.crossRows
          ? (tf.reshape(this.refFor(plan.crossRows).sum, [
              sizeof(plan.rows),
              sizeof(plan.rows),
            ]) as tf.Tensor2D)
          : undefined;
        const inputs = plan.assemble(
          {
            sum: lp.responseSum,
            prompt: lp.promptSum,
            ...(lp.responseWpoMean ? { wpo: lp.responseWpoMean } : {}),
          },
          ref,
          refCross,
        );
        const r = this.objective!.loss(inputs, this.objectiveConfig!);
        return { loss: r.loss, metrics: r.metrics } as unknown as tf.TensorContainerObject;
      }) as unknown as { loss: tf.Scalar; metrics: Record<string, number> };
      return out;
    } finally {
      tf.dispose(Object.values(tokens));
    }
  }

  /**
   * Online UNA (una.txt section 3.1.2): samples `samplesPerPrompt` responses per prompt from
   * the current policy, scores them with the reward function or model, and returns them as
   * score examples; their reference log-probs are computed now. Adds `online/reward_mean`.
   */
  private sampleOnline(
    prompts: TokenizedExample[],
    step: number,
    metricSums: Record<string, number>,
  ): TokenizedExample[] {
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
    metricSums['online/reward_mean'] =
      (metricSums['online/reward_mean'] ?? 0) +
      examples.reduce((s, e) => s + e.scores[0]!, 0) / examples.length;
    this.ensureReference(examples.map((e) => ({ prompt: e.prompt, response: e.responses[0]! })));
    return examples;
  }

  /** Reference log-probs of rows not yet known (online rows), computed now. */
  private ensureReference(rows: Row[]): void {
    const todo = rows.filter((r) => !this.refRows.has(cacheKey(this.refId, r)));
    if (!todo.length) return;
    const batch = toTensors(buildBatch(todo, { padTokenId: this.tokenizer!.padTokenId ?? 0 }));
    const lp = sequenceLogprobs(this.reference!.call, batch, { noGrad: true });
    const sums = lp.responseSum.dataSync();
    const prompts = lp.promptSum.dataSync();
    todo.forEach((r, k) => {
      this.refRows.set(cacheKey(this.refId, r), { sum: sums[k]!, prompt: prompts[k]! });
    });
    tf.dispose([...Object.values(lp), ...Object.values(batch)]);
  }

  /**
   * TR-DPO (TRL `sync_ref_model`): `π_ref ← α·π_θ + (1 − α)·π_ref` (α = `refModelMixupAlpha`)
   * every `refModelSyncSteps` optimizer steps. The cached reference log-probs no longer hold
   * after a sync; they are recomputed per batch as it is used ({@link syncedReference}).
   */
  private syncReference(step: number): void {
    const a = this.config.refModelMixupAlpha;
    for (const [name, ref] of this.reference!.params) {
      const p = this.policy!.params.get(name)!;
      tf.tidy(() => ref.assign(tf.add(tf.mul(p, a), tf.mul(ref, 1 - a))));
    }
    this.refRows.clear();
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
    if (refId && refId !== this.refId) {
      this.refId = refId;
      this.refRows.clear();
    }
  }

  /** With a synced reference: its log-probs of the batch's rows, computed when missing. */
  private syncedReference(batch: TokenizedExample[]): void {
    if (!this.config.syncRefModel) return;
    const plan = this.plan(batch);
    this.ensureReference([...plan.rows, ...(plan.crossRows ?? [])]);
  }

  /** Mean loss and metrics over the held-out batches (no gradients). */
  evaluate(): { loss: number; metrics: Record<string, number> } | undefined {
    if (!this.evalBatches.length) return undefined;
    let loss = 0;
    const sums: Record<string, number> = {};
    for (const b of this.evalBatches) {
      this.syncedReference(b);
      const r = this.batchLoss(b, false);
      loss += r.loss.dataSync()[0]!;
      r.loss.dispose();
      for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
    }
    const n = this.evalBatches.length;
    return {
      loss: loss / n,
      metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])),
    };
  }

  get totalSteps(): number {
    const perEpoch = Math.ceil(this.trainBatches.length / this.config.gradientAccumulationSteps);
    return this.config.maxSteps > 0 ? this.config.maxSteps : perEpoch * this.config.epochs;
  }

  /** Trains to the end (or from `resumeFrom`, a checkpoint directory) and saves the final model. */
  async train(options: { resumeFrom?: string } = {}): Promise<TrainResult> {
    const started = performance.now();
    const info = await this.setup();
    const c = this.config;
    await this.removeStaleTemp();
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
    const total = this.totalSteps;
    const nb = this.trainBatches.length;
    try {
      while (state.step < total) {
        if (state.batchInEpoch >= nb) {
          state.epoch++;
          state.batchInEpoch = 0;
        }
        const order = permutation(nb, c.seed + 1000 * (state.epoch + 1));
        const t0 = performance.now();
        let grads: tf.Tensor[] | undefined;
        let lossSum = 0;
        const metricSums: Record<string, number> = {};
        let micro = 0;
        while (micro < c.gradientAccumulationSteps && state.batchInEpoch < nb) {
          const stored = this.trainBatches[order[state.batchInEpoch]!]!;
          const batch = c.online ? this.sampleOnline(stored, state.step, metricSums) : stored;
          this.syncedReference(batch);
          let metrics: Record<string, number> = {};
          const { value, grads: g } = tf.variableGrads(() => {
            const r = this.batchLoss(batch, true);
            metrics = r.metrics;
            return r.loss;
          }, vars);
          lossSum += value.dataSync()[0]!;
          value.dispose();
          const list = vars.map((v) => g[v.name]!);
          if (!grads) grads = list;
          else {
            const summed = grads.map((a, i) => tf.add(a, list[i]!));
            tf.dispose([...grads, ...list]);
            grads = summed;
          }
          for (const [k, v] of Object.entries(metrics)) metricSums[k] = (metricSums[k] ?? 0) + v;
          micro++;
          state.batchInEpoch++;
        }
        const averaged = grads!.map((g) => tf.div(g, micro));
        tf.dispose(grads!);
        const { grads: clipped, norm } = clipByGlobalNorm(averaged, c.maxGradNorm);
        const loss = lossSum / micro;
        const record: StepRecord = {
          step: state.step + 1,
          epoch: state.epoch,
          loss,
          lr: learningRateAt(state.step, {
            learningRate: c.learningRate,
            schedule: c.schedule,
            warmupSteps: c.warmupSteps,
            totalSteps: total,
          }),
          gradNorm: norm,
          metrics: Object.fromEntries(Object.entries(metricSums).map(([k, v]) => [k, v / micro])),
          seconds: 0,
        };
        if (
          !Number.isFinite(loss) ||
          !Number.isFinite(norm) ||
          Object.values(record.metrics).some((v) => !Number.isFinite(v))
        ) {
          tf.dispose(clipped);
          throw new NonFiniteError(record.step, state.history.at(-1));
        }
        opt.apply(clipped, record.lr);
        tf.dispose(clipped);
        state.step++;
        if (c.syncRefModel && state.step % c.refModelSyncSteps === 0)
          this.syncReference(state.step);
        record.seconds = (performance.now() - t0) / 1000;
        state.history.push(record);
        if (state.step % c.logSteps === 0 || state.step === total) this.log.step(record, total);
        if (c.evalSteps > 0 && state.step % c.evalSteps === 0) this.recordEval(state);
        if (c.saveSteps > 0 && state.step % c.saveSteps === 0)
          await this.saveCheckpoint(opt, state);
      }
    } finally {
      this.log.done();
    }
    if (this.evalBatches.length && (c.evalSteps === 0 || state.step % c.evalSteps !== 0))
      this.recordEval(state);
    await this.saveCheckpoint(opt, state);
    await writeFileAtomic(
      join(c.output, 'report.html'),
      trainingReport(this.objective!.name, c, state),
    );
    const finalDir = join(c.output, 'final');
    await this.saveFinal(finalDir);
    opt.dispose();
    const result: TrainResult = {
      steps: state.step,
      history: state.history,
      evalHistory: state.evalHistory,
      finalDir,
      wallSeconds: (performance.now() - started) / 1000,
      truncated: this.truncated,
      backend: info,
    };
    return result;
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
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await this.saveModelFiles(tmp);
    const optState = new Map<string, { shape: number[]; data: Float32Array }>();
    const { m, v } = opt.moments();
    opt.vars.forEach((w, i) => {
      optState.set(`m.${i}`, { shape: [...w.shape], data: m[i]! });
      optState.set(`v.${i}`, { shape: [...w.shape], data: v[i]! });
    });
    await saveSafetensors(join(tmp, 'optimizer.safetensors'), optState);
    if (this.config.syncRefModel)
      await saveSafetensors(join(tmp, 'reference.safetensors'), this.referenceState());
    await writeFileAtomic(
      join(tmp, 'trainer_state.json'),
      JSON.stringify(
        {
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
        },
        null,
        1,
      ),
    );
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    this.log.event({ event: 'checkpoint', step: state.step, dir });
    await this.pruneCheckpoints();
    return dir;
  }

  /** `saveTotalLimit` (TRL `save_total_limit`): only the newest N checkpoints stay. */
  private async pruneCheckpoints(): Promise<void> {
    const limit = this.config.saveTotalLimit;
    if (!limit) return;
    const steps = (await readdir(this.config.output))
      .map((f) => /^checkpoint-(\d+)$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const step of steps.slice(0, Math.max(0, steps.length - limit)))
      await rm(join(this.config.output, `checkpoint-${step}`), { recursive: true, force: true });
  }

  /**
   * Leftovers of a crashed run in the output directory — `checkpoint-N.tmp-PID` and
   * `final.tmp-PID` folders whose process is gone — are removed before training.
   */
  private async removeStaleTemp(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.config.output);
    } catch {
      return;
    }
    for (const f of names) {
      const m = /\.(?:tmp|old)-(\d+)$/.exec(f);
      if (!m || !/^(checkpoint-\d+|final)\./.test(f)) continue;
      const pid = Number(m[1]);
      let alive = pid === process.pid;
      if (!alive) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      if (!alive) await rm(join(this.config.output, f), { recursive: true, force: true });
    }
  }

  /** Weights (or adapters) plus what `AutoTokenizer` and generation need, into `dir`. */
  private async saveModelFiles(dir: string): Promise<void> {
    if (this.policy!.lora.size) await saveLora(this.policy!, dir, this.modelDir());
    else await saveModel(this.policy!, dir);
    for (const f of await readdir(this.modelDir())) {
      if (
        f.startsWith('tokenizer') ||
        f === 'special_tokens_map.json' ||
        f === 'chat_template.jinja' ||
        f === 'generation_config.json'
      )
        await copyFile(join(this.modelDir(), f), join(dir, f));
    }
  }

  private async restore(dir: string, opt: Optimizer, state: TrainerState): Promise<void> {
    const s = JSON.parse(
      await readFile(join(dir, 'trainer_state.json'), 'utf8'),
    ) as TrainerState & {
      optimizerStep: number;
      seed: number;
      refId?: string;
      config?: TrainConfig;
      dataFingerprint?: string;
    };
    if (s.seed !== this.config.seed)
      throw new Error(
        `${dir}: checkpoint was made with seed ${s.seed}, this run has seed ${this.config.seed}`,
      );
    if (s.config) {
      const field = firstConfigDifference(s.config, this.config);
      if (field)
        throw new Error(
          `${dir}: the checkpoint was made with ${field} = ${JSON.stringify((s.config as unknown as Record<string, unknown>)[field])}, this run has ${JSON.stringify((this.config as unknown as Record<string, unknown>)[field])}; a resume may change only ${RESUME_SAFE_FIELDS.join(', ')}`,
        );
    }
    if (s.dataFingerprint && s.dataFingerprint !== this.dataFingerprint)
      throw new Error(
        `${dir}: the training data differ from the checkpoint's (another file, or the same file edited); resume with the data the run started with`,
      );
    await this.truncateMetrics(s.step);
    if (this.policy!.lora.size) {
      const fresh = await loadModel(this.modelDir());
      for (const [k, v] of this.policy!.params) v.assign(fresh.params.get(k)!);
      fresh.dispose();
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
    const o = await loadSafetensors(join(dir, 'optimizer.safetensors'));
    const moment = (name: string) => {
      const t = o.get(name);
      if (!t) throw new Error(`${join(dir, 'optimizer.safetensors')}: missing tensor '${name}'`);
      return t.data as Float32Array;
    };
    opt.setMoments(
      opt.vars.map((_, i) => moment(`m.${i}`)),
      opt.vars.map((_, i) => moment(`v.${i}`)),
    );
    opt.step = s.optimizerStep;
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

  /**
   * `metrics.jsonl` after a resume from step N: step, eval and checkpoint lines past N (written
   * by the run that was killed) are dropped, so no step appears twice. Written atomically.
   */
  private async truncateMetrics(step: number): Promise<void> {
    const file = join(this.config.output, 'metrics.jsonl');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return;
    }
    const keep = text.split('\n').filter((l) => {
      if (!l.trim()) return false;
      try {
        const r = JSON.parse(l) as { step?: unknown };
        return !(typeof r.step === 'number' && r.step > step);
      } catch {
        return false; // a line cut by the kill
      }
    });
    await writeFileAtomic(file, keep.length ? `${keep.join('\n')}\n` : '');
  }

  /**
   * The final model as a Hugging Face directory (weights or adapters, config, tokenizer files,
   * chat template, generation config), written atomically: a temp directory renamed into
   * place, the previous `final/` kept until the new one is complete.
   */
  private async saveFinal(dir: string): Promise<void> {
    const tmp = `${dir}.tmp-${process.pid}`;
    const old = `${dir}.old-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await this.saveModelFiles(tmp);
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (exists) await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  }

  dispose(): void {
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
): TrainConfig['objective'] {
  if (!range || spec.name === 'weighted' || spec.config.scoreRange !== undefined) return spec;
  try {
    resolveObjective({ ...spec, config: { ...spec.config, scoreRange: range } });
  } catch (err) {
    if ((err as Error).message.includes("unknown field 'scoreRange'")) return spec;
  }
  return { ...spec, config: { ...spec.config, scoreRange: range } };
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

/** The run's summary table: final training metrics and the last evaluation. */
export function summaryRows(
  result: Pick<TrainResult, 'history' | 'evalHistory'>,
): [string, string | number][] {
  const last = result.history.at(-1);
  const rows: [string, string | number][] = [];
  if (last) {
    rows.push(['steps', last.step], ['train loss', last.loss], ['grad norm', last.gradNorm]);
    for (const [k, v] of Object.entries(last.metrics)) rows.push([k, v]);
  }
  const e = result.evalHistory.at(-1);
  if (e) {
    rows.push(['eval loss', e.loss]);
    for (const [k, v] of Object.entries(e.metrics)) rows.push([`eval ${k}`, v]);
  }
  return rows;
}

/** A self-contained HTML report of a run: summary table and curves. */
export function trainingReport(
  objective: string,
  c: TrainConfig,
  s: Pick<TrainResult, 'history' | 'evalHistory'>,
): string {
  const series = (keys: string[]) =>
    keys
      .map((k) => ({
        name: k,
        points: s.history
          .filter((h) => h.metrics[k] !== undefined)
          .map((h) => [h.step, h.metrics[k]!] as [number, number]),
      }))
      .filter((x) => x.points.length);
  const charts: Chart[] = [
    {
      title: 'loss',
      series: [
        { name: 'train', points: s.history.map((h) => [h.step, h.loss] as [number, number]) },
        ...(s.evalHistory.length
          ? [
              {
                name: 'eval',
                points: s.evalHistory.map((e) => [e.step, e.loss] as [number, number]),
              },
            ]
          : []),
      ],
    },
    {
      title: 'implicit rewards',
      series: series(['rewards/chosen', 'rewards/rejected', 'rewards/margins']),
    },
    { title: 'accuracy', series: series(['rewards/accuracies']) },
    { title: 'log-probs', series: series(['logps/chosen', 'logps/rejected', 'logps/policy']) },
    {
      title: 'learning rate',
      series: [{ name: 'lr', points: s.history.map((h) => [h.step, h.lr] as [number, number]) }],
    },
  ].filter((ch) => ch.series.length);
  const other = Object.keys(s.history.at(-1)?.metrics ?? {}).filter(
    (k) => !/^(rewards|logps)\//.test(k),
  );
  if (other.length) charts.push({ title: `${objective} metrics`, series: series(other) });
  return renderReport(`alignjs train: ${objective}`, [
    {
      heading: 'Summary',
      html: `<p>model ${c.model}, data ${c.train}, objective ${objective} ${JSON.stringify(c.objective.config)}</p>${htmlTable(['metric', 'value'], summaryRows(s))}`,
    },
    { heading: 'Curves', charts },
  ]);
}

/** Imports a user's reward module: `export function reward(prompt, response)` or a default export. */
export async function loadRewardModule(path: string): Promise<RewardFn> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path}: cannot import the reward module (${(err as Error).message})`);
  }
  const fn = (mod.reward ?? mod.default) as unknown;
  if (typeof fn !== 'function')
    throw new Error(
      `${path}: the reward module must export a function 'reward(prompt, response) => number' (or a default export)`,
    );
  return (p: string, r: string) => {
    const v = (fn as RewardFn)(p, r);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`${path}: reward returned ${JSON.stringify(v)} (not a finite number)`);
    return v;
  };
}

export { loadLora };
