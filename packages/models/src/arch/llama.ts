/**
 * The Llama family (Llama, Qwen2/Qwen2.5, Mistral): RoPE (every type in `rope.ts`), RMSNorm,
 * SwiGLU MLP, grouped-query attention, nn.Linear weights `[out, in]`, sliding-window
 * attention where the config makes it bind. `llamaFamily` is shared with the variants that
 * differ only in small ways (Qwen3's q/k norms: `qwen3.ts`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { applyRope, embeddingLookup, rmsNorm, ropeTables, silu } from '../layers.js';
import { num, tokenIds } from './fields.js';
import { parseRope } from './rope.js';
import type { Architecture, LayerType, ModelConfig } from './types.js';

export interface LlamaVariant {
  name: string;
  modelTypes: readonly string[];
  /** RMSNorm of each head's queries and keys before RoPE (Qwen3) */
  qkNorm?: boolean;
  /** `head_dim` when config.json omits it (Qwen3Config: 128; others hidden/heads) */
  defaultHeadDim?: number;
}

/** `layer_types` as transformers 5 writes it, or `fallback(i)` per layer when absent. */
export function layerTypesOf(
  c: Record<string, unknown>,
  path: string,
  numLayers: number,
  fallback: (layer: number) => LayerType,
): LayerType[] {
  const given = c.layer_types;
  if (given === undefined || given === null)
    return Array.from({ length: numLayers }, (_, i) => fallback(i));
  if (
    !Array.isArray(given) ||
    given.length !== numLayers ||
    !given.every((t) => t === 'full_attention' || t === 'sliding_attention')
  )
    throw new Error(
      `${path}: field 'layer_types' must list ${numLayers} of 'full_attention' | 'sliding_attention', got ${JSON.stringify(given)}`,
    );
  return given as LayerType[];
}

/** The q/k/v/o projections (with their biases) and the gated MLP of layer prefix `p`. */
export function projectionShapes(m: Map<string, number[]>, p: string, c: ModelConfig): void {
  const E = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  m.set(`${p}self_attn.q_proj.weight`, [q, E]);
  m.set(`${p}self_attn.k_proj.weight`, [kv, E]);
  m.set(`${p}self_attn.v_proj.weight`, [kv, E]);
  if (c.qkvBias) {
    m.set(`${p}self_attn.q_proj.bias`, [q]);
    m.set(`${p}self_attn.k_proj.bias`, [kv]);
    m.set(`${p}self_attn.v_proj.bias`, [kv]);
  }
  m.set(`${p}self_attn.o_proj.weight`, [E, q]);
  if (c.oBias) m.set(`${p}self_attn.o_proj.bias`, [E]);
  m.set(`${p}mlp.gate_proj.weight`, [c.intermediateSize, E]);
  m.set(`${p}mlp.up_proj.weight`, [c.intermediateSize, E]);
  m.set(`${p}mlp.down_proj.weight`, [E, c.intermediateSize]);
}

/** LoRA targets of the Llama-style decoder layer (nn.Linear, `[out, in]`). */
export const LLAMA_LINEAR_MODULES: Architecture['linearModules'] = Object.freeze({
  layerPrefix: 'model.layers',
  modules: [
    'self_attn.q_proj',
    'self_attn.k_proj',
    'self_attn.v_proj',
    'self_attn.o_proj',
    'mlp.gate_proj',
    'mlp.up_proj',
    'mlp.down_proj',
  ],
  layout: 'out_in',
});

/** Which layers use a sliding window, as transformers 5's configs decide it. */
function slidingLayers(
  c: Record<string, unknown>,
  path: string,
  modelType: string,
  numLayers: number,
): { slidingWindow?: number; layerTypes?: LayerType[] } {
  const sw = c.sliding_window;
  const window = (): number => {
    if (typeof sw !== 'number' || !Number.isInteger(sw) || sw < 1)
      throw new Error(
        `${path}: field 'sliding_window' must be an integer ≥ 1, got ${JSON.stringify(sw)}`,
      );
    return sw;
  };
  if (modelType === 'mistral') {
    // MistralModel: a sliding window on every layer unless sliding_window is null.
    if (sw === null || sw === undefined) return {};
    return { slidingWindow: window(), layerTypes: Array(numLayers).fill('sliding_attention') };
  }
  if (modelType === 'qwen2' || modelType === 'qwen3') {
    const given = c.layer_types;
    if (c.use_sliding_window !== true) {
      if (Array.isArray(given) && given.includes('sliding_attention'))
        throw new Error(
          `${path}: field 'layer_types' has sliding_attention layers but use_sliding_window is not true`,
        );
      return {};
    }
    const w = window();
    const maxWindow = num(c, path, 'max_window_layers', 28);
    const types = layerTypesOf(c, path, numLayers, (i) =>
      i >= maxWindow ? 'sliding_attention' : 'full_attention',
    );
    return types.includes('sliding_attention') ? { slidingWindow: w, layerTypes: types } : {};
  }
  return {};
}

