/** Qwen3: the Llama family with RMSNorm on each head's queries and keys (`q_norm`, `k_norm`). */
import { llamaFamily } from './llama.js';

export const qwen3 = llamaFamily({
  name: 'qwen3',
  modelTypes: ['qwen3'],
  qkNorm: true,
  defaultHeadDim: 128,
});
