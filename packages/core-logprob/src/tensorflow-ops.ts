/**
 * Raw TensorFlow ops on the tensorflow backend (tfjs-node), for what tfjs has no kernel for:
 * resource variables with TensorFlow's fused optimizer kernels (@alignjs/trainer's
 * `adamw_torch_fused`) and bfloat16 matmuls (`bf16`, as torch's CPU autocast runs them).
 */
import * as tf from '@tensorflow/tfjs-core';

/** One op attribute as tfjs-node's binding takes it. */
export interface OpAttr {
  name: string;
  type: number;
  value: string | number | boolean | number[];
}

/** What tfjs-node's binding returns for each output: an id into its tensor map. */
interface OutputInfo {
  id: number;
  shape: number[];
  dtype: number;
}

/** tfjs-node's backend as far as raw TensorFlow ops go (not in tfjs-core's types). */
export interface TensorflowBackend {
  binding: Record<
    'TF_ATTR_STRING' | 'TF_ATTR_TYPE' | 'TF_ATTR_SHAPE' | 'TF_ATTR_BOOL' | 'TF_FLOAT',
    number
  > & {
    executeOp(name: string, attrs: OpAttr[], inputs: number[], outputs: number): OutputInfo[];
    deleteTensor(id: number): void;
  };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(
    name: string,
    attrs: OpAttr[],
    inputs: tf.Tensor[],
    outputs: number,
  ): tf.Tensor[];
  getInputTensorIds(inputs: tf.Tensor[]): number[];
  createOutputTensor(info: OutputInfo): tf.Tensor;
}

/** The active backend when it is tfjs-node's (raw TensorFlow ops available), else undefined. */
export function tensorflowBackend(): TensorflowBackend | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const b = tf.backend() as unknown as Partial<TensorflowBackend>;
  return typeof b.executeSingleOutput === 'function' &&
    typeof b.executeMultipleOutputs === 'function' &&
    typeof b.createOutputTensor === 'function' &&
    typeof b.getInputTensorIds === 'function' &&
    typeof b.binding?.executeOp === 'function'
    ? (b as TensorflowBackend)
    : undefined;
}

/**
 * Hands `t`'s host values to TensorFlow now, on the tensorflow backend (elsewhere: nothing).
 * tfjs-node keeps a tensor made from a JS array as that array until an op first reads it,
 * then gives it to TensorFlow, which copies it unless it is 64-byte aligned (large arrays
 * from malloc are not): a model loaded tensor by tensor would otherwise hold every weight
 * twice (the JS arrays and TensorFlow's copies) through its first forward pass. After this
 * the JS array is garbage as soon as the caller drops it (or is TensorFlow's, shared).
 */
export function handToTensorflow(t: tf.Tensor): void {
  tensorflowBackend()?.getInputTensorIds([t]);
}

/** TensorFlow's `DT_BFLOAT16` (types.proto; tfjs-node's binding does not export it). */
const TF_BFLOAT16 = 14;

/**
 * bfloat16 copies of trainable weights (tf.Variables) cast by {@link matMulBf16}, by the
 * variable's current data: a weight is cast once per value — once per optimizer step, not
 * once per product (forward and backward) — as torch's autocast caches casts of leaf tensors
 * that require grad (frozen ones are cast per product, there and here). An
 * entry is replaced when its variable is assigned a new value; {@link releaseBf16Weights}
 * frees them all.
 */
const weightCasts = new Map<tf.Variable, { dataId: object; info: OutputInfo }>();
/** the same entries by data id: the tape's saved copies of a weight share its data */
const castsByData = new Map<object, OutputInfo>();

/** How many bfloat16 weight copies are cached (for tests). */
export function cachedBf16Weights(): number {
  return weightCasts.size;
}

/** Frees every cached bfloat16 weight copy (after training, or to release the memory). */
export function releaseBf16Weights(): void {
  const be = tensorflowBackend();
  for (const { info } of weightCasts.values()) be?.binding.deleteTensor(info.id);
  weightCasts.clear();
  castsByData.clear();
}

