import { ConfigReader, type Objective } from '@alignjs/core-logprob';
import type { LoraConfig } from '@alignjs/models';
import type { OptimizerName, Schedule } from './optim.js';

/** A run's objective: its name, its raw config block, and (once resolved) the Objective. */
export interface ObjectiveSpec {
  name: string;
  config: Record<string, unknown>;
  objective?: Objective<object>;
}

/**
 * A spec with its Objective attached as a non-enumerable property: configs stay plain data
 * (JSON in checkpoints, resume comparisons, equality in tests) and still carry the code.
 */
export function withObjective(
  spec: { name: string; config: Record<string, unknown> },
  objective: Objective<object>,
): Required<ObjectiveSpec> {
  const out = { name: spec.name, config: spec.config } as Required<ObjectiveSpec>;
  Object.defineProperty(out, 'objective', { value: objective, enumerable: false });
  return out;
}

/** Reads the `objective` field; errors go through `fail` (which names the field). */
export type ObjectiveParser = (raw: unknown, fail: (message: string) => never) => ObjectiveSpec;

/** A training run: every field documented in the package README. */
export interface TrainConfig {
  /** Hugging Face model directory, or `builtin:tiny` */
  model: string;
  /** reference model directory (default: a frozen copy of the starting policy) */
  reference?: string;
  /** JSONL / JSON training data */
  train: string;
  /** held-out data file (default: none, or `evalFraction` of train) */
  eval?: string;
  evalFraction: number;
  /** declared range of raw scores in the data, checked per record */
  scoreRange?: [number, number];
  /**
   * the objective and its own config block (what its `parseConfig` reads). `name` is how
   * configs and reports call it; `objective` is the Objective itself — required by the
   * Trainer (`@alignjs/cli`'s `parseRunConfig` resolves names with its registry)
   */
  objective: ObjectiveSpec;
  /** output directory: checkpoints, metrics.jsonl, report.html, final model */
  output: string;
  learningRate: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  epochs: number;
  /** stop after this many optimizer steps (overrides epochs; 0 = off) */
  maxSteps: number;
  schedule: Schedule;
  warmupSteps: number;
  weightDecay: number;
  /**
   * `adamw_torch` (moments on the device), `adamw_host` (moments in host memory: slower, for
   * models whose weights + gradients + moments do not fit the device), or `auto` (the
   * default: `adamw_host` only on wasm past 1.5 GB of optimizer memory)
   */
  optim: OptimizerName | 'auto';
  /**
   * TRL/transformers `bf16`: matmuls in bfloat16 (forward and backward, policy and reference),
   * as torch's CPU autocast runs them; tensorflow backend only. Default false: TRL defaults
   * to true, but wasm has no bfloat16 (see the README)
   */
  bf16: boolean;
  maxGradNorm: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  seed: number;
  logSteps: number;
  evalSteps: number;
  saveSteps: number;
  /** keep at most this many `checkpoint-*` directories, deleting the oldest (TRL `save_total_limit`); 0 = all */
  saveTotalLimit: number;
  /** TRL 1.13's `max_length` (1024): the longest prompt + response row; `null`: no limit */
  maxLength: number | null;
  /** TRL 0.x's `max_prompt_length` (TRL 1.13 has none; unset by default): the prompt is cut to it first */
  maxPromptLength?: number;
  /** TRL's `truncation_mode`: `keep_start` (TRL 1.13's default) or `keep_end` (deprecated in TRL 1.13) */
  truncationMode: 'keep_end' | 'keep_start';
  lora?: LoraConfig;
  /** a JS module exporting `reward(prompt, response) => number` (or a default export) */
  rewardModule?: string;
  /** a reward model directory written by `alignjs train-rm` */
  rewardModel?: string;
  /** online UNA: sample from the current policy each step, score, update (see README) */
  online?: { samplesPerPrompt: number; maxNewTokens: number; temperature: number };
  /** on-disk reference log-prob cache (default: <output>/ref-logps.json) */
  refCache?: string;
  /** TR-DPO (TRL `sync_ref_model`): mix the policy into the reference during training */
  syncRefModel: boolean;
  /** TRL `ref_model_mixup_alpha`: π_ref ← α·π_θ + (1 − α)·π_ref, default 0.6 */
  refModelMixupAlpha: number;
  /** TRL `ref_model_sync_steps`: optimizer steps between syncs, default 512 */
  refModelSyncSteps: number;
}

