import * as tf from '@tensorflow/tfjs-core';

/**
 * Host copies of data tensors. A tensor made from host arrays (token ids, masks, lengths,
 * labels, scores) is registered with the array it came from, so code that needs its values
 * on the host (data checks, position ids, per-row targets) reads them without a device →
 * host transfer. Only the registered tensor itself has a copy; ops on it make new tensors.
 */
type HostArray = Float32Array | Int32Array | Uint8Array;
const HOST = new WeakMap<tf.Tensor, HostArray>();

/** Registers `data` (row-major, same length as `t`) as `t`'s host copy; returns `t`. */
export function withHostCopy<T extends tf.Tensor>(t: T, data: HostArray): T {
  if (data.length !== t.size)
    throw new Error(`withHostCopy: ${data.length} values for a tensor of size ${t.size}`);
  HOST.set(t, data);
  return t;
}

/** A float32 tensor made from host numbers, with its host copy registered. */
export function hostTensor<R extends tf.Rank>(
  values: readonly number[] | Float32Array,
  shape: readonly number[],
): tf.Tensor<R> {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return withHostCopy(tf.tensor(data, [...shape], 'float32') as unknown as tf.Tensor<R>, data);
}

/** The registered host copy of `t`, if any. */
export function hostCopyOf(t: tf.Tensor): HostArray | undefined {
  return HOST.get(t);
}

/** `t`'s values on the host: its registered copy, or (one device read) `dataSync()`. */
export function hostValues(t: tf.Tensor): HostArray {
  return HOST.get(t) ?? (t.dataSync() as HostArray);
}
