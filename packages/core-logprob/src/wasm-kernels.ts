import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's backend object this module touches. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  dataIdMap: { get(id: unknown): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  incRef(dataId: unknown): void;
  wasm: {
    HEAPU8: Uint8Array;
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
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
  patchBatchMatMul();
  // The gradient tape clones every tensor it saves for the backward pass through `Identity`
  // (~400 per GPT-2-mini step) and its gradients cast to the same dtype often (~135); the
  // stock wasm kernels copied each one, doubling the saved activations' memory.
  patchToShareInput('Identity', () => true);
  patchToShareInput(
    'Cast',
    (args) => (args.attrs as { dtype: tf.DataType }).dtype === args.inputs.x!.dtype,
  );
}

/**
 * Replaces tfjs-backend-wasm's `kernelName` so that, where `shares(args)`, its output is a
 * reference to the input's memory (as its own `Reshape` and the cpu and tensorflow backends'
 * `Identity` do) instead of a copy. No kernel writes into its inputs' memory, so sharing it
 * is safe. Strings and the other cases go to the stock kernel. (A same-dtype `Cast` patch on
 * tensorflow, a ~17 µs TF op each, measured no gain per step, so it is not used there.)
 */
function patchToShareInput(
  kernelName: string,
  shares: (args: Parameters<tf.KernelFunc>[0]) => boolean,
): void {
  const stock = tf.getKernel(kernelName, 'wasm');
  if (!stock) return;
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string' || !shares(args)) return stock.kernelFunc(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/** Below ~48k multiply-adds per matrix the per-call cost (~50 µs) outweighs the stock loop. */
const MIN_MACS_PER_MATRIX = 48 * 1024;

/**
 * Replaces tfjs-backend-wasm's `BatchMatMul` for untransposed, equally batched operands
 * (attention's `Q·Kᵀ` and `A·V` once `matMulFast` has materialized the transposes). The
 * stock kernel sends every batch > 1 to a plain C++ loop (~1 GFLOP/s); only batch 1 goes to
 * XNNPACK (~20 GFLOP/s). This calls the module's own batch-1 kernel once per matrix on
 * tensors registered as views into the operands' heap memory: no copies, one output buffer.
 */
function patchBatchMatMul(): void {
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  if (!stock) return;
  // One wrapper per wasm module: a re-created backend brings a new module.
  const wrappers = new WeakMap<object, (...a: unknown[]) => void>();
  const kernelFunc: tf.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as unknown as WasmBackendLike;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const [M, K] = [a.shape[ra - 2]!, a.shape[ra - 1]!];
    const N = b.shape[rb - 1]!;
    const batch = tf.util.sizeFromShape(a.shape.slice(0, -2));
    if (
      transposeA ||
      transposeB ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      ra !== rb ||
      ra < 3 ||
      batch < 2 ||
      !tf.util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2)) ||
      b.shape[rb - 2] !== K ||
      M * K * N < MIN_MACS_PER_MATRIX
    ) {
      return stock.kernelFunc(args);
    }
    let wasmBatchMatMul = wrappers.get(backend.wasm);
    if (!wasmBatchMatMul) {
      wasmBatchMatMul = backend.wasm.cwrap('BatchMatMul', null, [
        'number',
        'array',
        'number',
        'number',
        'array',
        'number',
        'number',
        'number',
        'number',
      ]);
      wrappers.set(backend.wasm, wasmBatchMatMul);
    }
    const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
    // Offsets after makeOutput: allocating may grow (and replace) the heap buffer.
    const base = [a, b, out].map((t) => backend.dataIdMap.get(t.dataId).memoryOffset);
    const sizes = [M * K, K * N, M * N];
    const shapes = [
      [1, M, K],
      [1, K, N],
    ].map((sh) => new Uint8Array(new Int32Array(sh).buffer));
    const t = backend.wasm.tfjs;
    for (let i = 0; i < batch; i++) {
      // Fresh ids every time: XNNPACK caches its packed right operand by tensor id.
      const ids = sizes.map((size, j) => {
        const id = backend.dataIdNextNumber++;
        t.registerTensor(id, size, base[j]! + 4 * i * size);
        return id;
      });
      wasmBatchMatMul(ids[0], shapes[0], 3, ids[1], shapes[1], 3, false, false, ids[2]);
      for (const id of ids) t.disposeData(id);
    }
    return out;
  };
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc });
}

/** Float32 view of `t`'s memory on the wasm heap (offsets move when the heap grows: view late). */
function heapView(backend: WasmBackendLike, t: tf.TensorInfo, size: number): Float32Array {
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  const buffer = backend.wasm.HEAPU8.buffer;
  if (offset + 4 * size > buffer.byteLength)
    throw new Error('hostMap: the wasm heap view is stale (heap grown on another thread)');
  return new Float32Array(buffer, offset, size);
}

/**
 * A float32 tensor shaped like `inputs[0]`, filled by `fn(out, ins)` on the host: `ins` are
 * float32 views of `inputs` (all of `inputs[0]`'s size; read them, do not write), `out` the
 * new tensor's values. On wasm both are views of the heap itself — no copy in or out, one
 * pass over memory for a whole fused update (the optimizer's); on other backends the inputs
 * are read back and the output uploaded. Outside the gradient tape (no gradient).
 */
export function hostMap(
  inputs: readonly tf.Tensor[],
  fn: (out: Float32Array, ins: Float32Array[]) => void,
): tf.Tensor {
  const first = inputs[0]!;
  for (const t of inputs) {
    if (t.dtype !== 'float32' || t.size !== first.size)
      throw new Error(`hostMap: inputs must be float32 of size ${first.size}`);
  }
  if (tf.getBackend() !== 'wasm') {
    const out = new Float32Array(first.size);
    fn(
      out,
      inputs.map((t) => t.dataSync() as Float32Array),
    );
    return tf.tensor(out, first.shape, 'float32');
  }
  const backend = tf.backend() as unknown as WasmBackendLike;
  const info = backend.makeOutput(first.shape, 'float32');
  // Views after makeOutput: allocating may grow (and replace) the heap buffer.
  const views = inputs.map((t) => heapView(backend, t, first.size));
  fn(heapView(backend, info, first.size), views);
  return tf.engine().makeTensorFromTensorInfo(info);
}
