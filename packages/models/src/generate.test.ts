import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate, sampleToken } from './generate.js';
import { CausalLM } from './model.js';
import { randomConfigs } from './test-util.js';

const prompts = [[5, 9, 2, 7], [3], [11, 4, 8, 1, 6, 2], [7, 7]];

describe.each(Object.entries(randomConfigs()))('%s generation', (_, config) => {
  it('KV-cache decoding equals full-forward decoding (greedy and seeded sampling)', () => {
    const model = CausalLM.random(config, 11, 0.5);
    for (const o of [
      { greedy: true },
      { temperature: 0.9, topK: 10, seed: 4 },
      { temperature: 1.3, topP: 0.8, seed: 9 },
    ]) {
      const cached = generate(model, prompts, { ...o, maxNewTokens: 8 });
      const full = generate(model, prompts, { ...o, maxNewTokens: 8, useCache: false });
      expect(cached.ids).toEqual(full.ids);
    }
    model.dispose();
  });

  it('a left-padded batch equals its prompts generated one by one; no tensor leaks', () => {
    const model = CausalLM.random(config, 12, 0.5);
    const before = tf.memory().numTensors;
    const o = { temperature: 1, seed: 21, maxNewTokens: 6 };
    const batch = generate(model, prompts, o);
    prompts.forEach((p, i) => {
      const one = generate(model, [p], { ...o, seed: o.seed + i });
      expect(batch.ids[i]).toEqual(one.ids[0]);
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('stopping and sampling', () => {
  it('stops at stop tokens and stop strings, per row', () => {
    const model = CausalLM.random(randomConfigs().llama!, 2, 0.5);
    const free = generate(model, prompts, { greedy: true, maxNewTokens: 10 });
    const stopAt = free.ids[0]![2]!;
    const r = generate(model, prompts, { greedy: true, maxNewTokens: 10, stopTokenIds: [stopAt] });
    expect(r.ids[0]).toEqual(free.ids[0]!.slice(0, free.ids[0]!.indexOf(stopAt) + 1));
    expect(r.finish[0]).toBe('stop_token');
    const decode = (ids: readonly number[]) =>
      ids.map((t) => String.fromCharCode(97 + (t % 26))).join('');
    const text = decode(free.ids[1]!);
    const stop = text.slice(3, 5);
    const s = generate(model, prompts, {
      greedy: true,
      maxNewTokens: 10,
      stopStrings: [stop],
      decode,
    });
    expect(s.finish[1]).toBe('stop_string');
    expect(s.texts![1]).toBe(text.slice(0, text.indexOf(stop)));
    expect(() => generate(model, [[]], {})).toThrow(/prompt 0 is empty/);
    expect(() => generate(model, [[1]], { stopStrings: ['x'] })).toThrow(
      /stopStrings need a decode function/,
    );
    model.dispose();
  });

  it('top-k and top-p keep only the allowed tokens; greedy takes the argmax', () => {
    const logits = [0, 3, 1, 2.5, -1];
    let u = 0;
    const random = () => {
      u = (u + 0.37) % 1;
      return u;
    };
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sampleToken(logits, { topK: 2 }, random));
    expect([...seen].sort()).toEqual([1, 3]);
    const p = [Math.exp(3), Math.exp(2.5), Math.exp(1)];
    const z = p[0]! + p[1]! + p[2]! + Math.exp(0) + Math.exp(-1);
    const seenP = new Set<number>();
    // top-p just above P(1) + P(3) keeps exactly {1, 3, 2}.
    for (let i = 0; i < 300; i++)
      seenP.add(sampleToken(logits, { topP: (p[0]! + p[1]!) / z + 1e-3 }, random));
    expect([...seenP].sort()).toEqual([1, 2, 3]);
    expect(sampleToken(logits, { greedy: true }, random)).toBe(1);
    expect(sampleToken(logits, { temperature: 0 }, random)).toBe(1);
  });
});
