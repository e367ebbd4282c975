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
 * Replaces tfjs-backend-wasm's `Slice` and `SplitV` kernels with copies on the heap: one
 * memmove per contiguous run of the slice (the whole slice when it is contiguous). The stock
 * `Slice` first copies the *whole* input out of the wasm heap (`readSync`) for every slice,
 * so slicing a chunk of a `[B, T, V]` logits tensor cost a full copy of it (chunked log-probs
 * were 3× slower than a full log-softmax), and the stock `SplitV` does that once per piece
 * before an element-by-element loop (GPT-2's q, k, v split: 4% of a GPT-2-mini step).
 * Strings, complex numbers and slices whose runs are shorter than {@link MIN_RUN} elements
 * still go to the stock kernels. Idempotent.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  const stock = tf.getKernel('Slice', 'wasm');
  if (!stock) return;
  patched = true;
  const slice: tf.KernelFunc = function sliceOnHeap(args) {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as {
      begin: number | number[];
      size: number | number[];
    };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size) as [
      number[],
      number[],
    ];
    const runs = sliceRuns(x.shape, b, s);
    if (x.dtype === 'string' || x.dtype === 'complex64' || !runs) return stock.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(s, x.dtype);
    if (runs.count === 0) return out;
    const bpe = tf.util.bytesPerElement(x.dtype);
    // Read offsets after makeOutput: allocating may grow (and replace) the heap buffer.
    const from = backend.dataIdMap.get(x.dataId).memoryOffset;
    const to = backend.dataIdMap.get(out.dataId).memoryOffset;
    const heap = backend.wasm.HEAPU8;
    const bytes = runs.length * bpe;
    for (let r = 0; r < runs.count; r++) {
      const at = from + runs.offset(r) * bpe;
      heap.copyWithin(to + r * bytes, at, at + bytes);
    }
    return out;
  };
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc: slice });
  const stockSplit = tf.getKernel('SplitV', 'wasm');
  if (stockSplit) {
    tf.unregisterKernel('SplitV', 'wasm');
    tf.registerKernel({
      kernelName: 'SplitV',
      backendName: 'wasm',
      kernelFunc: function splitOnHeap(args) {
        const x = args.inputs.x as tf.TensorInfo;
        const { numOrSizeSplits, axis } = args.attrs as unknown as {
          numOrSizeSplits: number | number[];
          axis: number;
        };
        const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
        const begin = x.shape.map(() => 0);
        return tf.backend_util.prepareSplitSize(x, numOrSizeSplits, a).map((n) => {
          const size = [...x.shape];
          size[a] = n;
          const piece = slice({ ...args, attrs: { begin: [...begin], size } }) as tf.TensorInfo;
          begin[a]! += n;
          return piece;
        });
      },
    });
  }
  patchBatchMatMul();
  patchTranspose();
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

/**
 * `shape` transposed by `perm` as one "swap two axes" move, `[batch, R, C, inner]` →
 * `[batch, C, R, inner]`, once size-1 axes are dropped and axes that stay neighbours are
 * merged; undefined for any other permutation (e.g. a full reversal of three axes).
 */
export function swapForm(
  shape: readonly number[],
  perm: readonly number[],
): { batch: number; R: number; C: number; inner: number } | undefined {
  // drop size-1 axes, renumbering the rest
  const kept = shape.map((d, i) => (d === 1 ? -1 : i)).filter((i) => i >= 0);
  const renum = new Map(kept.map((axis, j) => [axis, j]));
  const p = perm.filter((a) => shape[a] !== 1).map((a) => renum.get(a)!);
  const dims = kept.map((a) => shape[a]!);
  // merge output neighbours that are input neighbours too: runs of consecutive input axes
  const runs: number[][] = [];
  for (const a of p) {
    const last = runs.at(-1);
    if (last && last.at(-1)! + 1 === a) last.push(a);
    else runs.push([a]);
  }
  const size = (run: number[]) => run.reduce((n, a) => n * dims[a]!, 1);
  // runs in input order: the run starting at the smallest input axis first
  const byInput = [...runs].sort((x, y) => x[0]! - y[0]!);
  const order = runs.map((r) => byInput.indexOf(r)); // output position → input run index
  const n = order.length;
  // identity (after merging): a plain copy; then [1, 0], [0, 2, 1], [1, 0, 2], [0, 2, 1, 3]
  if (n <= 1) return { batch: 1, R: 1, C: size(byInput[0] ?? []), inner: 1 };
  const lead = order[0] === 0 && n > 2 ? 1 : 0; // a leading batch run that stays in place
  const trail = order[n - 1] === n - 1 && n - lead > 2 ? 1 : 0; // a trailing inner run
  if (n - lead - trail !== 2) return undefined;
  if (order[lead] !== lead + 1 || order[lead + 1] !== lead) return undefined;
  return {
    batch: lead ? size(byInput[0]!) : 1,
    R: size(byInput[lead]!),
    C: size(byInput[lead + 1]!),
    inner: trail ? size(byInput[n - 1]!) : 1,
  };
}

/** Slices whose contiguous runs are shorter than this go to the stock kernels (a memmove each would cost more). */
const MIN_RUN = 8;

/**
 * The slice `begin`/`size` of a row-major `shape` as `count` contiguous runs of `length`
 * elements, run `r` starting at element `offset(r)` of the input: the axes after the last one
 * the slice cuts are taken whole, so each run spans them. Undefined when the runs would be
 * shorter than {@link MIN_RUN} (and the slice is not empty or one run).
 */
