/** Architectures alignjs runs, keyed by Hugging Face `model_type`. */
export const SUPPORTED_MODEL_TYPES = ['gpt2', 'llama', 'qwen2', 'mistral'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];
export type Family = 'gpt2' | 'llama';

/** A parsed `config.json`, normalized across families. */
export interface ModelConfig {
  modelType: ModelType;
  family: Family;
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
  /** RoPE base (Llama family) */
  ropeTheta: number;
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

function num(raw: Record<string, unknown>, path: string, field: string, fallback?: number): number {
  const v = raw[field];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`${path}: missing field '${field}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`${path}: field '${field}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** Parses a Hugging Face `config.json` object. `path` is used in error messages. */
export function parseModelConfig(raw: unknown, path = 'config.json'): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${path}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  const modelType = c.model_type;
  if (!SUPPORTED_MODEL_TYPES.includes(modelType as ModelType)) {
    throw new Error(
      `${path}: model_type ${JSON.stringify(modelType)} is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  }
  const ids = {
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined,
    eosTokenId:
      typeof c.eos_token_id === 'number' || Array.isArray(c.eos_token_id)
        ? (c.eos_token_id as number | number[])
        : undefined,
    padTokenId: typeof c.pad_token_id === 'number' ? c.pad_token_id : undefined,
  };
  if (modelType === 'gpt2') {
    const act = c.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new')
      throw new Error(
        `${path}: activation_function '${act}' is not supported for gpt2 (only gelu_new)`,
      );
    const hiddenSize = num(c, path, 'n_embd');
    const numHeads = num(c, path, 'n_head');
    return {
      modelType: 'gpt2',
      family: 'gpt2',
      vocabSize: num(c, path, 'vocab_size'),
      hiddenSize,
      numLayers: num(c, path, 'n_layer'),
      numHeads,
      numKvHeads: numHeads,
      headDim: hiddenSize / numHeads,
      intermediateSize: num(c, path, 'n_inner', 4 * hiddenSize),
      maxPositions: num(c, path, 'n_positions'),
      normEps: num(c, path, 'layer_norm_epsilon', 1e-5),
      ropeTheta: 0,
      tieWordEmbeddings: true,
      qkvBias: true,
      oBias: true,
      ...ids,
      raw: c,
    };
  }
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
  if (act !== 'silu') throw new Error(`${path}: hidden_act '${act}' is not supported (only silu)`);
  const ropeTheta = ropeThetaOf(c, path);
  const hiddenSize = num(c, path, 'hidden_size');
  const numHeads = num(c, path, 'num_attention_heads');
  const attentionBias = c.attention_bias === true;
  return {
    modelType: modelType as ModelType,
    family: 'llama',
    vocabSize: num(c, path, 'vocab_size'),
    hiddenSize,
    numLayers: num(c, path, 'num_hidden_layers'),
    numHeads,
    numKvHeads: num(c, path, 'num_key_value_heads', numHeads),
    headDim: num(c, path, 'head_dim', hiddenSize / numHeads),
    intermediateSize: num(c, path, 'intermediate_size'),
    maxPositions: num(c, path, 'max_position_embeddings', 2048),
    normEps: num(c, path, 'rms_norm_eps', 1e-6),
    ropeTheta,
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    ...ids,
    raw: c,
  };
}

/** Hugging Face parameter names and shapes for a config (the state_dict of the model). */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const E = c.hiddenSize;
  if (c.family === 'gpt2') {
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
  }
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
}

/** Checkpoint tensors that are buffers or tied copies, not parameters: ignored on load. */
export function isIgnorableBuffer(name: string, c: ModelConfig): boolean {
  if (c.family === 'gpt2' && /\.attn\.(masked_)?bias$/.test(name)) return true;
  if (/rotary_emb\.inv_freq$/.test(name)) return true;
  return name === 'lm_head.weight' && c.tieWordEmbeddings;
}

/**
 * RoPE's θ from either layout: transformers 5's `rope_parameters: {rope_type, rope_theta, …}`
 * or the older top-level `rope_theta` / `rope_scaling`. Only the `default` RoPE type is
 * implemented: any other (`linear`, `dynamic`, `yarn`, `llama3`, …) or any extra field that
 * changes the math is an error naming it, never a silent fallback to plain RoPE.
 */
function ropeThetaOf(c: Record<string, unknown>, path: string): number {
  const p = c.rope_parameters as Record<string, unknown> | undefined | null;
  const scaling = c.rope_scaling as Record<string, unknown> | undefined | null;
  if (p !== undefined && p !== null && (typeof p !== 'object' || Array.isArray(p)))
    throw new Error(`${path}: field 'rope_parameters' must be an object, got ${JSON.stringify(p)}`);
  const type = (p?.rope_type ?? scaling?.rope_type ?? scaling?.type ?? 'default') as unknown;
  if (type !== 'default') {
    const field = p?.rope_type !== undefined ? 'rope_parameters.rope_type' : 'rope_scaling';
    throw new Error(
      `${path}: field '${field}' is ${JSON.stringify(type)}; only the 'default' RoPE type is implemented (linear, dynamic, yarn and llama3 scaling are not yet), so this checkpoint would compute wrong logits`,
    );
  }
  for (const k of Object.keys(p ?? {}))
    if (k !== 'rope_type' && k !== 'rope_theta')
      throw new Error(
        `${path}: field 'rope_parameters.${k}' is not supported (it changes RoPE's math)`,
      );
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1)
    throw new Error(
      `${path}: field 'partial_rotary_factor' ${JSON.stringify(c.partial_rotary_factor)} is not supported`,
    );
  const top = c.rope_theta;
  const nested = p?.rope_theta;
  if (top !== undefined && nested !== undefined && top !== nested)
    throw new Error(
      `${path}: 'rope_theta' (${JSON.stringify(top)}) and 'rope_parameters.rope_theta' (${JSON.stringify(nested)}) disagree`,
    );
  const theta = nested ?? top ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0))
    throw new Error(`${path}: RoPE theta must be a number > 0, got ${JSON.stringify(theta)}`);
  return theta;
}
