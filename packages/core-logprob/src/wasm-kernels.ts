import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's backend object this module touches. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

let patched = false;

/**
 * Replaces tfjs-backend-wasm's `Slice` kernel for contiguous slices with one in-heap
 * memmove. The stock kernel first copies the *whole* input out of the wasm heap
 * (`readSync`) for every slice, so slicing a chunk of a `[B, T, V]` logits tensor costs a
 * full copy of it; that made chunked log-probs 3× slower than a full log-softmax.
 * Non-contiguous slices and strings still go to the stock kernel. Idempotent.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  const stock = tf.getKernel('Slice', 'wasm');
  if (!stock) return;
  patched = true;
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const backend = args.backend as unknown as WasmBackendLike;
    const { begin, size } = args.attrs as unknown as {
      begin: number | number[];
      size: number | number[];
    };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size) as [
      number[],
      number[],
    ];
    const n = tf.util.sizeFromShape(s);
    if (x.dtype === 'string' || n === 0 || !tf.slice_util.isSliceContinous(x.shape, b, s)) {
      return stock.kernelFunc(args);
    }
    const offset = tf.slice_util.computeFlatOffset(b, tf.util.computeStrides(x.shape));
    const bpe = tf.util.bytesPerElement(x.dtype);
    const out = backend.makeOutput(s, x.dtype);
    // Read offsets after makeOutput: allocating may grow (and replace) the heap buffer.
    const from = backend.dataIdMap.get(x.dataId).memoryOffset + offset * bpe;
    const to = backend.dataIdMap.get(out.dataId).memoryOffset;
    backend.wasm.HEAPU8.copyWithin(to, from, from + n * bpe);
    return out;
  };
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc });
}
