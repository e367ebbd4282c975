import { hostMap } from '@alignjs/core-logprob';
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

/** `adamw_torch`: moments on the device; `adamw_host`: moments in host memory ({@link HostAdamW}). */
export type OptimizerName = 'adamw_torch' | 'adamw_host';

/**
 * Bytes of device memory AdamW needs for weights, gradients and two moments (4 float32
 * copies); past this on wasm, whose heap tfjs cannot use beyond ~2 GiB, `optim: 'auto'`
 * keeps the moments on the host.
 */
export const WASM_DEVICE_OPTIMIZER_LIMIT = 1.5 * 2 ** 30;

/**
 * Resolves `optim: 'auto'`: `adamw_host` on the wasm backend when weights + gradients + two
 * moments would pass {@link WASM_DEVICE_OPTIMIZER_LIMIT}, else `adamw_torch`.
 */
export function resolveOptimizer(
  optim: OptimizerName | 'auto',
  backend: string,
  trainableParameters: number,
): OptimizerName {
  if (optim !== 'auto') return optim;
  return backend === 'wasm' && 16 * trainableParameters > WASM_DEVICE_OPTIMIZER_LIMIT
    ? 'adamw_host'
    : 'adamw_torch';
}

/** The optimizer named `name` over `vars`. */
export function createOptimizer(
  name: OptimizerName,
  vars: tf.Variable[],
  o: AdamWOptions,
): Optimizer {
  return name === 'adamw_host' ? new HostAdamW(vars, o) : new AdamW(vars, o);
}

/** Elements per flat moment buffer of {@link AdamW} (16 MiB): bounds the update's temporaries. */
export const ADAMW_GROUP_ELEMENTS = 1 << 22;

/** Consecutive variables that share one flat pair of moment buffers. */
interface Group {
  first: number;
  sizes: number[];
  m: tf.Variable<tf.Rank.R1>;
  v: tf.Variable<tf.Rank.R1>;
}

/**
 * AdamW with decoupled weight decay, exactly as torch.optim.AdamW: `w ← w·(1 − lr·wd)`, then
 * the Adam step with bias corrections. Consecutive variables share flat moment buffers of up
 * to {@link ADAMW_GROUP_ELEMENTS} elements (a larger variable has its own) and each group is
 * updated over its concatenated gradient — a dozen ops per group instead of a dozen per
 * variable (per-op dispatch dominated the step on tensorflow), while the temporaries stay
 * the size of one group. State (moments, step) is explicit for checkpoints.
 */
