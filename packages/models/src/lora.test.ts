import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CausalLM } from './model.js';
import { addLora, loadLora, mergeLora, readHeader, saveLora } from './node.js';
import { randomConfigs } from './test-util.js';

const ids = tf.tensor2d(
  [
    [1, 5, 9, 3, 2],
    [4, 4, 7, 1, 0],
  ],
  undefined,
  'int32',
);
const mask = tf.tensor2d(
  [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0],
  ],
  undefined,
  'int32',
);
const logitsOf = (m: CausalLM) => tf.tidy(() => Array.from(m.call(ids, mask).dataSync()));
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

const targets = {
  gpt2: ['c_attn', 'c_fc'],
  llama: ['q_proj', 'v_proj', 'down_proj'],
  qwen2: ['q_proj', 'k_proj', 'o_proj'],
};

describe.each(Object.entries(randomConfigs()))('%s LoRA', (arch, config) => {
  it('zero-initialised B equals the base; training moves only the adapters; merge equals unmerged; PEFT round trip', async () => {
    const model = CausalLM.random(config, 5, 0.3);
    const base = logitsOf(model);
    addLora(
      model,
      { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: targets[arch as keyof typeof targets] },
      1,
    );
    expect(maxDiff(logitsOf(model), base)).toBe(0);
    const vars = model.trainableVariables();
    expect(vars.length).toBe(2 * model.lora.size);
    const baseBefore = new Map([...model.params].map(([k, v]) => [k, Array.from(v.dataSync())]));
    const loraBefore = vars.map((v) => Array.from(v.dataSync()));
    const opt = tf.train.adam(0.01);
    for (let s = 0; s < 5; s++) {
      opt.minimize(
        () => tf.mean(tf.square(model.callTraining(ids, mask))) as tf.Scalar,
        false,
        vars,
      );
    }
    for (const [k, v] of model.params)
      expect(Array.from(v.dataSync()), k).toEqual(baseBefore.get(k));
    expect(vars.some((v, i) => maxDiff(Array.from(v.dataSync()), loraBefore[i]!) > 0)).toBe(true);
    const adapted = logitsOf(model);
    expect(maxDiff(adapted, base)).toBeGreaterThan(1e-4);

    const dir = await mkdtemp(join(tmpdir(), 'alignjs-lora-'));
    await saveLora(model, dir, 'tiny-base');
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      task_type: 'CAUSAL_LM',
      fan_in_fan_out: arch === 'gpt2',
    });
    const names = [...(await readHeader(join(dir, 'adapter_model.safetensors'))).entries.keys()];
    const prefix =
      arch === 'gpt2'
        ? 'base_model.model.transformer.h.0.attn.c_attn'
        : `base_model.model.model.layers.0.self_attn.${targets[arch as 'llama'][0]}`;
    expect(names).toContain(`${prefix}.lora_A.weight`);
    expect(names).toContain(`${prefix}.lora_B.weight`);

    const reloaded = CausalLM.random(config, 5, 0.3);
    await loadLora(reloaded, dir);
    expect(maxDiff(logitsOf(reloaded), adapted)).toBeLessThan(1e-6);
    reloaded.dispose();

    mergeLora(model);
    expect(model.lora.size).toBe(0);
    expect(maxDiff(logitsOf(model), adapted)).toBeLessThan(2e-5);
    opt.dispose();
    model.dispose();
  });
});

it('rejects target modules the model does not have', () => {
  const model = CausalLM.random(randomConfigs().llama!, 1);
  expect(() =>
    addLora(model, { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['c_attn'] }),
  ).toThrow(
    /target_modules \["c_attn"\] match no module; this model has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
  );
  expect(() =>
    addLora(model, { r: 0, loraAlpha: 4, loraDropout: 0, targetModules: ['q_proj'] }),
  ).toThrow(/r must be an integer >= 1/);
  model.dispose();
});

describe('PEFT adapter_config options', () => {
  async function saved(useRslora: boolean, extra: Record<string, unknown> = {}) {
    const config = randomConfigs().llama!;
    const model = CausalLM.random(config, 5, 0.3);
    addLora(
      model,
      { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora },
      1,
    );
    for (const ad of model.lora.values())
      ad.b.assign(tf.randomNormal(ad.b.shape, 0, 0.3, 'float32', 2));
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-peft-'));
    await saveLora(model, dir);
    if (Object.keys(extra).length) {
      const { writeFile } = await import('node:fs/promises');
      const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
      await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, ...extra }));
    }
    const out = logitsOf(model);
    model.dispose();
    return { dir, out, config };
  }

  it('use_rslora scales by α/√r: it round-trips and equals plain LoRA with α′ = α·√r (α′/r = α/√r)', async () => {
    const { dir, out, config } = await saved(true);
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg.use_rslora).toBe(true);
    const reloaded = CausalLM.random(config, 5, 0.3);
    await loadLora(reloaded, dir);
    expect(maxDiff(logitsOf(reloaded), out)).toBeLessThan(1e-6);
    expect([...reloaded.lora.values()][0]!.scale).toBeCloseTo(8 / Math.sqrt(4), 12);
    reloaded.dispose();
    // the same tensors read as plain LoRA with lora_alpha = 8·√4 = 16: scale 16/4 = 8/√4
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ ...cfg, use_rslora: false, lora_alpha: 16 }),
    );
    const plain = CausalLM.random(config, 5, 0.3);
    await loadLora(plain, dir);
    expect(maxDiff(logitsOf(plain), out)).toBeLessThan(1e-6);
    plain.dispose();
  });

  it('options that change the math are refused by name; neutral values load', async () => {
    const load = async (extra: Record<string, unknown>) => {
      const { dir, config } = await saved(false, extra);
      const m = CausalLM.random(config, 5, 0.3);
      try {
        await loadLora(m, dir);
      } finally {
        m.dispose();
      }
    };
    await expect(load({ use_dora: true })).rejects.toThrow(
      /field 'use_dora' = true is not supported \(DoRA\)/,
    );
    await expect(load({ modules_to_save: ['lm_head'] })).rejects.toThrow(/field 'modules_to_save'/);
    await expect(load({ rank_pattern: { q_proj: 8 } })).rejects.toThrow(/field 'rank_pattern'/);
    await expect(load({ bias: 'all' })).rejects.toThrow(/field 'bias' is "all"; only 'none'/);
    await expect(load({ fan_in_fan_out: true })).rejects.toThrow(/field 'fan_in_fan_out' is true/);
    await expect(load({ target_modules: '.*proj' })).rejects.toThrow(
      /a regex string is not supported/,
    );
    await expect(
      load({ use_dora: false, rank_pattern: {}, modules_to_save: null, layers_to_transform: null }),
    ).resolves.toBeUndefined();
  });
});
