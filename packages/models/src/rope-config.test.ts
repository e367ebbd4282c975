/** RoPE settings as transformers 4 and 5 write them: θ read from either layout, nothing else silently. */
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';

const base = {
  model_type: 'llama',
  hidden_size: 8,
  num_attention_heads: 2,
  num_hidden_layers: 1,
  vocab_size: 5,
  intermediate_size: 8,
};

describe('RoPE config', () => {
  it("reads θ from transformers 5's rope_parameters and from the top level", () => {
    expect(
      parseModelConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 500000 } })
        .ropeTheta,
    ).toBe(500000);
    expect(
      parseModelConfig({ ...base, model_type: 'qwen2', rope_parameters: { rope_theta: 1e6 } })
        .ropeTheta,
    ).toBe(1e6);
    expect(parseModelConfig({ ...base, rope_theta: 5e5 }).ropeTheta).toBe(5e5);
    expect(parseModelConfig(base).ropeTheta).toBe(10000);
    expect(
      parseModelConfig({ ...base, rope_theta: 5e5, rope_parameters: { rope_theta: 5e5 } })
        .ropeTheta,
    ).toBe(5e5);
  });

  it('refuses RoPE types and fields it does not implement, naming the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        { rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8 } },
        /field 'rope_parameters.rope_type' is "llama3"; only the 'default' RoPE type is implemented/,
      ],
      [
        { rope_parameters: { rope_type: 'linear', factor: 2 } },
        /'rope_parameters.rope_type' is "linear"/,
      ],
      [{ rope_scaling: { type: 'dynamic', factor: 2 } }, /field 'rope_scaling' is "dynamic"/],
      [{ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /field 'rope_scaling' is "yarn"/],
      [
        { rope_parameters: { rope_type: 'default', rope_theta: 1e4, factor: 2 } },
        /'rope_parameters.factor' is not supported/,
      ],
      [
        { rope_theta: 1e4, rope_parameters: { rope_theta: 5e5 } },
        /'rope_theta' \(10000\) and 'rope_parameters.rope_theta' \(500000\) disagree/,
      ],
      [{ partial_rotary_factor: 0.5 }, /'partial_rotary_factor' 0.5 is not supported/],
    ];
    for (const [extra, re] of bad)
      expect(
        () => parseModelConfig({ ...base, ...extra }, 'm/config.json'),
        JSON.stringify(extra),
      ).toThrow(re);
  });
});
