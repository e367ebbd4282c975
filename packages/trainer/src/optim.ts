import { hostMap } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { FusedAdamW } from './fused-adamw.js';
import { type AdamWOptions, checkMomentSizes, type Optimizer } from './optimizer.js';

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

export type { AdamWOptions, Optimizer } from './optimizer.js';

/**
 * `adamw_torch`: moments on the device, updated with tfjs ops ({@link AdamW});
 * `adamw_torch_fused`: TensorFlow's fused Adam kernel, tensorflow backend only
 * ({@link FusedAdamW}); `adamw_host`: moments in host memory ({@link HostAdamW}).
 */
export type OptimizerName = 'adamw_torch' | 'adamw_torch_fused' | 'adamw_host';

/**
 * Bytes of device memory AdamW needs for weights, gradients and two moments (4 float32
 * copies); past this on wasm, whose heap tfjs cannot use beyond ~2 GiB, `optim: 'auto'`
 * keeps the moments on the host.
 */
export const WASM_DEVICE_OPTIMIZER_LIMIT = 1.5 * 2 ** 30;

/**
 * Resolves `optim: 'auto'`: `adamw_torch_fused` on the tensorflow backend (transformers'
 * default with torch ≥ 2.8 is its fused AdamW too); on wasm, `adamw_host` when weights +
 * gradients + two moments would pass {@link WASM_DEVICE_OPTIMIZER_LIMIT}; else `adamw_torch`.
 * Throws for `adamw_torch_fused` on a backend without the fused kernel.
 */
export function resolveOptimizer(
  optim: OptimizerName | 'auto',
  backend: string,
  trainableParameters: number,
): OptimizerName {
  if (optim === 'adamw_torch_fused' && backend !== 'tensorflow')
    throw new Error(
      `config: field 'optim' is 'adamw_torch_fused', TensorFlow's fused kernel, which needs the ` +
        `tensorflow backend (tfjs-node); this run is on '${backend}': use 'adamw_torch' or 'auto'`,
    );
  if (optim !== 'auto') return optim;
  if (backend === 'tensorflow') return 'adamw_torch_fused';
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
  if (name === 'adamw_torch_fused') return new FusedAdamW(vars, o);
  return name === 'adamw_host' ? new HostAdamW(vars, o) : new AdamW(vars, o);
}

/**
 * Elements per flat moment segment of {@link AdamW} (16 MiB of float32): bounds the update's
 * temporaries to a few segments' worth, whatever the size of the largest variable.
 */
export const ADAMW_GROUP_ELEMENTS = 1 << 22;

/** `length` elements of variable `index`'s flattened values, from `offset`. */
interface Part {
  index: number;
  offset: number;
  length: number;
}

/** Parts of consecutive variables that share one flat pair of moment buffers. */
interface Segment {
  parts: Part[];
  m: tf.Variable<tf.Rank.R1>;
  v: tf.Variable<tf.Rank.R1>;
}

/**
 * AdamW with decoupled weight decay, exactly as torch.optim.AdamW: `w ← w·(1 − lr·wd)`, then
 * the Adam step with bias corrections. The parameters are cut into segments of up to
 * `segmentElements` ({@link ADAMW_GROUP_ELEMENTS}) elements: small consecutive variables share
 * one segment, a larger variable spans several. Each segment has flat moment buffers and is
 * updated over its concatenated gradient in its own tidy — a dozen ops per segment instead of
 * a dozen per variable (per-op dispatch dominated the step on tensorflow), while the
 * temporaries stay the size of one segment (a whole 38M-element embedding updated at once
 * held ~15 copies of it: 2.3 GB for GPT-2 small). State (moments, step) is explicit for
 * checkpoints.
 */
