import * as tf from '@tensorflow/tfjs-core';

export type Schedule = 'constant' | 'linear' | 'cosine';

/** Learning rate at optimizer step `step` (0-based), as transformers' schedulers compute it. */
export function learningRateAt(
  step: number,
  o: { learningRate: number; schedule: Schedule; warmupSteps: number; totalSteps: number },
): number {
  if (step < o.warmupSteps) return (o.learningRate * step) / Math.max(1, o.warmupSteps);
  if (o.schedule === 'constant') return o.learningRate;
  const progress = (step - o.warmupSteps) / Math.max(1, o.totalSteps - o.warmupSteps);
  if (o.schedule === 'linear') return o.learningRate * Math.max(0, 1 - progress);
  return o.learningRate * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/**
 * AdamW with decoupled weight decay, exactly as torch.optim.AdamW: `w ← w·(1 − lr·wd)`, then
 * the Adam step with bias corrections. State (m, v, step) is explicit so checkpoints can
 * save and restore it.
 */
export class AdamW {
  step = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: { beta1: number; beta2: number; eps: number; weightDecay: number },
  ) {
    this.m = vars.map((x) => tf.variable(tf.zerosLike(x), false));
    this.v = vars.map((x) => tf.variable(tf.zerosLike(x), false));
  }

  /** Applies one update with gradients aligned to `vars`. */
  apply(grads: tf.Tensor[], lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const bc2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      this.vars.forEach((w, i) => {
        const g = grads[i]!;
        const m = tf.add(tf.mul(this.m[i]!, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i]!, beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
        const decayed = weightDecay ? tf.mul(w, 1 - lr * weightDecay) : w;
        w.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lr / bc1)));
      });
    });
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/** Scales gradients so their global L2 norm is at most `maxNorm` (0 = off); returns the norm before clipping. */
export function clipByGlobalNorm(
  grads: tf.Tensor[],
  maxNorm: number,
): { grads: tf.Tensor[]; norm: number } {
  const norm = tf.tidy(() =>
    Math.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))).dataSync()[0]!),
  );
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const clipped = grads.map((g) => tf.mul(g, scale));
  tf.dispose(grads);
  return { grads: clipped, norm };
}

/**
 * AdamW with its moments in host memory (Float32Arrays) instead of device tensors: the
 * same update as {@link AdamW}, for models whose weights + gradients + two moments would
 * not fit the device (tfjs-wasm cannot use more than ~2 GiB of heap). Costs a gradient
 * read-back and a weight upload per variable per step.
 */
export class HostAdamW {
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: { beta1: number; beta2: number; eps: number; weightDecay: number },
  ) {
    this.m = vars.map((x) => new Float32Array(x.size));
    this.v = vars.map((x) => new Float32Array(x.size));
  }

  apply(grads: tf.Tensor[], lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const sbc2 = Math.sqrt(1 - beta2 ** this.step);
    const stepSize = lr / bc1;
    const decay = 1 - lr * weightDecay;
    this.vars.forEach((w, i) => {
      const g = grads[i]!.dataSync() as Float32Array;
      const x = Float32Array.from(w.dataSync() as Float32Array);
      const m = this.m[i]!;
      const v = this.v[i]!;
      for (let k = 0; k < x.length; k++) {
        const gk = g[k]!;
        m[k] = beta1 * m[k]! + (1 - beta1) * gk;
        v[k] = beta2 * v[k]! + (1 - beta2) * gk * gk;
        x[k] = x[k]! * decay - (stepSize * m[k]!) / (Math.sqrt(v[k]!) / sbc2 + eps);
      }
      const t = tf.tensor(x, w.shape);
      w.assign(t);
      t.dispose();
    });
  }
}
