import { type ModelConfig, parseModelConfig } from './config.js';

/** Small random configs of each architecture for tests. */
export function randomConfigs(): Record<string, ModelConfig> {
  return {
    gpt2: parseModelConfig({
      model_type: 'gpt2',
      vocab_size: 37,
      n_positions: 40,
      n_embd: 24,
      n_layer: 2,
      n_head: 3,
    }),
    llama: parseModelConfig({
      model_type: 'llama',
      vocab_size: 41,
      hidden_size: 32,
      intermediate_size: 48,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      rope_theta: 10000,
    }),
    qwen2: parseModelConfig({
      model_type: 'qwen2',
      vocab_size: 43,
      hidden_size: 24,
      intermediate_size: 40,
      num_hidden_layers: 2,
      num_attention_heads: 6,
      num_key_value_heads: 3,
      tie_word_embeddings: true,
      rope_theta: 1e6,
    }),
  };
}

/**
 * The largest |got − want| over the real positions (mask 1) of `[B, T, V]` logits, relative
 * to each position's largest |want| — how every golden-logit test compares.
 */
export function maxRelLogitError(got: number[][][], want: number[][][], mask: number[][]): number {
  let worst = 0;
  want.forEach((row, b) => {
    row.forEach((e, t) => {
      if (!mask[b]![t]) return;
      const scale = Math.max(...e.map(Math.abs));
      e.forEach((v, k) => {
        worst = Math.max(worst, Math.abs(got[b]![t]![k]! - v) / scale);
      });
    });
  });
  return worst;
}
