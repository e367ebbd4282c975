/**
 * The optimizer loop every trainer here runs (the policy trainer and the reward-model
 * trainer): seeded epoch order over fixed batches, gradient accumulation, the learning-rate
 * schedule, global-norm clipping, a finite guard before each update, and hooks in the spirit
 * of transformers' TrainerCallback. A micro-step's loss and metrics stay on the device: the
 * loop reads the device once per optimizer step (loss, gradient norm and a finite flag, in
 * one transfer) and once more per `logSteps` (the interval's mean metrics).
 */
import { permutation, readTidy, sumOfSquares, variableGrads } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import type { Logger, StepRecord } from './log.js';
import { learningRateAt, type Optimizer, type Schedule } from './optim.js';

/** What one micro-batch gives the loop: a scalar loss and scalar metric tensors. */
export interface MicroStepOutput {
  loss: tf.Scalar;
  metrics: Record<string, tf.Scalar>;
}

/** The loop's resumable position (saved in `trainer_state.json`). */
export interface LoopState {
  step: number;
  epoch: number;
  /** batches of the current epoch already consumed */
  batchInEpoch: number;
  history: StepRecord[];
}

/** Called as transformers' TrainerCallback would be (`on_step_end`, `on_evaluate`, `on_save`). */
export interface LoopHooks {
  /** after each optimizer step (its record; metrics filled on logging steps) */
  onStep?(record: StepRecord, state: LoopState): void | Promise<void>;
  /** every `evalSteps` optimizer steps */
  onEval?(state: LoopState): void | Promise<void>;
  /** every `saveSteps` optimizer steps */
  onSave?(state: LoopState): void | Promise<void>;
}

export interface LoopOptions {
  optimizer: Optimizer;
  /** fixed batches per epoch; each epoch visits them in a new seeded order */
  batchesPerEpoch: number;
  totalSteps: number;
  seed: number;
  gradientAccumulationSteps: number;
  /** 0 = no clipping */
  maxGradNorm: number;
  /** learning rate at optimizer step `step` (0-based) */
  learningRate(step: number): number;
  logSteps: number;
  evalSteps: number;
  saveSteps: number;
  log: Logger;
  /** forward of batch `index` (of the fixed batches) under the gradient tape */
  microStep(index: number, state: LoopState): MicroStepOutput;
  /** host work before a micro-step, outside the tape (e.g. online sampling) */
  beforeMicroStep?(index: number, state: LoopState): void;
  hooks?: LoopHooks;
}

/** The config fields of a run that set the loop (TrainingArguments' names, camelCase). */
export interface LoopConfig {
  seed: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  maxGradNorm: number;
  learningRate: number;
  schedule: Schedule;
  warmupSteps: number;
  epochs: number;
  maxSteps: number;
  logSteps: number;
  evalSteps: number;
  saveSteps: number;
}

/** Optimizer steps of a run over `batches` fixed batches: `maxSteps`, else epochs × ⌈batches / accumulation⌉. */
export function totalStepsOf(c: LoopConfig, batches: number): number {
  const perEpoch = Math.ceil(batches / c.gradientAccumulationSteps);
  return c.maxSteps > 0 ? c.maxSteps : perEpoch * c.epochs;
}

/** The loop options a run's config sets (schedule over `totalSteps`, cadences, clipping). */
export function loopSettings(
  c: LoopConfig,
  batchesPerEpoch: number,
): Pick<
  LoopOptions,
  | 'batchesPerEpoch'
  | 'totalSteps'
  | 'seed'
  | 'gradientAccumulationSteps'
  | 'maxGradNorm'
  | 'learningRate'
  | 'logSteps'
  | 'evalSteps'
  | 'saveSteps'
> {
  const totalSteps = totalStepsOf(c, batchesPerEpoch);
  return {
    batchesPerEpoch,
    totalSteps,
    seed: c.seed,
    gradientAccumulationSteps: c.gradientAccumulationSteps,
    maxGradNorm: c.maxGradNorm,
    learningRate: (step) =>
      learningRateAt(step, {
        learningRate: c.learningRate,
        schedule: c.schedule,
        warmupSteps: c.warmupSteps,
        totalSteps,
      }),
    logSteps: c.logSteps,
    evalSteps: c.evalSteps,
    saveSteps: c.saveSteps,
  };
}

/** A run that stopped on a non-finite loss, gradient or metric. */
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

/** Global L2 norm of `grads` (a device scalar), as torch's `clip_grad_norm_` computes it. */
export function globalNorm(grads: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumOfSquares(grads)) as tf.Scalar);
}

/** torch's `clip_grad_norm_` factor: min(1, maxNorm / (norm + 1e-6)); 1 when `maxNorm` is 0. */
export function clipFactor(norm: number, maxNorm: number): number {
  return maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
}

