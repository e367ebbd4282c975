/**
 * Gemma 2 (transformers' `modeling_gemma2.py`): embeddings scaled by √hidden, RMSNorm with
 * `(1 + weight)`, norms before and after both attention and MLP, GeGLU MLP with
 * `gelu_pytorch_tanh`, attention scaled by `query_pre_attn_scalar^−½` with tanh soft-capping
 * of the scores, sliding windows on the `layer_types` layers (alternating by default), and
 * soft-capped final logits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { applyRope, embeddingLookup, geluNew, rmsNorm, ropeTables } from '../layers.js';
import { num, tokenIds } from './fields.js';
import { LLAMA_LINEAR_MODULES, layerTypesOf, projectionShapes } from './llama.js';
import { parseRope } from './rope.js';
import type { Architecture, ModelConfig } from './types.js';

function softcap(c: Record<string, unknown>, path: string, field: string, fallback: number) {
  const v = c[field];
  if (v === null) return undefined;
  return num(c, path, field, fallback);
}

export const gemma2: Architecture = {
  name: 'gemma2',
  modelTypes: ['gemma2'],
  parseConfig(c, path): ModelConfig {
    const act = c.hidden_activation ?? c.hidden_act ?? 'gelu_pytorch_tanh';
    if (act !== 'gelu_pytorch_tanh')
      throw new Error(
        `${path}: field 'hidden_activation' '${act}' is not supported (only gelu_pytorch_tanh)`,
      );
    if (c.use_bidirectional_attention === true)
      throw new Error(`${path}: field 'use_bidirectional_attention' true is not supported`);
    const hiddenSize = num(c, path, 'hidden_size');
    const numHeads = num(c, path, 'num_attention_heads');
    const numLayers = num(c, path, 'num_hidden_layers');
    const headDim = num(c, path, 'head_dim', 256);
    const maxPositions = num(c, path, 'max_position_embeddings', 8192);
    const window = c.sliding_window === null ? undefined : num(c, path, 'sliding_window', 4096);
    const layerTypes = layerTypesOf(c, path, numLayers, (i) =>
      (i + 1) % 2 ? 'sliding_attention' : 'full_attention',
    );
    const sliding = window !== undefined && layerTypes.includes('sliding_attention');
    const attentionBias = c.attention_bias === true;
    return {
      modelType: 'gemma2',
      architecture: 'gemma2',
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
      ...(sliding ? { slidingWindow: window, layerTypes } : {}),
      attentionScale: num(c, path, 'query_pre_attn_scalar', 256) ** -0.5,
      attnLogitSoftcap: softcap(c, path, 'attn_logit_softcapping', 50),
      finalLogitSoftcap: softcap(c, path, 'final_logit_softcapping', 30),
      tieWordEmbeddings: c.tie_word_embeddings !== false,
      qkvBias: attentionBias,
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
      for (const n of [
        'input_layernorm',
        'post_attention_layernorm',
        'pre_feedforward_layernorm',
        'post_feedforward_layernorm',
      ])
        m.set(`${p}${n}.weight`, [E]);
      projectionShapes(m, p, c);
    }
    m.set('model.norm.weight', [E]);
    if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, E]);
    return m;
  },
  isIgnorableBuffer: (name, c) =>
    /rotary_emb\.inv_freq$/.test(name) ||
    /embed_tokens\.embed_scale$/.test(name) ||
    (name === 'lm_head.weight' && c.tieWordEmbeddings),
  normWeightInit: 0,
  linearModules: LLAMA_LINEAR_MODULES,
  headWeight: (c) => (c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'),
  hidden(m, { ids, positions, B, T, training }) {
    const c = m.config;
    // Gemma's RMSNorm scales by (1 + weight)
    const norm = (x: tf.Tensor2D, n: string) =>
      rmsNorm(x, tf.add(m.param(n), 1) as tf.Tensor1D, c.normEps);
    const { cos, sin } = ropeTables(positions, B, T, c.headDim, c.rope!);
    let h = tf.mul(
      embeddingLookup(m.param('model.embed_tokens.weight') as tf.Tensor2D, ids),
      Math.fround(Math.sqrt(c.hiddenSize)),
    ) as tf.Tensor2D;
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const lin = (x: tf.Tensor2D, name: string) => m.linear(x, `${p}${name}`, 'out_in', training);
      const x = norm(h, `${p}input_layernorm.weight`);
      const q = applyRope(m.heads(lin(x, 'self_attn.q_proj'), B, T, c.numHeads), cos, sin);
      const k = applyRope(m.heads(lin(x, 'self_attn.k_proj'), B, T, c.numKvHeads), cos, sin);
      const v = m.heads(lin(x, 'self_attn.v_proj'), B, T, c.numKvHeads);
      const a = lin(m.attend(q, k, v, i), 'self_attn.o_proj');
      h = tf.add(h, norm(a, `${p}post_attention_layernorm.weight`)) as tf.Tensor2D;
      const y = norm(h, `${p}pre_feedforward_layernorm.weight`);
      const g = geluNew(lin(y, 'mlp.gate_proj')) as tf.Tensor2D;
      const f = lin(tf.mul(g, lin(y, 'mlp.up_proj')) as tf.Tensor2D, 'mlp.down_proj');
      h = tf.add(h, norm(f, `${p}post_feedforward_layernorm.weight`)) as tf.Tensor2D;
    }
    return norm(h, 'model.norm.weight');
  },
};
