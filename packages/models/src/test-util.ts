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
