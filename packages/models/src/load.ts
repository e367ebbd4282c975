import { handToTensorflow } from '@alignjs/core-logprob';
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
  modelWeightFilesFrom,
  readHeaderFrom,
  readTensors,
  type SafetensorsHeader,
} from './safetensors.js';
import { type ModelSource, readJson, urlSource } from './source.js';

/**
 * Largest float32 weight set the wasm backend is asked to load: tfjs-backend-wasm's heap
 * tops out near 2 GiB for weights, activations and gradients together.
 */
export const WASM_WEIGHT_LIMIT = 1.5 * 2 ** 30;

/** `config.json` of a model source, parsed (errors name the file and field). */
export async function loadModelConfigFrom(src: ModelSource): Promise<ModelConfig> {
  return parseModelConfig(await readJson(src, 'config.json'), src.where('config.json'));
}

/**
 * Loads a Hugging Face model (`config.json` + `model.safetensors` or shards with
 * `model.safetensors.index.json`) from any {@link ModelSource}: a URL (`urlSource`), files in
 * memory (`memorySource`) or, in Node, a directory (`loadModel(dir)` in `@alignjs/models/node`).
 * Each tensor is read, widened to float32 and uploaded one at a time. A missing, unexpected
 * or mis-shaped tensor is an error naming it.
 */
export async function loadModelFrom(
  src: ModelSource,
  options: { trainable?: boolean } = {},
): Promise<CausalLM> {
  const config = await loadModelConfigFrom(src);
  const expected = parameterShapes(config);
  const { files } = await modelWeightFilesFrom(src);
  const headers: SafetensorsHeader[] = [];
  for (const f of files) headers.push(await readHeaderFrom(src, f));
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
    if (!owner.has(name))
      throw new Error(`${src.name}: missing tensor '${name}' (shape [${shape}])`);
  }
  const bytes = 4 * [...expected.values()].reduce((n, sh) => n + sh.reduce((a, b) => a * b, 1), 0);
  if (tf.getBackend() === 'wasm' && bytes > WASM_WEIGHT_LIMIT)
    throw new Error(
      `${src.name}: the weights take ${(bytes / 2 ** 30).toFixed(2)} GiB as float32, more than the wasm backend can hold (${WASM_WEIGHT_LIMIT / 2 ** 30} GiB: its heap tops out near 2 GiB for weights, activations and gradients together). Use the tensorflow backend: install @tensorflow/tfjs-node (or -gpu) and set ALIGNJS_BACKEND=tensorflow`,
    );
  const params = new Map<string, tf.Variable>();
  try {
    for (const h of headers) {
      const names = [...h.entries.keys()].filter((n) => owner.get(n) === h);
      await readTensors(
        h,
        (name, t) => {
          const init = tf.tensor(t.data, t.shape, 'float32');
          // TensorFlow's copy now, so this host array can go before the next tensor is read
          handToTensorflow(init);
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

/** A model served over HTTP (a Hugging Face directory layout under `url`). */
export function loadModelFromUrl(
  url: string | URL,
  options: { trainable?: boolean; fetch?: typeof fetch } = {},
): Promise<CausalLM> {
  return loadModelFrom(urlSource(url, { fetch: options.fetch }), options);
}

/** Host copies of the model's parameters (HF names). */
export function stateDict(model: CausalLM): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, v] of model.params)
    out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}
