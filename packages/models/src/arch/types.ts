/**
 * The architecture interface: each module in `arch/` describes one family of Hugging Face
 * causal LMs — how to read its `config.json`, its parameter names and shapes, the linear
 * modules LoRA may target, and its forward pass — and `arch/index.ts` registers it by
 * `model_type`. Nothing outside `arch/` branches on the architecture.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { RopeSpec } from './rope.js';

export type { RopeSpec };

/** transformers 5's `layer_types` entries. */
export type LayerType = 'full_attention' | 'sliding_attention';

/** A parsed `config.json`, normalized across architectures. */
export interface ModelConfig {
  /** Hugging Face `model_type` */
  modelType: string;
  /** the `arch/` module that runs it (`gpt2`, `llama`) */
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** = numHeads unless grouped-query attention */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  /** RoPE settings (absent for learned absolute positions) */
  rope?: RopeSpec;
  /** the attention window of layers whose `layerTypes` entry is `sliding_attention` */
  slidingWindow?: number;
  /** per layer, where some layers use a sliding window (else every layer is full attention) */
  layerTypes?: LayerType[];
  /** RMSNorm of each head's queries and keys before RoPE (Qwen3's q_norm/k_norm) */
  qkNorm?: boolean;
  /** attention scores' scale (default 1/√headDim; Gemma: query_pre_attn_scalar^−½) */
  attentionScale?: number;
  /** tanh soft-capping of the attention scores, `cap·tanh(s/cap)` (Gemma 2) */
  attnLogitSoftcap?: number;
  /** tanh soft-capping of the final logits (Gemma 2) */
  finalLogitSoftcap?: number;
  tieWordEmbeddings: boolean;
  /** biases on q/k/v projections (Qwen2; Llama's `attention_bias`) */
  qkvBias: boolean;
  /** bias on the attention output projection (Llama's `attention_bias`) */
  oBias: boolean;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
  /** the raw config.json, written back unchanged on save */
  raw: Record<string, unknown>;
}

/** Past keys and values per layer, `[B, nKV, S, headDim]` (keys after RoPE). */
export interface KVCache {
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[];
}

/** Weight layout of a linear module: `[out, in]` (nn.Linear) or `[in, out]` (GPT-2's Conv1D). */
export type LinearLayout = 'out_in' | 'in_out';

/** What an architecture's forward pass uses of the model (implemented by `CausalLM`). */
export interface ArchModel {
  readonly config: ModelConfig;
  /** a parameter by its Hugging Face name */
  param(name: string): tf.Tensor;
  /** a linear module by its HF name (weight, optional bias, LoRA adapter), `[N, in] → [N, out]` */
  linear(x: tf.Tensor2D, module: string, layout: LinearLayout, training: boolean): tf.Tensor2D;
  /** `[B·T, E] → [B, heads, T, headDim]` */
  heads(x: tf.Tensor2D, B: number, T: number, n: number): tf.Tensor4D;
  /** causal attention of layer `layer` with the KV cache, `→ [B·T, heads·headDim]` */
  attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number): tf.Tensor2D;
}

/** One forward pass's inputs, positions already computed from the attention mask. */
export interface ForwardArgs {
  /** [B·T] int32 token ids */
  ids: tf.Tensor1D;
  /** B·T position ids (cumsum(mask) − 1, as transformers' generate) */
  positions: Int32Array;
  B: number;
  T: number;
  training: boolean;
}

export interface Architecture {
  /** the module's name, stored as `ModelConfig.architecture` */
  readonly name: string;
  /** the Hugging Face `model_type` values it reads */
  readonly modelTypes: readonly string[];
  /** reads `config.json`; a field that would change the math and that this module does not handle is an error naming it */
  parseConfig(raw: Record<string, unknown>, path: string): ModelConfig;
  /** Hugging Face parameter names and shapes (the state_dict) */
  parameterShapes(c: ModelConfig): Map<string, number[]>;
  /** initial value of norm weights in `CausalLM.random` (1; 0 where the norm scales by 1 + w) */
  readonly normWeightInit?: number;
  /** checkpoint tensors that are buffers or tied copies, ignored on load */
  isIgnorableBuffer(name: string, c: ModelConfig): boolean;
  /** LoRA: the per-layer prefix, the linear modules of a layer, their weight layout */
  readonly linearModules: { layerPrefix: string; modules: readonly string[]; layout: LinearLayout };
  /** the LM head's weight name (the embedding when tied) */
  headWeight(c: ModelConfig): string;
  /** throws if a position id cannot be encoded (learned absolute positions) */
  checkPositions?(c: ModelConfig, maxPosition: number): void;
  /** final hidden states `[B·T, E]` */
  hidden(m: ArchModel, a: ForwardArgs): tf.Tensor2D;
}