export class AdamW implements Optimizer {
  step = 0;
  private readonly groups: Group[] = [];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: AdamWOptions,
  ) {
    let sizes: number[] = [];
    let first = 0;
    const close = (end: number) => {
      if (!sizes.length) return;
      const n = sizes.reduce((a, b) => a + b, 0);
      const zeros = () => tf.tidy(() => tf.variable(tf.zeros<tf.Rank.R1>([n]), false));
      this.groups.push({ first, sizes, m: zeros(), v: zeros() });
      sizes = [];
      first = end;
    };
    vars.forEach((x, i) => {
      const total = sizes.reduce((a, b) => a + b, 0);
      if (sizes.length && total + x.size > ADAMW_GROUP_ELEMENTS) close(i);
      sizes.push(x.size);
    });
    close(vars.length);
  }

  apply(grads: tf.Tensor[], lr: number, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const sbc2 = Math.sqrt(1 - beta2 ** this.step);
    for (const grp of this.groups) {
      tf.tidy(() => {
        const idx = grp.sizes.map((_, k) => grp.first + k);
        const flat =
          idx.length === 1
            ? tf.reshape(grads[idx[0]!]!, [-1])
            : tf.concat(idx.map((i) => tf.reshape(grads[i]!, [-1])));
        const g = gradScale === 1 ? flat : tf.mul(flat, gradScale);
        const m = tf.add(tf.mul(grp.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(grp.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        grp.m.assign(m as tf.Tensor1D);
        grp.v.assign(v as tf.Tensor1D);
        const denom = tf.add(tf.div(tf.sqrt(v), sbc2), eps);
        const update = tf.mul(tf.div(m, denom), lr / bc1);
        // slices, not tf.split: tfjs-wasm's SplitV copies the whole input out once per piece
        let at = 0;
        for (const i of idx) {
          const w = this.vars[i]!;
          const step = tf.reshape(tf.slice(update, [at], [w.size]), w.shape);
          at += w.size;
          const decayed = weightDecay ? tf.mul(w, 1 - lr * weightDecay) : w;
          w.assign(tf.sub(decayed, step));
        }
      });
    }
  }

  moments(): { m: Float32Array[]; v: Float32Array[] } {
    const split = (which: 'm' | 'v') =>
      this.groups.flatMap((grp) => {
        const flat = grp[which].dataSync() as Float32Array;
        let at = 0;
        return grp.sizes.map((n) => {
          at += n;
          return flat.slice(at - n, at);
        });
      });
    return { m: split('m'), v: split('v') };
  }

  setMoments(m: Float32Array[], v: Float32Array[]): void {
    for (const grp of this.groups) {
      const join = (parts: Float32Array[]) => {
        const flat = new Float32Array(grp.m.size);
        let at = 0;
        grp.sizes.forEach((n, k) => {
          const p = parts[grp.first + k]!;
          if (p?.length !== n)
            throw new Error(`optimizer state for variable ${grp.first + k} has the wrong size`);
          flat.set(p, at);
          at += n;
        });
        return flat;
      };
      const [fm, fv] = [join(m), join(v)];
      tf.tidy(() => {
        grp.m.assign(tf.tensor1d(fm));
        grp.v.assign(tf.tensor1d(fv));
      });
    }
  }

  dispose(): void {
    tf.dispose(this.groups.flatMap((g) => [g.m, g.v]));
  }
}

/**
 * One AdamW update of `x` into `out` (a separate monomorphic function: as a closure inside
 * `forEach` the same loop ran ~2.5× slower). `sbc2` = √(1 − β₂ᵗ), `stepSize` = lr / (1 − β₁ᵗ),
 * `scale` multiplies the gradient first.
 */
function adamwInto(
  out: Float32Array,
  x: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  beta1: number,
  beta2: number,
  eps: number,
  decay: number,
  stepSize: number,
  sbc2: number,
  scale: number,
): void {
  const n = x.length;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const inv = 1 / sbc2;
  for (let k = 0; k < n; k++) {
    const gk = g[k]! * scale;
    const mk = beta1 * m[k]! + c1 * gk;
    const vk = beta2 * v[k]! + c2 * gk * gk;
    m[k] = mk;
    v[k] = vk;
    out[k] = x[k]! * decay - (stepSize * mk) / (Math.sqrt(vk) * inv + eps);
  }
}

/**
 * AdamW with its moments in host memory (Float32Arrays) instead of device tensors: the
 * same update as {@link AdamW}, fused into one pass per variable ({@link hostMap}). On wasm
 * it reads the gradient and weights straight from the heap and writes the new weights
 * there — no copies, and the moments take no heap (tfjs-wasm cannot use more than ~2 GiB);
 * on other backends it costs a read-back and an upload per variable.
 */
export class HostAdamW implements Optimizer {
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: AdamWOptions,
  ) {
    this.m = vars.map((x) => new Float32Array(x.size));
    this.v = vars.map((x) => new Float32Array(x.size));
  }

  apply(grads: tf.Tensor[], lr: number, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const sbc2 = Math.sqrt(1 - beta2 ** this.step);
    const stepSize = lr / bc1;
    const decay = 1 - lr * weightDecay;
    this.vars.forEach((w, i) => {
      const next = hostMap([w, grads[i]!], (out, [x, g]) =>
        adamwInto(
          out,
          x!,
          g!,
          this.m[i]!,
          this.v[i]!,
          beta1,
          beta2,
          eps,
          decay,
          stepSize,
          sbc2,
          gradScale,
        ),
      );
      w.assign(next);
      next.dispose();
    });
  }

  moments(): { m: Float32Array[]; v: Float32Array[] } {
    return { m: this.m, v: this.v };
  }

  setMoments(m: Float32Array[], v: Float32Array[]): void {
    this.vars.forEach((w, i) => {
      if (m[i]!.length !== w.size || v[i]!.length !== w.size)
        throw new Error(`optimizer state for variable ${i} has the wrong size`);
      this.m[i]!.set(m[i]!);
      this.v[i]!.set(v[i]!);
    });
  }

  dispose(): void {
    // The moments are plain arrays: nothing on the device to free.
  }
}