export class AdamW implements Optimizer {
  step = 0;
  private readonly segments: Segment[] = [];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: AdamWOptions,
    segmentElements = ADAMW_GROUP_ELEMENTS,
  ) {
    let parts: Part[] = [];
    let n = 0;
    const close = () => {
      if (!parts.length) return;
      // tf.fill runs on the device; tf.zeros would first make a host array of the size (on
      // tensorflow it stays alive until the first update uploads it and a GC frees it)
      const zeros = () => tf.tidy(() => tf.variable(tf.fill([n], 0) as tf.Tensor1D, false));
      this.segments.push({ parts, m: zeros(), v: zeros() });
      parts = [];
      n = 0;
    };
    vars.forEach((x, index) => {
      if (x.size <= segmentElements) {
        if (n + x.size > segmentElements) close();
        parts.push({ index, offset: 0, length: x.size });
        n += x.size;
        return;
      }
      // a large variable: its own segments of (nearly) equal length
      close();
      const k = Math.ceil(x.size / segmentElements);
      const len = Math.ceil(x.size / k);
      for (let offset = 0; offset < x.size; offset += len) {
        n = Math.min(len, x.size - offset);
        parts = [{ index, offset, length: n }];
        close();
      }
    });
    close();
  }

  apply(grads: tf.Tensor[], lr: number, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const sbc2 = Math.sqrt(1 - beta2 ** this.step);
    // new values of a variable that spans segments, applied after its last one (every
    // segment reads the old weights)
    let pending: tf.Tensor[] = [];
    const whole = (p: Part) => p.length === this.vars[p.index]!.size;
    const piece = (t: tf.Tensor, p: Part) => {
      const flat = tf.reshape(t, [-1]);
      return whole(p) ? flat : tf.slice(flat, [p.offset], [p.length]);
    };
    for (const seg of this.segments) {
      tf.tidy(() => {
        const pieces = seg.parts.map((p) => piece(grads[p.index]!, p));
        const flat = pieces.length === 1 ? pieces[0]! : tf.concat(pieces);
        const g = gradScale === 1 ? flat : tf.mul(flat, gradScale);
        const m = tf.add(tf.mul(seg.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(seg.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        seg.m.assign(m as tf.Tensor1D);
        seg.v.assign(v as tf.Tensor1D);
        const denom = tf.add(tf.div(tf.sqrt(v), sbc2), eps);
        const update = tf.mul(tf.div(m, denom), lr / bc1);
        // slices, not tf.split: tfjs-wasm's SplitV copies the whole input out once per piece
        let at = 0;
        for (const p of seg.parts) {
          const w = this.vars[p.index]!;
          const step = seg.parts.length === 1 ? update : tf.slice(update, [at], [p.length]);
          at += p.length;
          const old = piece(w, p);
          const next = tf.sub(weightDecay ? tf.mul(old, 1 - lr * weightDecay) : old, step);
          if (whole(p)) {
            w.assign(tf.reshape(next, w.shape));
            continue;
          }
          pending.push(tf.keep(next));
          if (p.offset + p.length === w.size) {
            w.assign(tf.reshape(tf.concat(pending), w.shape));
            tf.dispose(pending);
            pending = [];
          }
        }
      });
    }
  }

  moments(): { m: Float32Array[]; v: Float32Array[] } {
    const per = (which: 'm' | 'v') => {
      const out: Float32Array[] = [];
      for (const seg of this.segments) {
        const flat = seg[which].dataSync() as Float32Array;
        let at = 0;
        for (const p of seg.parts) {
          const part = flat.subarray(at, at + p.length);
          at += p.length;
          if (p.length === this.vars[p.index]!.size) out[p.index] = part;
          else {
            const whole = out[p.index] ?? new Float32Array(this.vars[p.index]!.size);
            whole.set(part, p.offset);
            out[p.index] = whole;
          }
        }
      }
      return out;
    };
    return { m: per('m'), v: per('v') };
  }

  setMoments(m: Float32Array[], v: Float32Array[]): void {
    checkMomentSizes(this.vars, m, v);
    for (const seg of this.segments) {
      const join = (parts: Float32Array[]) => {
        const flat = new Float32Array(seg.m.size);
        let at = 0;
        for (const p of seg.parts) {
          flat.set(parts[p.index]!.subarray(p.offset, p.offset + p.length), at);
          at += p.length;
        }
        return flat;
      };
      const [fm, fv] = [join(m), join(v)];
      tf.tidy(() => {
        seg.m.assign(tf.tensor1d(fm));
        seg.v.assign(tf.tensor1d(fv));
      });
    }
  }

  dispose(): void {
    tf.dispose(this.segments.flatMap((g) => [g.m, g.v]));
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
    checkMomentSizes(this.vars, m, v);
    this.vars.forEach((_, i) => {
      this.m[i]!.set(m[i]!);
      this.v[i]!.set(v[i]!);
    });
  }

  dispose(): void {
    // The moments are plain arrays: nothing on the device to free.
  }
}
