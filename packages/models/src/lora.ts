import * as tf from '@tensorflow/tfjs-core';
import { architectureOf } from './arch/index.js';
import type { CausalLM, LoraModule } from './model.js';
import { type HostTensor, readSafetensorsFrom } from './safetensors.js';
import { type ModelSource, readJson } from './source.js';

/** LoRA settings, named as PEFT's `LoraConfig`. */
export interface LoraConfig {
  /** rank r ≥ 1 */
  r: number;
  /** lora_alpha; the update is scaled by lora_alpha / r */
  loraAlpha: number;
  /** dropout on the adapter's input while training */
  loraDropout: number;
  /** module names (last path segment), e.g. `q_proj`, `v_proj`, `c_attn` */
  targetModules: string[];
  /** rank-stabilized LoRA (PEFT `use_rslora`): the update is scaled by lora_alpha / √r */
  useRslora?: boolean;
}

/** Every linear module of the model: HF path, `[in, out]` sizes and weight layout. */
export function linearModules(
  model: CausalLM,
): { name: string; inF: number; outF: number; layout: 'out_in' | 'in_out' }[] {
  const c = model.config;
  const { layerPrefix, modules, layout } = architectureOf(c).linearModules;
  const out = [];
  for (let i = 0; i < c.numLayers; i++) {
    for (const m of modules) {
      const name = `${layerPrefix}.${i}.${m}`;
      const w = model.params.get(`${name}.weight`)!;
      const [inF, outF] =
        layout === 'in_out' ? [w.shape[0]!, w.shape[1]!] : [w.shape[1]!, w.shape[0]!];
      out.push({ name, inF, outF, layout });
    }
  }
  return out;
}

function validate(cfg: LoraConfig): void {
  if (!Number.isInteger(cfg.r) || cfg.r < 1)
    throw new Error(`lora: r must be an integer >= 1, got ${cfg.r}`);
  if (!(cfg.loraAlpha > 0)) throw new Error(`lora: lora_alpha must be > 0, got ${cfg.loraAlpha}`);
  if (!(cfg.loraDropout >= 0 && cfg.loraDropout < 1))
    throw new Error(`lora: lora_dropout must be in [0, 1), got ${cfg.loraDropout}`);
  if (!cfg.targetModules.length) throw new Error('lora: target_modules is empty');
}

/**
 * Adds LoRA adapters to the target modules as PEFT initialises them: A ~ U(±1/√in)
 * (kaiming-uniform with a = √5), B = 0, so the model is unchanged until B trains. The base
 * weights are frozen; `trainableVariables()` then returns only the adapters.
 */
export function addLora(model: CausalLM, cfg: LoraConfig, seed = 0): void {
  validate(cfg);
  if (model.lora.size) throw new Error('lora: the model already has adapters');
  const targets = linearModules(model).filter((m) =>
    cfg.targetModules.some((t) => m.name.endsWith(`.${t}`)),
  );
  if (!targets.length) {
    const names = [...new Set(linearModules(model).map((m) => m.name.split('.').at(-1)))];
    throw new Error(
      `lora: target_modules ${JSON.stringify(cfg.targetModules)} match no module; this model has ${names.join(', ')}`,
    );
  }
  targets.forEach((m, i) => {
    const bound = 1 / Math.sqrt(m.inF);
    const a = tf.tidy(() => tf.randomUniform([cfg.r, m.inF], -bound, bound, 'float32', seed + i));
    const b = tf.zeros([m.outF, cfg.r]);
    model.lora.set(m.name, {
      a: tf.variable(a, true),
      b: tf.variable(b, true),
      scale: cfg.useRslora ? cfg.loraAlpha / Math.sqrt(cfg.r) : cfg.loraAlpha / cfg.r,
      dropout: cfg.loraDropout,
    });
    tf.dispose([a, b]);
  });
  for (const v of model.params.values()) v.trainable = false;
  (model as unknown as { loraConfig?: LoraConfig }).loraConfig = { ...cfg };
}

function loraConfigOf(model: CausalLM): LoraConfig {
  const cfg = (model as unknown as { loraConfig?: LoraConfig }).loraConfig;
  if (!cfg || !model.lora.size) throw new Error('lora: the model has no adapters');
  return cfg;
}

/**
 * The adapters in PEFT's layout: the `adapter_config.json` object and the tensors of
 * `adapter_model.safetensors` (`saveLora` in `./node` writes them to a directory).
 */
export function loraAdapterFiles(
  model: CausalLM,
  baseModelNameOrPath = '',
): { config: Record<string, unknown>; tensors: Map<string, HostTensor> } {
  const cfg = loraConfigOf(model);
  const tensors = new Map<string, HostTensor>();
  for (const [name, m] of model.lora) {
    tensors.set(`base_model.model.${name}.lora_A.weight`, {
      shape: [...m.a.shape],
      data: m.a.dataSync() as Float32Array,
    });
    tensors.set(`base_model.model.${name}.lora_B.weight`, {
      shape: [...m.b.shape],
      data: m.b.dataSync() as Float32Array,
    });
  }
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelNameOrPath,
    r: cfg.r,
    lora_alpha: cfg.loraAlpha,
    lora_dropout: cfg.loraDropout,
    target_modules: cfg.targetModules,
    bias: 'none',
    use_rslora: cfg.useRslora === true,
    fan_in_fan_out: architectureOf(model.config).linearModules.layout === 'in_out',
    inference_mode: true,
  };
  return { config, tensors };
}