export function sliceRuns(
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
): { count: number; length: number; offset: (r: number) => number } | undefined {
  const rank = shape.length;
  const n = size.reduce((p, d) => p * d, 1);
  if (n === 0) return { count: 0, length: 0, offset: () => 0 };
  // j: the innermost axis that is cut (or the first axis); every axis after it is whole
  let j = rank - 1;
  while (j > 0 && size[j] === shape[j]) j--;
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, d) => p * d, 1));
  const length = rank === 0 ? 1 : size[j]! * strides[j]!;
  const count = n / length;
  if (count > 1 && length < MIN_RUN) return undefined;
  const start = begin.reduce((o, b, a) => o + b * strides[a]!, 0);
  // run r's index over the outer axes 0..j-1, in row-major order
  const outer = size.slice(0, Math.max(j, 0));
  const offset = (r: number) => {
    let o = start;
    for (let a = outer.length - 1; a >= 0; a--) {
      o += (r % outer[a]!) * strides[a]!;
      r = Math.floor(r / outer[a]!);
    }
    return o;
  };
  return { count, length, offset };
}

/** Tile edge of the blocked transpose: 32 × 32 four-byte elements (4 KiB) fit in L1 both ways. */
const TILE = 32;

/**
 * `x` `[batch, R, C, inner]` into `out` `[batch, C, R, inner]`, both 32-bit elements (bit
 * copies: Int32Array views, so NaN payloads survive). Cache-blocked in {@link TILE} tiles
 * when `inner` is 1; contiguous `inner` runs are copied whole otherwise.
 */
function swapAxes(
  x: Int32Array,
  out: Int32Array,
  batch: number,
  R: number,
  C: number,
  inner: number,
): void {
  const plane = R * C * inner;
  for (let b = 0; b < batch; b++) {
    const base = b * plane;
    if (inner > 1) {
      for (let r = 0; r < R; r++) {
        for (let c = 0; c < C; c++) {
          const from = base + (r * C + c) * inner;
          const to = base + (c * R + r) * inner;
          if (inner >= 16) out.set(x.subarray(from, from + inner), to);
          else for (let k = 0; k < inner; k++) out[to + k] = x[from + k]!;
        }
      }
      continue;
    }
    for (let r0 = 0; r0 < R; r0 += TILE) {
      const r1 = Math.min(r0 + TILE, R);
      for (let c0 = 0; c0 < C; c0 += TILE) {
        const c1 = Math.min(c0 + TILE, C);
        // The inner loop runs along the shorter stride: a tile's 32 accesses a power-of-two
        // long stride apart share one L1 set (4× slower on a [8192, 256] block).
        if (R > C) {
          for (let c = c0; c < c1; c++) {
            let i = base + r0 * C + c;
            let o = base + c * R + r0;
            for (let r = r0; r < r1; r++) {
              out[o++] = x[i]!;
              i += C;
            }
          }
        } else {
          for (let r = r0; r < r1; r++) {
            let i = base + r * C + c0;
            let o = base + c0 * R + r;
            for (let c = c0; c < c1; c++) {
              out[o] = x[i++]!;
              o += R;
            }
          }
        }
      }
    }
  }
}

/**
 * Replaces tfjs-backend-wasm's `Transpose` for 32-bit tensors whose permutation is one swap
 * of two axes ({@link swapForm}: matrices, batched matrices, attention's head split and
 * merge) with a cache-blocked copy on the heap. The stock kernel walks the output with
 * per-element index arithmetic and strided reads: 4–19 ns per element on GPT-2 shapes
 * (19 for a `[8192, 256]` logits block), against ~1–2 here. Other cases go to the stock kernel.
 */
function patchTranspose(): void {
  const stock = tf.getKernel('Transpose', 'wasm');
  if (!stock) return;
  const kernelFunc: tf.KernelFunc = function blockedTranspose(args) {
    const x = args.inputs.x as tf.TensorInfo;
    const { perm } = args.attrs as { perm: number[] };
    const form = x.dtype === 'float32' || x.dtype === 'int32' ? swapForm(x.shape, perm) : undefined;
    if (!form) return stock.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(
      perm.map((a) => x.shape[a]!),
      x.dtype,
    );
    const n = tf.util.sizeFromShape(x.shape);
    if (n === 0) return out;
    // Views after makeOutput: allocating may grow (and replace) the heap buffer.
    const [src, dst] = [x, out].map((t) => heapView(backend, t, n, Int32Array));
    swapAxes(src!, dst!, form.batch, form.R, form.C, form.inner);
    return out;
  };
  tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ kernelName: 'Transpose', backendName: 'wasm', kernelFunc });
}

/**
 * A view of `t`'s memory on the wasm heap, float32 unless `Type` says otherwise (offsets move
 * when the heap grows: view late).
 */
function heapView<A extends Float32Array | Int32Array = Float32Array>(
  backend: WasmBackendLike,
  t: tf.TensorInfo,
  size: number,
  Type: new (buffer: ArrayBufferLike, offset: number, length: number) => A = Float32Array as never,
): A {
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  const buffer = backend.wasm.HEAPU8.buffer;
  if (offset + 4 * size > buffer.byteLength)
    throw new Error('wasm kernels: the heap view is stale (heap grown on another thread)');
  return new Type(buffer, offset, size);
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
