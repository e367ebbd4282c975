/**
 * `@alignjs/models/node`: everything in `@alignjs/models`, plus reading and writing model
 * directories on a file system (Node only). The root entry stays browser-safe.
 */
import { mkdir, open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import type { ModelConfig } from './config.js';
import { loadModelConfigFrom, loadModelFrom, stateDict } from './load.js';
import { loadLoraFrom, loraAdapterFiles } from './lora.js';
import type { CausalLM } from './model.js';
import {
  type HostTensor,
  modelWeightFilesFrom,
  readHeaderFrom,
  readSafetensorsFrom,
  type SafetensorsHeader,
  serializeSafetensors,
} from './safetensors.js';
import type { ModelSource } from './source.js';
import { HfTokenizer } from './tokenizer.js';

export * from './index.js';

/**
 * A model directory as a {@link ModelSource}. Ranges are read through a file handle, so a
 * model loads one tensor at a time (the file is never held whole in memory).
 */
export function dirSource(dir: string): ModelSource {
  const at = (f: string) => join(dir, f);
  const missing = (err: unknown) =>
    (err as NodeJS.ErrnoException).code === 'ENOENT' ||
    (err as NodeJS.ErrnoException).code === 'ENOTDIR';
  return {
    name: dir,
    where: at,
    read: async (f) => {
      try {
        return new Uint8Array(await readFile(at(f)));
      } catch (err) {
        if (missing(err)) return undefined;
        throw new Error(`${at(f)}: cannot read (${(err as Error).message})`);
      }
    },
    readRange: async (f, begin, end) => {
      const fh = await open(at(f), 'r');
      try {
        const buf = new Uint8Array(end - begin);
        const { bytesRead } = await fh.read(buf, 0, buf.length, begin);
        return bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    },
    size: async (f) =>
      stat(at(f)).then(
        (s) => (s.isFile() ? s.size : undefined),
        () => undefined,
      ),
    list: async (d) => readdir(at(d)).catch(() => [] as string[]),
  };
}

/** Directory of the built-in tiny model, shipped with this package (see `TINY_MODEL_FILES`). */
export function tinyModelDir(): string {
  return fileURLToPath(new URL('../tiny/', import.meta.url));
}

/** `config.json` of a model directory. */
export function loadModelConfig(dir: string): Promise<ModelConfig> {
  return loadModelConfigFrom(dirSource(dir));
}

/** Loads a Hugging Face model directory (see `loadModelFrom`). */
export function loadModel(dir: string, options: { trainable?: boolean } = {}): Promise<CausalLM> {
  return loadModelFrom(dirSource(dir), options);
}

/** The tokenizer of a model directory (see `HfTokenizer.fromSource`). */
export function loadTokenizer(dir: string): Promise<HfTokenizer> {
  return HfTokenizer.fromSource(dirSource(dir));
}

/** Loads PEFT adapters from a directory (`adapter_config.json` + `adapter_model.safetensors`). */
export function loadLora(model: CausalLM, dir: string): Promise<void> {
  return loadLoraFrom(model, dirSource(dir));
}

/** Saves adapters in PEFT's layout: `adapter_config.json` + `adapter_model.safetensors`. */
export async function saveLora(
  model: CausalLM,
  dir: string,
  baseModelNameOrPath = '',
): Promise<void> {
  const { config, tensors } = loraAdapterFiles(model, baseModelNameOrPath);
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  await writeJsonAtomic(join(dir, 'adapter_config.json'), config);
}

/** Reads and validates the header (and only the header) of a safetensors file. */
export function readHeader(path: string): Promise<SafetensorsHeader> {
  return readHeaderFrom(dirSource(dirname(path)), basename(path));
}

/** Every tensor of a single file, as float32 host arrays. */
export function loadSafetensors(path: string): Promise<Map<string, HostTensor>> {
  return readSafetensorsFrom(dirSource(dirname(path)), basename(path));
}

/** The safetensors files of a model directory (paths), and the shard index if sharded. */
export async function modelWeightFiles(
  dir: string,
): Promise<{ files: string[]; index?: Record<string, string> }> {
  const r = await modelWeightFilesFrom(dirSource(dir));
  return { ...r, files: r.files.map((f) => join(dir, f)) };
}

/** Writes float32 tensors as one safetensors file, atomically (temp file + rename). Names are sorted. */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = { format: 'pt' },
): Promise<void> {
  const pieces = serializeSafetensors(tensors, metadata);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  const fh = await open(tmp, 'w');
  try {
    for (const p of pieces) await fh.write(p);
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** `value` as indented JSON, written atomically (core-logprob's one atomic writer). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
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
