/** The optimizer contract the trainer's loop uses, and AdamW's hyper-parameters. */
import type * as tf from '@tensorflow/tfjs-core';

/** AdamW's hyper-parameters, as torch.optim.AdamW names them (betas split in two). */
export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** What the trainer needs of an optimizer: an update, and its state for checkpoints. */
export interface Optimizer {
  readonly vars: tf.Variable[];
  /** updates applied so far (the bias-correction step) */
  step: number;
  /**
   * Applies one update with gradients aligned to `vars`, each first multiplied by
   * `gradScale` (default 1: the loop passes 1 / micro-batches × the clipping factor, so
   * no averaged or clipped copy of the gradients is ever made).
   */
  apply(grads: tf.Tensor[], lr: number, gradScale?: number): void;
  /** First and second moments per variable, read to the host (checkpoints). */
  moments(): { m: Float32Array[]; v: Float32Array[] };
  /** Restores moments saved by {@link moments}. */
  setMoments(m: Float32Array[], v: Float32Array[]): void;
  dispose(): void;
}

/** Throws, naming the variable, unless `m` and `v` hold one array of each variable's size. */
export function checkMomentSizes(vars: tf.Variable[], m: Float32Array[], v: Float32Array[]): void {
  for (const [i, w] of vars.entries())
    for (const [which, parts] of [
      ['m', m],
      ['v', v],
    ] as const)
      if (parts[i]?.length !== w.size)
        throw new Error(`optimizer state for variable ${i} has the wrong size (${which})`);
}