const add = (a: tf.Tensor | undefined, b: tf.Tensor): tf.Tensor => {
  if (!a) return tf.clone(b);
  const s = tf.add(a, b);
  a.dispose();
  return s;
};

/** Runs optimizer steps from `state` to `totalSteps`; `state` is updated in place. */
export async function runLoop(o: LoopOptions, state: LoopState): Promise<void> {
  const vars = o.optimizer.vars;
  const nb = o.batchesPerEpoch;
  let interval: Record<string, tf.Tensor> = {};
  let intervalSteps = 0;
  try {
    while (state.step < o.totalSteps) {
      if (state.batchInEpoch >= nb) {
        state.epoch++;
        state.batchInEpoch = 0;
      }
      const order = permutation(nb, o.seed + 1000 * (state.epoch + 1));
      const t0 = performance.now();
      let grads: tf.Tensor[] | undefined;
      let loss: tf.Tensor | undefined;
      const metrics: Record<string, tf.Tensor> = {};
      let micro = 0;
      while (micro < o.gradientAccumulationSteps && state.batchInEpoch < nb) {
        const index = order[state.batchInEpoch]!;
        o.beforeMicroStep?.(index, state);
        let out: MicroStepOutput | undefined;
        const { value, grads: g } = variableGrads(() => {
          out = o.microStep(index, state);
          for (const t of Object.values(out.metrics)) tf.keep(t);
          return out.loss;
        }, vars);
        loss = add(loss, value);
        value.dispose();
        for (const [k, t] of Object.entries(out!.metrics)) {
          metrics[k] = add(metrics[k], t);
          t.dispose();
        }
        const list = vars.map((v) => g[v.name]!);
        if (!grads) grads = list;
        else {
          const summed = grads.map((a, i) => tf.add(a, list[i]!));
          tf.dispose([...grads, ...list]);
          grads = summed;
        }
        micro++;
        state.batchInEpoch++;
      }
      // The mean gradient is sum / micro and clipping scales it: both fold into one factor
      // the optimizer applies as it reads the gradients (no averaged or clipped copies).
      const norm = globalNorm(grads!);
      const names = Object.keys(metrics);
      // the step's one device read: mean loss, gradient norm, and whether every metric is finite
      const [meanLoss, summedNorm, metricsFinite] = readTidy(() =>
        tf.stack([
          tf.div(loss!, micro),
          norm,
          names.length
            ? tf.cast(tf.all(tf.isFinite(tf.stack(names.map((n) => metrics[n]!)))), 'float32')
            : tf.scalar(1),
        ]),
      );
      norm.dispose();
      loss!.dispose();
      const gradNorm = summedNorm! / micro;
      const record: StepRecord = {
        step: state.step + 1,
        epoch: state.epoch,
        loss: meanLoss!,
        lr: o.learningRate(state.step),
        gradNorm,
        metrics: {},
        seconds: 0,
      };
      if (!Number.isFinite(meanLoss) || !Number.isFinite(gradNorm) || metricsFinite !== 1) {
        tf.dispose([...grads!, ...Object.values(metrics), ...Object.values(interval)]);
        interval = {};
        throw new NonFiniteError(record.step, state.history.at(-1));
      }
      for (const n of names) {
        const mean = tf.div(metrics[n]!, micro);
        interval[n] = add(interval[n], mean);
        tf.dispose([mean, metrics[n]!]);
      }
      intervalSteps++;
      o.optimizer.apply(grads!, record.lr, clipFactor(gradNorm, o.maxGradNorm) / micro);
      tf.dispose(grads!);
      state.step++;
      const logging = state.step % o.logSteps === 0 || state.step === o.totalSteps;
      if (logging) {
        // the interval's mean metrics, as transformers' Trainer logs them (a second read)
        const keys = Object.keys(interval);
        const values = keys.length
          ? readTidy(() => tf.div(tf.stack(keys.map((k) => interval[k]!)), intervalSteps))
          : new Float32Array(0);
        record.metrics = Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
        tf.dispose(Object.values(interval));
        interval = {};
        intervalSteps = 0;
      }
      record.seconds = (performance.now() - t0) / 1000;
      state.history.push(record);
      await o.hooks?.onStep?.(record, state);
      if (logging) o.log.step(record, o.totalSteps);
      if (o.evalSteps > 0 && state.step % o.evalSteps === 0) await o.hooks?.onEval?.(state);
      if (o.saveSteps > 0 && state.step % o.saveSteps === 0) await o.hooks?.onSave?.(state);
    }
  } finally {
    tf.dispose(Object.values(interval));
    o.log.done();
  }
}
