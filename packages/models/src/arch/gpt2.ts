/** GPT-2: learned absolute positions, LayerNorm, GELU (tanh) MLP, Conv1D weights `[in, out]`. */
import * as tf from '@tensorflow/tfjs-core';
import { embeddingLookup, geluNew, layerNorm } from '../layers.js';
import { num, tokenIds } from './fields.js';
import type { Architecture, ModelConfig } from './types.js';

export const gpt2: Architecture = {
  name: 'gpt2',
  modelTypes: ['gpt2'],
  parseConfig(c, path): ModelConfig {
    const act = c.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new')
      throw new Error(
        `${path}: activation_function '${act}' is not supported for gpt2 (only gelu_new)`,
      );
    const hiddenSize = num(c, path, 'n_embd');
    const numHeads = num(c, path, 'n_head');
    return {
      modelType: 'gpt2',
      architecture: 'gpt2',
      vocabSize: num(c, path, 'vocab_size'),
      hiddenSize,
      numLayers: num(c, path, 'n_layer'),
      numHeads,
      numKvHeads: numHeads,
      headDim: hiddenSize / numHeads,
      intermediateSize: num(c, path, 'n_inner', 4 * hiddenSize),
      maxPositions: num(c, path, 'n_positions'),
      normEps: num(c, path, 'layer_norm_epsilon', 1e-5),
      tieWordEmbeddings: true,
      qkvBias: true,
      oBias: true,
      ...tokenIds(c),
      raw: c,
    };
  },
  parameterShapes(c) {
    const m = new Map<string, number[]>();
    const E = c.hiddenSize;
    m.set('transformer.wte.weight', [c.vocabSize, E]);
    m.set('transformer.wpe.weight', [c.maxPositions, E]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}.`;
      m.set(`${p}ln_1.weight`, [E]);
      m.set(`${p}ln_1.bias`, [E]);
      m.set(`${p}attn.c_attn.weight`, [E, 3 * E]);
      m.set(`${p}attn.c_attn.bias`, [3 * E]);
      m.set(`${p}attn.c_proj.weight`, [E, E]);
      m.set(`${p}attn.c_proj.bias`, [E]);
      m.set(`${p}ln_2.weight`, [E]);
      m.set(`${p}ln_2.bias`, [E]);
      m.set(`${p}mlp.c_fc.weight`, [E, c.intermediateSize]);
      m.set(`${p}mlp.c_fc.bias`, [c.intermediateSize]);
      m.set(`${p}mlp.c_proj.weight`, [c.intermediateSize, E]);
      m.set(`${p}mlp.c_proj.bias`, [E]);
    }
    m.set('transformer.ln_f.weight', [E]);
    m.set('transformer.ln_f.bias', [E]);
    return m;
  },
  isIgnorableBuffer: (name) => /\.attn\.(masked_)?bias$/.test(name) || name === 'lm_head.weight',
  linearModules: {
    layerPrefix: 'transformer.h',
    modules: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
    layout: 'in_out',
  },
  headWeight: () => 'transformer.wte.weight',
  checkPositions(c, maxPos) {
    if (maxPos >= c.maxPositions)
      throw new Error(`position ${maxPos} exceeds n_positions ${c.maxPositions}`);
  },
  hidden(m, { ids, positions, B, T, training }) {
    const c = m.config;
    const v1 = (n: string) => m.param(n) as tf.Tensor1D;
    const pos = tf.tensor1d(positions, 'int32');
    let h = tf.add(
      embeddingLookup(m.param('transformer.wte.weight') as tf.Tensor2D, ids),
      embeddingLookup(m.param('transformer.wpe.weight') as tf.Tensor2D, pos),
    ) as tf.Tensor2D;
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}.`;
      const x = layerNorm(h, v1(`${p}ln_1.weight`), v1(`${p}ln_1.bias`), c.normEps);
      const qkv = m.linear(x, `${p}attn.c_attn`, 'in_out', training);
      const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const n = c.numHeads;
      const o = m.attend(m.heads(q, B, T, n), m.heads(k, B, T, n), m.heads(v, B, T, n), i);
      h = tf.add(h, m.linear(o, `${p}attn.c_proj`, 'in_out', training)) as tf.Tensor2D;
      const y = layerNorm(h, v1(`${p}ln_2.weight`), v1(`${p}ln_2.bias`), c.normEps);
      const f = geluNew(m.linear(y, `${p}mlp.c_fc`, 'in_out', training)) as tf.Tensor2D;
      h = tf.add(h, m.linear(f, `${p}mlp.c_proj`, 'in_out', training)) as tf.Tensor2D;
    }
    return layerNorm(h, v1('transformer.ln_f.weight'), v1('transformer.ln_f.bias'), c.normEps);
  },
};
