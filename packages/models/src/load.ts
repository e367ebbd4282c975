import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  isIgnorableBuffer,
  type ModelConfig,
  parameterShapes,
  parseModelConfig,
} from './config.js';
import { CausalLM } from './model.js';
import {
  type HostTensor,
  modelWeightFiles,
  readHeader,
  readTensors,
  type SafetensorsHeader,
  saveSafetensors,
  writeJsonAtomic,
} from './safetensors.js';

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: not found`);
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

export async function loadModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, 'config.json');
  return parseModelConfig(await readJson(path), path);
}

/**
 * Loads a Hugging Face model directory (`config.json` + `model.safetensors` or shards with
 * `model.safetensors.index.json`). Each tensor is read, widened to float32 and uploaded
 * one at a time. A missing, unexpected or mis-shaped tensor is an error naming it.
 */
export async function loadModel(
  dir: string,
  options: { trainable?: boolean } = {},
): Promise<CausalLM> {
  const config = await loadModelConfig(dir);
  const expected = parameterShapes(config);
  const { files } = await modelWeightFiles(dir);
  const headers: SafetensorsHeader[] = [];
  for (const f of files) headers.push(await readHeader(f));
  const owner = new Map<string, SafetensorsHeader>();
  for (const h of headers) {
    for (const [name, e] of h.entries) {
      if (isIgnorableBuffer(name, config)) continue;
      const shape = expected.get(name);
      if (!shape)
        throw new Error(
          `${h.path}: unexpected tensor '${name}' for model_type ${config.modelType}`,
        );
      if (shape.join() !== e.shape.join())
        throw new Error(
          `${h.path}: tensor '${name}' has shape [${e.shape}], config.json implies [${shape}]`,
        );
      owner.set(name, h);
    }
  }
  for (const [name, shape] of expected) {
    if (!owner.has(name)) throw new Error(`${dir}: missing tensor '${name}' (shape [${shape}])`);
  }
  const params = new Map<string, tf.Variable>();
  try {
    for (const h of headers) {
      const names = [...h.entries.keys()].filter((n) => owner.get(n) === h);
      await readTensors(
        h,
        (name, t) => {
          const init = tf.tensor(t.data, t.shape, 'float32');
          params.set(name, tf.variable(init, options.trainable ?? true));
          init.dispose();
        },
        names,
      );
    }
  } catch (err) {
    tf.dispose([...params.values()]);
    throw err;
  }
  return new CausalLM(config, params);
}

/** Host copies of the model's parameters (HF names). */
export function stateDict(model: CausalLM): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, v] of model.params)
    out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

/**
 * Writes `config.json` and `model.safetensors` (float32, Hugging Face names; tied weights
 * written once, as transformers' save_pretrained does). Every file is written atomically.
 * `maxShardBytes` splits the weights into shards with `model.safetensors.index.json`.
 */
export async function saveModel(
  model: CausalLM,
  dir: string,
  options: { maxShardBytes?: number } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const state = stateDict(model);
  const names = [...state.keys()].sort();
  const total = names.reduce((s, n) => s + state.get(n)!.data.byteLength, 0);
  const max = options.maxShardBytes;
  if (!max || total <= max) {
    await saveSafetensors(join(dir, 'model.safetensors'), state);
  } else {
    const shards: string[][] = [[]];
    let size = 0;
    for (const n of names) {
      const b = state.get(n)!.data.byteLength;
      if (size + b > max && shards.at(-1)!.length > 0) {
        shards.push([]);
        size = 0;
      }
      shards.at(-1)!.push(n);
      size += b;
    }
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards.length; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      await saveSafetensors(join(dir, file), new Map(shards[s]!.map((n) => [n, state.get(n)!])));
      for (const n of shards[s]!) weightMap[n] = file;
    }
    await writeJsonAtomic(join(dir, 'model.safetensors.index.json'), {
      metadata: { total_size: total },
      weight_map: weightMap,
    });
  }
  await writeJsonAtomic(join(dir, 'config.json'), model.config.raw);
}
