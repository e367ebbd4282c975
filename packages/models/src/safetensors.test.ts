import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { CausalLM } from './model.js';
import { loadModel, loadSafetensors, readHeader, saveModel, saveSafetensors } from './node.js';
import { randomConfigs } from './test-util.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const tmp = () => mkdtemp(join(tmpdir(), 'alignjs-models-'));

function bits(m: CausalLM): Map<string, Uint32Array> {
  return new Map(
    [...m.params].map(([k, v]) => [
      k,
      new Uint32Array((v.dataSync() as Float32Array).slice().buffer),
    ]),
  );
}

describe('save → load', () => {
  it.each(Object.entries(randomConfigs()))(
    '%s round-trips bit-exactly, single file and sharded',
    async (_, config) => {
      const model = CausalLM.random(config, 3, 0.3);
      for (const maxShardBytes of [undefined, 8_000]) {
        const dir = await tmp();
        await saveModel(model, dir, { maxShardBytes });
        const files = await readdir(dir);
        if (maxShardBytes) expect(files).toContain('model.safetensors.index.json');
        else expect(files).toContain('model.safetensors');
        expect(files.filter((f) => f.includes('.tmp'))).toEqual([]);
        const again = await loadModel(dir);
        expect(bits(again)).toEqual(bits(model));
        again.dispose();
      }
      model.dispose();
    },
  );

  it('keeps the reference checkpoint names (GPT-2 ties lm_head, as save_pretrained does)', async () => {
    for (const arch of ['gpt2', 'llama', 'qwen2']) {
      const exp = JSON.parse(await readFile(join(FIXTURES, arch, 'expected.json'), 'utf8')) as {
        parameterNames: string[];
      };
      const model = await loadModel(join(FIXTURES, arch));
      const dir = await tmp();
      await saveModel(model, dir);
      const header = await readHeader(join(dir, 'model.safetensors'));
      expect([...header.entries.keys()].sort()).toEqual(exp.parameterNames);
      expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toEqual(
        JSON.parse(await readFile(join(FIXTURES, arch, 'config.json'), 'utf8')),
      );
      model.dispose();
    }
  });
});

describe('bad inputs give clear errors', () => {
  async function withFile(bytes: Uint8Array | string): Promise<string> {
    const p = join(await tmp(), 'x.safetensors');
    await writeFile(p, bytes);
    return p;
  }
  const header = (h: unknown, extra = 0) => {
    const json = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, Buffer.alloc(extra)]);
  };

  it('truncated file, header past the end, data past the end, wrong dtype, bad JSON', async () => {
    await expect(readHeader(await withFile(new Uint8Array(5)))).rejects.toThrow(
      /truncated safetensors file \(5 bytes/,
    );
    const good = header({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8);
    await expect(readHeader(await withFile(good.subarray(0, 20)))).rejects.toThrow(
      /truncated safetensors file: header says/,
    );
    await expect(
      readHeader(
        await withFile(header({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4)),
      ),
    ).rejects.toThrow(/tensor 'w': data_offsets \[0,8\] point past the end of the file/);
    await expect(
      readHeader(
        await withFile(header({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8)),
      ),
    ).rejects.toThrow(/tensor 'w': dtype "F64" is not supported \(supported: F32, F16, BF16\)/);
    await expect(
      readHeader(
        await withFile(header({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8)),
      ),
    ).rejects.toThrow(/8 bytes for shape \[3\] F32 \(expected 12\)/);
    const bad = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{bad')]);
    await expect(readHeader(await withFile(bad))).rejects.toThrow(/header is not valid JSON/);
    expect((await readHeader(await withFile(good))).entries.get('w')!.shape).toEqual([2]);
  });

  it('unknown model_type lists the supported ones; missing, unexpected and mis-shaped tensors are named', async () => {
    expect(() => parseModelConfig({ model_type: 'bert' }, 'x/config.json')).toThrow(
      'x/config.json: model_type "bert" is not supported; supported: gpt2, llama, qwen2, mistral, qwen3, gemma2',
    );
    const src = join(FIXTURES, 'llama');
    const dir = await tmp();
    await copyFile(join(src, 'config.json'), join(dir, 'config.json'));
    const weights = await loadSafetensors(join(src, 'model.safetensors'));
    const drop = new Map(weights);
    drop.delete('model.norm.weight');
    await saveSafetensors(join(dir, 'model.safetensors'), drop);
    await expect(loadModel(dir)).rejects.toThrow(
      /missing tensor 'model.norm.weight' \(shape \[32\]\)/,
    );
    const extra = new Map(weights);
    extra.set('model.layers.0.self_attn.q_proj.bias', { shape: [32], data: new Float32Array(32) });
    await saveSafetensors(join(dir, 'model.safetensors'), extra);
    await expect(loadModel(dir)).rejects.toThrow(
      /unexpected tensor 'model.layers.0.self_attn.q_proj.bias' for model_type llama/,
    );
    const wrong = new Map(weights);
    wrong.set('model.norm.weight', { shape: [31], data: new Float32Array(31) });
    await saveSafetensors(join(dir, 'model.safetensors'), wrong);
    await expect(loadModel(dir)).rejects.toThrow(
      /tensor 'model.norm.weight' has shape \[31\], config.json implies \[32\]/,
    );
    expect(tf.memory().numTensors).toBeGreaterThanOrEqual(0);
  });
});