/** A non-empty string field of a config (`required`: an error when absent), errors naming it. */
export function stringField(
  r: ConfigReader,
  raw: unknown,
  field: string,
  required: boolean,
): string | undefined {
  const v = ((raw ?? {}) as Record<string, unknown>)[field];
  if (v === undefined) {
    if (required) r.fail(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string' || v === '')
    r.fail(field, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v as string;
}

/** TRL's `max_length`: 1024 by default, `null` for no limit. */
function maxLengthOf(r: ConfigReader, obj: Record<string, unknown>): number | null {
  if (obj.maxLength !== null) return r.number('maxLength', 1024, { min: 2, integer: true });
  r.mark('maxLength');
  return null;
}

/** Parses and validates a training config (from YAML/JSON or code); errors name the field. */
export function parseTrainConfig(
  raw: unknown,
  source = 'config',
  options: { parseObjective?: ObjectiveParser } = {},
): TrainConfig {
  const r = new ConfigReader(source, raw);
  const str = (field: string, required: boolean) => stringField(r, raw, field, required);
  const obj = (raw ?? {}) as Record<string, unknown>;
  const objective = (options.parseObjective ?? parseObjectiveObject)(obj.objective, (m) =>
    r.fail('objective', m),
  );
  const lora = obj.lora as Record<string, unknown> | undefined;
  const cfg: TrainConfig = {
    model: str('model', false) ?? 'builtin:tiny',
    reference: str('reference', false),
    train: str('train', true)!,
    eval: str('eval', false),
    evalFraction: r.number('evalFraction', 0, { min: 0, lt: 1 }),
    scoreRange: r.range('scoreRange', undefined),
    objective,
    output: str('output', true)!,
    learningRate: r.number('learningRate', 5e-6, { gt: 0 }),
    batchSize: r.number('batchSize', 8, { min: 1, integer: true }),
    gradientAccumulationSteps: r.number('gradientAccumulationSteps', 1, { min: 1, integer: true }),
    epochs: r.number('epochs', 1, { min: 1, integer: true }),
    maxSteps: r.number('maxSteps', 0, { min: 0, integer: true }),
    schedule: r.oneOf('schedule', 'linear', ['constant', 'linear', 'cosine'] as const),
    warmupSteps: r.number('warmupSteps', 0, { min: 0, integer: true }),
    weightDecay: r.number('weightDecay', 0, { min: 0 }),
    bf16: r.boolean('bf16', false),
    optim: r.oneOf('optim', 'auto', [
      'auto',
      'adamw_torch',
      'adamw_torch_fused',
      'adamw_host',
    ] as const),
    maxGradNorm: r.number('maxGradNorm', 1, { min: 0 }),
    adamBeta1: r.number('adamBeta1', 0.9, { min: 0, lt: 1 }),
    adamBeta2: r.number('adamBeta2', 0.999, { min: 0, lt: 1 }),
    adamEpsilon: r.number('adamEpsilon', 1e-8, { gt: 0 }),
    seed: r.number('seed', 42, { integer: true }),
    logSteps: r.number('logSteps', 1, { min: 1, integer: true }),
    evalSteps: r.number('evalSteps', 0, { min: 0, integer: true }),
    saveSteps: r.number('saveSteps', 0, { min: 0, integer: true }),
    saveTotalLimit: r.number('saveTotalLimit', 0, { min: 0, integer: true }),
    maxLength: maxLengthOf(r, obj),
    maxPromptLength: r.optionalNumber('maxPromptLength', { min: 1, integer: true }),
    truncationMode: r.oneOf('truncationMode', 'keep_start', ['keep_start', 'keep_end'] as const),
    rewardModule: str('rewardModule', false),
    rewardModel: str('rewardModel', false),
    refCache: str('refCache', false),
    syncRefModel: r.boolean('syncRefModel', false),
    refModelMixupAlpha: r.number('refModelMixupAlpha', 0.6, { min: 0, max: 1 }),
    refModelSyncSteps: r.number('refModelSyncSteps', 512, { min: 1, integer: true }),
  };
  if (lora !== undefined) {
    cfg.lora = r.nested('lora', (l) => ({
      r: l.number('r', 8, { min: 1, integer: true }),
      loraAlpha: l.number('loraAlpha', 16, { gt: 0 }),
      loraDropout: l.number('loraDropout', 0, { min: 0, lt: 1 }),
      useRslora: l.boolean('useRslora', false),
      targetModules: (() => {
        const t = (lora as { targetModules?: unknown }).targetModules;
        l.mark('targetModules');
        if (t === undefined) return ['q_proj', 'v_proj', 'c_attn'];
        if (!Array.isArray(t) || !t.every((x) => typeof x === 'string'))
          l.fail('targetModules', 'must be a list of module names');
        return t as string[];
      })(),
    }));
  }
  r.mark(
    'model',
    'reference',
    'train',
    'eval',
    'objective',
    'output',
    'rewardModule',
    'rewardModel',
    'refCache',
    'lora',
  );
  if (obj.online !== undefined) {
    cfg.online = r.nested('online', (o) => ({
      samplesPerPrompt: o.number('samplesPerPrompt', 2, { min: 1, integer: true }),
      maxNewTokens: o.number('maxNewTokens', 32, { min: 1, integer: true }),
      temperature: o.number('temperature', 1, { gt: 0 }),
    }));
    if (!cfg.rewardModule && !cfg.rewardModel)
      r.fail('online', 'needs a reward source: rewardModule or rewardModel');
  }
  if (cfg.rewardModule && cfg.rewardModel)
    r.fail('rewardModel', 'and rewardModule are exclusive: give one source of rewards');
  r.done();
  return cfg;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `v` implements the Objective contract of `@alignjs/core-logprob`. */
export const isObjective = (v: unknown): v is Objective<object> =>
  isObject(v) &&
  typeof v.name === 'string' &&
  typeof v.loss === 'function' &&
  typeof v.parseConfig === 'function' &&
  typeof v.needs === 'function';

/**
 * The library's reading of `objective`: an `Objective` object, bare or as `{objective,
 * config}`. Names (`'dpo'`, TRL's `loss_type`, weighted lists) need a registry of objectives:
 * `@alignjs/cli`'s `parseRunConfig` reads every spelling.
 */
export const parseObjectiveObject: ObjectiveParser = (raw, fail) => {
  if (isObjective(raw)) return withObjective({ name: raw.name, config: {} }, raw);
  if (isObject(raw) && isObjective(raw.objective)) {
    if (raw.config !== undefined && !isObject(raw.config)) fail('config must be an object');
    return withObjective(
      { name: raw.objective.name, config: (raw.config as Record<string, unknown>) ?? {} },
      raw.objective,
    );
  }
  return fail(
    `must be an Objective (or {objective, config}); ${
      typeof raw === 'string' || isObject(raw) || Array.isArray(raw)
        ? "objectives by name need the registry: parse with @alignjs/cli's parseRunConfig"
        : `got ${JSON.stringify(raw)}`
    }`,
  );
};

/**
 * Fields a resume may change (they do not change what is trained): logging, evaluation and
 * saving cadence, the step budget, where outputs go. Every other field of the checkpoint's
 * config must be equal; data are compared by content (`dataFingerprint`).
 */
export const RESUME_SAFE_FIELDS: readonly (keyof TrainConfig)[] = [
  'logSteps',
  'evalSteps',
  'saveSteps',
  'saveTotalLimit',
  'maxSteps',
  'output',
  'refCache',
  'train',
  'eval',
  // the two AdamW implementations store their moments alike (tested to resume across)
  'optim',
];

/** The first field where two configs differ, ignoring the resume-safe ones. */
export function firstConfigDifference(a: object, b: object): string | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if ((RESUME_SAFE_FIELDS as readonly string[]).includes(k)) continue;
    const x = JSON.stringify((a as Record<string, unknown>)[k]);
    const y = JSON.stringify((b as Record<string, unknown>)[k]);
    if (x !== y) return k;
  }
  return undefined;
}

/**
 * Refuses a resume whose config differs from the checkpoint's in a field that changes what
 * is trained (everything but {@link RESUME_SAFE_FIELDS}), naming the field and both values.
 */
export function checkResumeConfig(dir: string, saved: object | undefined, current: object): void {
  if (!saved) return;
  const field = firstConfigDifference(saved, current);
  if (field)
    throw new Error(
      `${dir}: the checkpoint was made with ${field} = ${JSON.stringify((saved as Record<string, unknown>)[field])}, this run has ${JSON.stringify((current as Record<string, unknown>)[field])}; a resume may change only ${RESUME_SAFE_FIELDS.join(', ')}`,
    );
}
