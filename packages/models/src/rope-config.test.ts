/** RoPE settings as transformers 4 and 5 write them: every field read, nothing ignored silently. */
import { describe, expect, it } from 'vitest';
import { ropeFrequencies } from './arch/rope.js';
import { parseModelConfig } from './config.js';

const base = {
  model_type: 'llama',
  hidden_size: 8,
  num_attention_heads: 2,
  num_hidden_layers: 1,
  vocab_size: 5,
  intermediate_size: 8,
};
const rope = (extra: Record<string, unknown>) => parseModelConfig({ ...base, ...extra }).rope!;

describe('RoPE config', () => {
  it("reads θ from transformers 5's rope_parameters and from the top level", () => {
    expect(rope({ rope_parameters: { rope_type: 'default', rope_theta: 500000 } }).theta).toBe(5e5);
    expect(rope({ model_type: 'qwen2', rope_parameters: { rope_theta: 1e6 } }).theta).toBe(1e6);
    expect(rope({ rope_theta: 5e5 }).theta).toBe(5e5);
    expect(rope({}).theta).toBe(10000);
    expect(rope({ rope_theta: 5e5, rope_parameters: { rope_theta: 5e5 } }).theta).toBe(5e5);
  });

  it("reads transformers 4's rope_scaling as rope_parameters (old `type` key included)", () => {
    const r = rope({ rope_theta: 1e4, rope_scaling: { type: 'linear', factor: 2 } });
    expect([r.type, r.factor, r.theta]).toEqual(['linear', 2, 1e4]);
    const l3 = rope({
      rope_theta: 5e5,
      max_position_embeddings: 131072,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    expect([l3.type, l3.originalMaxPositions, l3.lowFreqFactor]).toEqual(['llama3', 8192, 1]);
  });

  it('yarn and llama3 take original_max_position_embeddings as transformers standardizes it', () => {
    expect(
      rope({ max_position_embeddings: 64, rope_parameters: { rope_type: 'yarn', factor: 2 } })
        .originalMaxPositions,
    ).toBe(64);
    expect(
      rope({
        original_max_position_embeddings: 32,
        rope_parameters: { rope_type: 'yarn', factor: 2, original_max_position_embeddings: 16 },
      }).originalMaxPositions,
    ).toBe(32);
  });

  it('dynamic NTK changes θ only once positions pass max_position_embeddings', () => {
    const r = rope({
      max_position_embeddings: 16,
      rope_parameters: { rope_type: 'dynamic', factor: 2 },
    });
    const plain = ropeFrequencies(rope({}), 0).invFreq;
    expect([...ropeFrequencies(r, 15).invFreq]).toEqual([...plain]);
    // seq 32 = 2·16: base = θ·(2·32/16 − 1)^(dim/(dim−2)) = θ·3^2 for head_dim 4 (float64 oracle)
    const grown = ropeFrequencies(r, 31).invFreq;
    expect(grown[1]).toBeCloseTo(1 / (1e4 * 9) ** 0.5, 7);
  });

  it('refuses RoPE types and fields it does not implement, naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        { rope_parameters: { rope_type: 'longrope', short_factor: [1], long_factor: [1] } },
        /field 'rope_parameters.rope_type' is "longrope"; supported RoPE types: default, linear, dynamic, yarn, llama3/,
      ],
      [{ rope_scaling: { type: 'su', factor: 2 } }, /field 'rope_scaling.type' is "su"/],
      [
        { rope_parameters: { rope_type: 'default', rope_theta: 1e4, factor: 2 } },
        /'rope_parameters.factor' is not read by RoPE type 'default'/,
      ],
      [
        { rope_parameters: { rope_type: 'linear', factor: 2, beta_fast: 3 } },
        /'rope_parameters.beta_fast' is not read by RoPE type 'linear'/,
      ],
      [
        { rope_parameters: { rope_type: 'linear' } },
        /RoPE type 'linear' needs field 'rope_parameters.factor'/,
      ],
      [
        { rope_parameters: { rope_type: 'llama3', factor: 8, low_freq_factor: 1 } },
        /needs field 'rope_parameters.high_freq_factor'/,
      ],
      [
        { rope_parameters: { rope_type: 'dynamic', factor: 0.5 } },
        /'rope_parameters.factor' must be a number ≥ 1/,
      ],
      [
        { rope_theta: 1e4, rope_parameters: { rope_theta: 5e5 } },
        /'rope_theta' \(10000\) and 'rope_parameters.rope_theta' \(500000\) disagree/,
      ],
      [{ partial_rotary_factor: 0.5 }, /'partial_rotary_factor' 0.5 is not supported/],
      [{ mlp_bias: true }, /field 'mlp_bias' true is not supported/],
      [
        { model_type: 'qwen2', use_sliding_window: true, sliding_window: 0 },
        /field 'sliding_window' must be an integer ≥ 1/,
      ],
      [
        { model_type: 'qwen3', layer_types: ['sliding_attention'] },
        /'layer_types' has sliding_attention layers but use_sliding_window is not true/,
      ],
    ];
    for (const [extra, re] of bad)
      expect(
        () => parseModelConfig({ ...base, ...extra }, 'm/config.json'),
        JSON.stringify(extra),
      ).toThrow(re);
  });

  it('sliding windows: Mistral on every layer, Qwen2/Qwen3 from max_window_layers or layer_types', () => {
    const m = parseModelConfig({ ...base, model_type: 'mistral', sliding_window: 4096 });
    expect([m.slidingWindow, m.layerTypes]).toEqual([4096, ['sliding_attention']]);
    expect(
      parseModelConfig({ ...base, model_type: 'mistral', sliding_window: null }).slidingWindow,
    ).toBe(undefined);
    // Qwen2 writes sliding_window 4096 but use_sliding_window false: no window.
    expect(
      parseModelConfig({ ...base, model_type: 'qwen2', sliding_window: 4096 }).slidingWindow,
    ).toBe(undefined);
    const q = parseModelConfig({
      ...base,
      model_type: 'qwen2',
      num_hidden_layers: 3,
      use_sliding_window: true,
      sliding_window: 8,
      max_window_layers: 1,
    });
    expect(q.layerTypes).toEqual(['full_attention', 'sliding_attention', 'sliding_attention']);
  });
});
