/**
 * `adamw_torch_fused` on the tensorflow backend: TensorFlow's own fused Adam kernel
 * (`ResourceApplyAdam`, one multi-threaded pass that reads the gradient and updates the
 * weight and both moments in place) run through tfjs-node's raw-op entry points, instead of a
 * dozen tfjs ops (a dozen passes over the parameters) per update.
 */
import { type OpAttr, type TensorflowBackend, tensorflowBackend } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { type AdamWOptions, checkMomentSizes, type Optimizer } from './optimizer.js';

/**
 * TensorFlow's name for an anonymous resource (`ResourceHandle::ANONYMOUS_NAME`): the
 * variable is freed with its last handle, as TF2's eager variables are, instead of living on
 * in the resource manager under a shared name.
 */
const ANONYMOUS = 'cd2c89b7-88b7-44c8-ad83-06c2a9158347';

/** float32 resource variables and the ops on them that the optimizer needs. */
class ResourceOps {
  private readonly float: OpAttr[];
  /** the `ResourceApply…` kernels' type attribute (made once, not per update) */
  private readonly T: OpAttr[];
  constructor(private readonly b: TensorflowBackend) {
    this.float = [{ name: 'dtype', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }];
    this.T = [{ ...this.float[0]!, name: 'T' }];
  }

  /** A new float32 variable of `shape` (a resource handle), initialized to `value` if given. */
  variable(shape: number[], value?: tf.Tensor): tf.Tensor {
    const s = this.b.binding;
    const handle = this.b.executeSingleOutput(
      'VarHandleOp',
      [
        { name: 'container', type: s.TF_ATTR_STRING, value: '' },
        { name: 'shared_name', type: s.TF_ATTR_STRING, value: ANONYMOUS },
        ...this.float,
        { name: 'shape', type: s.TF_ATTR_SHAPE, value: shape },
      ],
      [],
    );
    if (value) this.assign(handle, value);
    return handle;
  }

  assign(handle: tf.Tensor, value: tf.Tensor): void {
    this.b.executeMultipleOutputs('AssignVariableOp', this.float, [handle, value], 0);
  }

  /** The variable's value: shares its buffer until an update copies on write. */
  read(handle: tf.Tensor): tf.Tensor {
    return this.b.executeSingleOutput('ReadVariableOp', this.float, [handle]);
  }

  /** `op` (a `ResourceApply…` kernel, attribute `T` float32) in place; inputs as it names them. */
  apply(op: string, inputs: tf.Tensor[]): void {
    this.b.executeMultipleOutputs(op, this.T, inputs, 0);
  }
}

/**
 * torch.optim.AdamW (decoupled weight decay) through TensorFlow's fused `ResourceApplyAdam`.
 * Each trainable variable gets three float32 resource variables (weight, m, v); after an
 * update the tfjs variable is assigned the weight's value, which shares the resource's
 * buffer (no copy, no second copy of the weights kept). A tfjs variable assigned from
 * elsewhere (a checkpoint restore, a reference sync) is noticed by its data id and copied in
 * before the next update.
 *
 * TensorFlow's kernel computes `m += (g − m)(1 − β₁)`, `v += (g² − v)(1 − β₂)`,
 * `w −= α·m / (√v + ε̂)` with `α = lr·√(1 − β₂ᵖ)/(1 − β₁ᵖ)` in float32 from the powers it is
 * given. We give it powers 0 and `lr = γ·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, `ε̂ = ε·√(1 − β₂ᵗ)` computed
 * in float64: then `w −= γ/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`, torch's update, with the bias
 * corrections rounded once (float32 powers such as 1 − 0.999 would be off by 5e-5 relative).
 * Weight decay `w ← w − γλ·w` runs first, as `ResourceApplyGradientDescent`.
 */
export class FusedAdamW implements Optimizer {
  step = 0;
  private readonly ops: ResourceOps;
  private readonly w: tf.Tensor[];
  private readonly m: tf.Tensor[];
  private readonly v: tf.Tensor[];
  /** the data id each tfjs variable had when this optimizer last assigned it */
  private readonly shown: unknown[];

  constructor(
    readonly vars: tf.Variable[],
    readonly o: AdamWOptions,
  ) {
    const b = tensorflowBackend();
    if (!b)
      throw new Error(
        `optim "adamw_torch_fused" needs the tensorflow backend (tfjs-node); this run is on ` +
          `"${tf.getBackend()}": use "adamw_torch" or "auto"`,
      );
    this.ops = new ResourceOps(b);
    const zeros = (x: tf.Variable) =>
      tf.tidy(() => this.ops.variable(x.shape, tf.fill(x.shape, 0)));
    // the weights are copied in at the first update (no second copy of them until then)
    this.w = vars.map((x) => this.ops.variable(x.shape));
    this.m = vars.map(zeros);
    this.v = vars.map(zeros);
    this.shown = vars.map(() => undefined);
  }

  apply(grads: tf.Tensor[], lr: number, gradScale = 1): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.o;
    const bc1 = 1 - beta1 ** this.step;
    const sbc2 = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      const zero = tf.scalar(0);
      const args = [lr * (sbc2 / bc1), beta1, beta2, eps * sbc2].map((x) => tf.scalar(x));
      const decay = weightDecay ? tf.scalar(lr * weightDecay) : undefined;
      const scale = gradScale === 1 ? undefined : tf.scalar(gradScale);
      for (const [i, x] of this.vars.entries()) {
        const w = this.w[i]!;
        if (x.dataId !== this.shown[i]) this.ops.assign(w, x);
        if (decay) this.ops.apply('ResourceApplyGradientDescent', [w, decay, this.ops.read(w)]);
        const g = scale ? tf.mul(grads[i]!, scale) : grads[i]!;
        this.ops.apply('ResourceApplyAdam', [w, this.m[i]!, this.v[i]!, zero, zero, ...args, g]);
        x.assign(this.ops.read(w));
        this.shown[i] = x.dataId;
      }
    });
  }

  moments(): { m: Float32Array[]; v: Float32Array[] } {
    // not through tf.tidy: it walks a returned typed array element by element
    const host = (h: tf.Tensor) => {
      const t = this.ops.read(h);
      try {
        return t.dataSync() as Float32Array;
      } finally {
        t.dispose();
      }
    };
    return { m: this.m.map(host), v: this.v.map(host) };
  }

  setMoments(m: Float32Array[], v: Float32Array[]): void {
    checkMomentSizes(this.vars, m, v);
    tf.tidy(() => {
      for (const [i, x] of this.vars.entries()) {
        this.ops.assign(this.m[i]!, tf.tensor(m[i]!, x.shape, 'float32'));
        this.ops.assign(this.v[i]!, tf.tensor(v[i]!, x.shape, 'float32'));
      }
    });
  }

  dispose(): void {
    tf.dispose([...this.w, ...this.m, ...this.v]);
  }
}