export function llamaFamily(v: LlamaVariant): Architecture {
  return {
    name: v.name,
    modelTypes: v.modelTypes,
    parseConfig(c, path): ModelConfig {
      const modelType = c.model_type as string;
      const act = c.hidden_act ?? 'silu';
      if (act !== 'silu')
        throw new Error(`${path}: field 'hidden_act' '${act}' is not supported (only silu)`);
      if (c.mlp_bias === true)
        throw new Error(`${path}: field 'mlp_bias' true is not supported (MLP biases)`);
      const hiddenSize = num(c, path, 'hidden_size');
      const numHeads = num(c, path, 'num_attention_heads');
      const numLayers = num(c, path, 'num_hidden_layers');
      const headDim = num(c, path, 'head_dim', v.defaultHeadDim ?? hiddenSize / numHeads);
      const maxPositions = num(c, path, 'max_position_embeddings', 2048);
      // Qwen2: q/k/v biases always; Llama, Qwen3: `attention_bias` on q/k/v/o; Mistral: none.
      const attentionBias = modelType !== 'mistral' && c.attention_bias === true;
      return {
        modelType,
        architecture: v.name,
        vocabSize: num(c, path, 'vocab_size'),
        hiddenSize,
        numLayers,
        numHeads,
        numKvHeads: num(c, path, 'num_key_value_heads', numHeads),
        headDim,
        intermediateSize: num(c, path, 'intermediate_size'),
        maxPositions,
        normEps: num(c, path, 'rms_norm_eps', 1e-6),
        rope: parseRope(c, path, headDim, maxPositions),
        ...slidingLayers(c, path, modelType, numLayers),
        qkNorm: v.qkNorm === true,
        tieWordEmbeddings: c.tie_word_embeddings === true,
        qkvBias: modelType === 'qwen2' || attentionBias,
        oBias: attentionBias,
        ...tokenIds(c),
        raw: c,
      };
    },
    parameterShapes(c) {
      const m = new Map<string, number[]>();
      const E = c.hiddenSize;
      m.set('model.embed_tokens.weight', [c.vocabSize, E]);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}.`;
        m.set(`${p}input_layernorm.weight`, [E]);
        projectionShapes(m, p, c);
        if (c.qkNorm) {
          m.set(`${p}self_attn.q_norm.weight`, [c.headDim]);
          m.set(`${p}self_attn.k_norm.weight`, [c.headDim]);
        }
        m.set(`${p}post_attention_layernorm.weight`, [E]);
      }
      m.set('model.norm.weight', [E]);
      if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, E]);
      return m;
    },
    isIgnorableBuffer: (name, c) =>
      /rotary_emb\.inv_freq$/.test(name) || (name === 'lm_head.weight' && c.tieWordEmbeddings),
    linearModules: LLAMA_LINEAR_MODULES,
    headWeight: (c) => (c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'),
    hidden(m, { ids, positions, B, T, training }) {
      const c = m.config;
      const v1 = (n: string) => m.param(n) as tf.Tensor1D;
      if (!c.rope) throw new Error(`${c.modelType}: no RoPE settings`);
      const { cos, sin } = ropeTables(positions, B, T, c.headDim, c.rope);
      // Qwen3: RMSNorm over each head's dimensions (the last axis) before RoPE.
      const norm = (x: tf.Tensor4D, w: string) =>
        c.qkNorm
          ? (rmsNorm(x as tf.Tensor as tf.Tensor2D, v1(w), c.normEps) as tf.Tensor as tf.Tensor4D)
          : x;
      let h = embeddingLookup(m.param('model.embed_tokens.weight') as tf.Tensor2D, ids);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}.`;
        const lin = (x: tf.Tensor2D, name: string) =>
          m.linear(x, `${p}${name}`, 'out_in', training);
        const x = rmsNorm(h, v1(`${p}input_layernorm.weight`), c.normEps);
        const q = m.heads(lin(x, 'self_attn.q_proj'), B, T, c.numHeads);
        const k = m.heads(lin(x, 'self_attn.k_proj'), B, T, c.numKvHeads);
        const qr = applyRope(norm(q, `${p}self_attn.q_norm.weight`), cos, sin);
        const kr = applyRope(norm(k, `${p}self_attn.k_norm.weight`), cos, sin);
        const val = m.heads(lin(x, 'self_attn.v_proj'), B, T, c.numKvHeads);
        h = tf.add(h, lin(m.attend(qr, kr, val, i), 'self_attn.o_proj')) as tf.Tensor2D;
        const y = rmsNorm(h, v1(`${p}post_attention_layernorm.weight`), c.normEps);
        const g = silu(lin(y, 'mlp.gate_proj'));
        h = tf.add(
          h,
          lin(tf.mul(g, lin(y, 'mlp.up_proj')) as tf.Tensor2D, 'mlp.down_proj'),
        ) as tf.Tensor2D;
      }
      return rmsNorm(h, v1('model.norm.weight'), c.normEps);
    },
  };
}

export const llama: Architecture = llamaFamily({
  name: 'llama',
  modelTypes: ['llama', 'qwen2', 'mistral'],
});