/**
 * `a·b` (optionally transposed, batch dimensions broadcast) as torch's CPU autocast runs a
 * matmul in bfloat16: both operands rounded to bfloat16 (round to nearest even), one
 * `BatchMatMulV2` in bfloat16 (oneDNN; float32 accumulation, AMX where the CPU has it), the
 * product rounded to bfloat16 and returned as float32. The bfloat16 intermediates never
 * become tfjs tensors (tfjs has no such dtype); they are freed here, but for a trainable
 * weight's (an operand that is a trainable `tf.Variable`, or shares one's data), which is
 * kept until the weight changes (see {@link releaseBf16Weights}). Throws off tensorflow.
 */
export function matMulBf16(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA = false,
  transposeB = false,
): tf.Tensor {
  const be = tensorflowBackend();
  if (!be)
    throw new Error(
      `bfloat16 matmuls need the tensorflow backend (tfjs-node); this run is on '${tf.getBackend()}'`,
    );
  const s = be.binding;
  const type = (name: string, value: number) => ({ name, type: s.TF_ATTR_TYPE, value });
  const cast = (id: number, from: number, to: number) =>
    s.executeOp(
      'Cast',
      [
        type('SrcT', from),
        type('DstT', to),
        { name: 'Truncate', type: s.TF_ATTR_BOOL, value: false },
      ],
      [id],
      1,
    )[0]!;
  const made: OutputInfo[] = [];
  const operand = (t: tf.Tensor): OutputInfo => {
    const cached = castsByData.get(t.dataId);
    if (cached) return cached;
    const info = cast(be.getInputTensorIds([t])[0]!, s.TF_FLOAT, TF_BFLOAT16);
    // a frozen weight (LoRA's base) is cast per product, as torch's autocast casts it: its
    // cached copy would cost half its float32 size for the whole run (+1 GB on a 0.5B model)
    if (!(t instanceof tf.Variable) || !t.trainable) {
      made.push(info);
      return info;
    }
    const old = weightCasts.get(t);
    if (old) {
      s.deleteTensor(old.info.id);
      castsByData.delete(old.dataId);
    }
    weightCasts.set(t, { dataId: t.dataId, info });
    castsByData.set(t.dataId, info);
    return info;
  };
  try {
    const x = operand(a);
    const y = operand(b);
    const p = s.executeOp(
      'BatchMatMulV2',
      [
        type('T', TF_BFLOAT16),
        { name: 'adj_x', type: s.TF_ATTR_BOOL, value: transposeA },
        { name: 'adj_y', type: s.TF_ATTR_BOOL, value: transposeB },
      ],
      [x.id, y.id],
      1,
    )[0]!;
    made.push(p);
    return be.createOutputTensor(cast(p.id, TF_BFLOAT16, s.TF_FLOAT));
  } finally {
    for (const t of made) s.deleteTensor(t.id);
  }
}

/**
 * Σx² of a float32 tensor — or of every tensor in a list, summed — as a scalar. On tensorflow
 * one `L2Loss` op per tensor (Σx²/2, summed and doubled once): a single pass with no
 * `[...shape]` square materialized (the gradient norm of a 124M-parameter model squared 124M
 * elements into new buffers every step); elsewhere `sum(square(x))`.
 */
export function sumOfSquares(x: tf.Tensor | readonly tf.Tensor[]): tf.Scalar {
  const xs: readonly tf.Tensor[] = Array.isArray(x) ? x : [x as tf.Tensor];
  if (xs.length === 0) throw new Error('sumOfSquares: no tensors');
  const be = tensorflowBackend();
  return tf.tidy(() => {
    const halves: tf.Tensor[] = []; // L2Loss: Σx²/2
    const wholes: tf.Tensor[] = [];
    const attrs = be && [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT }];
    for (const t of xs) {
      if (be && attrs && t.dtype === 'float32')
        halves.push(be.executeSingleOutput('L2Loss', attrs, [t]));
      else wholes.push(tf.sum(tf.square(t)));
    }
    const total = (ts: tf.Tensor[]) => (ts.length === 1 ? ts[0]! : tf.addN(ts));
    if (halves.length > 0) wholes.push(tf.mul(total(halves), 2));
    return total(wholes) as tf.Scalar;
  });
}
