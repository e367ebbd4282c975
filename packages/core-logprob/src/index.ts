import './gradients.js';

export * from './backend.js';
export * from './batch.js';
export * from './compose.js';
export * from './config.js';
export * from './grad.js';
export * from './host.js';
export * from './layouts.js';
export * from './logprobs.js';
export * from './math.js';
export * from './objective.js';
export * from './random.js';
export * from './records.js';
export {
  handToTensorflow,
  matMulBf16,
  type OpAttr,
  releaseBf16Weights,
  sumOfSquares,
  type TensorflowBackend,
  tensorflowBackend,
} from './tensorflow-ops.js';
export { hostMap } from './wasm-kernels.js';
export { WASM_MAX_THREADS } from './wasm-threads.js';