/**
 * PEFT LoraConfig fields we read (`r`, `lora_alpha`, `lora_dropout`, `target_modules`,
 * `use_rslora`) or that do not change the math when loading. Any other field, or one of the
 * options below with a value other than its neutral one, is an error naming it: DoRA, per-module
 * ranks, trained biases and saved full modules would all change the logits.
 */
const PEFT_READ = new Set([
  'peft_type',
  'r',
  'lora_alpha',
  'lora_dropout',
  'target_modules',
  'use_rslora',
]);
const PEFT_NO_MATH = new Set([
  'task_type',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'init_lora_weights',
  'auto_mapping',
  'peft_version',
  'runtime_config',
  // PEFT 0.21 writes these with defaults; they only act with `megatron_config` / `use_qalora`,
  // which are checked below
  'megatron_core',
  'qalora_group_size',
]);

function isNeutral(v: unknown): boolean {
  return (
    v === null ||
    v === undefined ||
    v === false ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)
  );
}

function checkPeftFields(raw: Record<string, unknown>, path: string, fanInFanOut: boolean): void {
  for (const [k, v] of Object.entries(raw)) {
    if (PEFT_READ.has(k) || PEFT_NO_MATH.has(k)) continue;
    if (k === 'bias') {
      if (v !== 'none' && v !== undefined && v !== null)
        throw new Error(
          `${path}: field 'bias' is ${JSON.stringify(v)}; only 'none' is supported (trained biases change the base layers)`,
        );
      continue;
    }
    if (k === 'fan_in_fan_out') {
      if (v !== undefined && v !== null && v !== fanInFanOut)
        throw new Error(
          `${path}: field 'fan_in_fan_out' is ${JSON.stringify(v)} but this model's weights are ${fanInFanOut ? '[in, out] (Conv1D)' : '[out, in]'}`,
        );
      continue;
    }
    if (!isNeutral(v))
      throw new Error(
        `${path}: field '${k}' = ${JSON.stringify(v)} is not supported (${
          k === 'use_dora'
            ? 'DoRA'
            : k === 'modules_to_save'
              ? 'saved full modules'
              : k === 'rank_pattern' || k === 'alpha_pattern'
                ? 'per-module ranks or alphas'
                : 'it may change the adapter math'
        }); the adapter would load with wrong logits`,
      );
  }
}

/** Loads PEFT adapters saved by `saveLora` (or PEFT) onto a base model. */
export async function loadLoraFrom(model: CausalLM, src: ModelSource): Promise<void> {
  const path = src.where('adapter_config.json');
  const raw = (await readJson(src, 'adapter_config.json')) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${path}: expected an object`);
  if (raw.peft_type !== 'LORA')
    throw new Error(`${path}: peft_type ${JSON.stringify(raw.peft_type)} is not LORA`);
  checkPeftFields(raw, path, architectureOf(model.config).linearModules.layout === 'in_out');
  const num = (f: string, fallback?: number) => {
    const v = raw[f] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`${path}: field '${f}' must be a number, got ${JSON.stringify(raw[f])}`);
    return v;
  };
  if (!Array.isArray(raw.target_modules) || !raw.target_modules.every((t) => typeof t === 'string'))
    throw new Error(
      `${path}: field 'target_modules' must be a list of module names, got ${JSON.stringify(raw.target_modules)} (a regex string is not supported)`,
    );
  const cfg: LoraConfig = {
    r: num('r'),
    loraAlpha: num('lora_alpha', 8),
    loraDropout: num('lora_dropout', 0),
    targetModules: raw.target_modules as string[],
    useRslora: raw.use_rslora === true,
  };
  addLora(model, cfg);
  const dir = src.name;
  const tensors = await readSafetensorsFrom(src, 'adapter_model.safetensors');
  for (const [name, m] of model.lora) {
    for (const [part, v] of [
      ['lora_A', m.a],
      ['lora_B', m.b],
    ] as const) {
      const key = `base_model.model.${name}.${part}.weight`;
      const t = tensors.get(key);
      if (!t) throw new Error(`${dir}: adapter_model.safetensors has no tensor '${key}'`);
      if (t.shape.join() !== v.shape.join())
        throw new Error(`${dir}: tensor '${key}' has shape [${t.shape}], expected [${v.shape}]`);
      v.assign(tf.tensor(t.data, t.shape));
      tensors.delete(key);
    }
  }
  if (tensors.size)
    throw new Error(`${dir}: unexpected adapter tensor '${[...tensors.keys()][0]}'`);
}

/** Merges every adapter into its base weight (`W += (α/r)·B·A`, transposed for Conv1D) and removes it. */
export function mergeLora(model: CausalLM): void {
  const layouts = new Map(linearModules(model).map((m) => [m.name, m.layout]));
  for (const [name, m] of model.lora) {
    const w = model.params.get(`${name}.weight`)!;
    tf.tidy(() => {
      const delta = tf.mul(tf.matMul(m.b, m.a), m.scale);
      w.assign(tf.add(w, layouts.get(name) === 'in_out' ? tf.transpose(delta) : delta));
    });
    tf.dispose([m.a, m.b]);
  }
  model.lora.clear();
  for (const v of model.params.values()) v.trainable = true;
}

export type { LoraModule };
