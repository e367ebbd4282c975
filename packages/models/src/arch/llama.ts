/**
 * The Llama family (Llama, Qwen2/Qwen2.5, Mistral without a binding sliding window): RoPE,
 * RMSNorm, SwiGLU MLP, grouped-query attention, nn.Linear weights `[out, in]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { applyRope, embeddingLookup, rmsNorm, ropeTables, silu } from '../layers.js';
import { num, ropeThetaOf, tokenIds } from './fields.js';
import type { Architecture, ModelConfig } from './types.js';

export const llama: Architecture = {
  name: 'llama',
  modelTypes: ['llama', 'qwen2', 'mistral'],
  parseConfig(c, path): ModelConfig {
    const modelType = c.model_type as string;
    if (modelType === 'mistral' || modelType === 'qwen2') {
      const sw = c.sliding_window;
      const useSw =
        modelType === 'qwen2' ? c.use_sliding_window === true : sw !== null && sw !== undefined;
      if (useSw) {
        throw new Error(
          `${path}: sliding-window attention is not supported (sliding_window ${JSON.stringify(sw)}); use a config with sliding_window null`,
        );
      }
    }
    const act = c.hidden_act ?? 'silu';
    if (act !== 'silu')
      throw new Error(`${path}: hidden_act '${act}' is not supported (only silu)`);
    const hiddenSize = num(c, path, 'hidden_size');
    const numHeads = num(c, path, 'num_attention_heads');
    const attentionBias = c.attention_bias === true;
    return {
      modelType,
      architecture: 'llama',
      vocabSize: num(c, path, 'vocab_size'),
      hiddenSize,
      numLayers: num(c, path, 'num_hidden_layers'),
      numHeads,
      numKvHeads: num(c, path, 'num_key_value_heads', numHeads),
      headDim: num(c, path, 'head_dim', hiddenSize / numHeads),
      intermediateSize: num(c, path, 'intermediate_size'),
      maxPositions: num(c, path, 'max_position_embeddings', 2048),
      normEps: num(c, path, 'rms_norm_eps', 1e-6),
      ropeTheta: ropeThetaOf(c, path),
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
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    m.set('model.embed_tokens.weight', [c.vocabSize, E]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`;
      m.set(`${p}input_layernorm.weight`, [E]);
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
      m.set(`${p}post_attention_layernorm.weight`, [E]);
      m.set(`${p}mlp.gate_proj.weight`, [c.intermediateSize, E]);
      m.set(`${p}mlp.up_proj.weight`, [c.intermediateSize, E]);
      m.set(`${p}mlp.down_proj.weight`, [E, c.intermediateSize]);
    }
    m.set('model.norm.weight', [E]);
    if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, E]);
    return m;
  },
  isIgnorableBuffer: (name, c) =>
    /rotary_emb\.inv_freq$/.test(name) || (name === 'lm_head.weight' && c.tieWordEmbeddings),
  linearModules: {
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
  },
  headWeight: (c) => (c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'),
  hidden(m, { ids, positions, B, T, training }) {
    const c = m.config;
    const v1 = (n: string) => m.param(n) as tf.Tensor1D;
    const { cos, sin } = ropeTables(positions, B, T, c.headDim, c.ropeTheta);
    let h = embeddingLookup(m.param('model.embed_tokens.weight') as tf.Tensor2D, ids);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const lin = (x: tf.Tensor2D, name: string) => m.linear(x, `${p}${name}`, 'out_in', training);
      const x = rmsNorm(h, v1(`${p}input_layernorm.weight`), c.normEps);
      const q = applyRope(m.heads(lin(x, 'self_attn.q_proj'), B, T, c.numHeads), cos, sin);
      const k = applyRope(m.heads(lin(x, 'self_attn.k_proj'), B, T, c.numKvHeads), cos, sin);
      const v = m.heads(lin(x, 'self_attn.v_proj'), B, T, c.numKvHeads);
      h = tf.add(h, lin(m.attend(q, k, v, i), 'self_attn.o_proj')) as tf.Tensor2D;
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
