import { type Objective, suggest, weightedSum } from '@alignjs/core-logprob';
import { dpoObjectives } from '@alignjs/loss-dpo';
import { proObjective } from '@alignjs/loss-pro';
import { raoObjective } from '@alignjs/loss-rao';
import { unaObjective } from '@alignjs/loss-una';
import { unidpoObjective } from '@alignjs/loss-unidpo';
import { varObjective } from '@alignjs/loss-var';
import {
  isObjective,
  type ObjectiveParser,
  type ObjectiveSpec,
  parseObjectiveObject,
  withObjective,
} from '@alignjs/trainer/node';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every objective the trainer can run, by the name users type. */
export const OBJECTIVES: Readonly<Record<string, Objective<object>>> = Object.freeze({
  ...(dpoObjectives as unknown as Record<string, Objective<object>>),
  unidpo: unidpoObjective as unknown as Objective<object>,
  una: unaObjective as unknown as Objective<object>,
  rao: raoObjective as unknown as Objective<object>,
  var: varObjective as unknown as Objective<object>,
  pro: proObjective as unknown as Objective<object>,
});

/** TRL names for the same objective (`loss_type: sigmoid` is DPO). */
export const OBJECTIVE_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  sigmoid: 'dpo',
});

/** TRL's snake_case config fields and ours (camelCase). */
export const TRL_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  label_smoothing: 'labelSmoothing',
  f_divergence_type: 'fDivergenceType',
  f_alpha_divergence_coef: 'fAlphaDivergenceCoef',
  use_weighting: 'useWeighting',
  ld_alpha: 'ldAlpha',
  discopop_tau: 'discopopTau',
  reference_free: 'referenceFree',
  cpo_alpha: 'cpoAlpha',
  simpo_gamma: 'simpoGamma',
  loss_type: 'lossType',
  desirable_weight: 'desirableWeight',
  undesirable_weight: 'undesirableWeight',
});

export function getObjective(name: string): Objective<object> {
  const o = OBJECTIVES[OBJECTIVE_ALIASES[name] ?? name];
  if (!o) {
    const names = [...Object.keys(OBJECTIVES), ...Object.keys(OBJECTIVE_ALIASES)];
    throw new Error(
      `unknown objective '${name}'; available: ${Object.keys(OBJECTIVES).join(', ')}${suggest(name, names)}`,
    );
  }
  return o;
}

/** TRL's snake_case field names renamed to ours; everything else as given. */
export function camelConfig(raw: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const key = TRL_FIELDS[k] ?? k;
    if (key in out) throw new Error(`${where}: '${k}' and '${key}' are the same field; give one`);
    out[key] = v;
  }
  return out;
}

/** One part of a weighted objective, as the config gives it. */
export interface PartSpec {
  name: string;
  weight: number;
  config: Record<string, unknown>;
}

/**
 * The objective of a run: by name with its config, or `weighted` with `{parts}` (a list of
 * objectives with weights), resolved to the Objective the Trainer runs (for `weighted`, one
 * whose `parseConfig` reads `{parts}`). `sigmoid` with `labelSmoothing` is refused: TRL 1.13
 * ignores label smoothing there, ours would apply it (`cdpo` is conservative DPO).
 */
export function attachObjective(spec: ObjectiveSpec): Required<ObjectiveSpec> {
  if (spec.objective) return spec as Required<ObjectiveSpec>;
  if (spec.name === 'weighted') {
    const parts = (spec.config as { parts: PartSpec[] }).parts;
    for (const p of parts) checkAlias(p.name, p.config);
    const sum = weightedSum(
      parts.map((p) => ({ objective: getObjective(p.name), weight: p.weight })),
    ) as unknown as Objective<object>;
    const objective: Objective<object> = Object.freeze({
      ...sum,
      parseConfig: (raw: unknown) =>
        sum.parseConfig(((raw as { parts: PartSpec[] }).parts ?? []).map((p) => p.config)),
    });
    return withObjective(spec, objective);
  }
  checkAlias(spec.name, spec.config);
  return withObjective(spec, getObjective(spec.name));
}

/** The Objective of a spec and its parsed config (errors name the field). */
export function resolveObjective(spec: ObjectiveSpec): {
  objective: Objective<object>;
  config: object;
} {
  const { objective } = attachObjective(spec);
  return { objective, config: objective.parseConfig(spec.config) };
}

function checkAlias(name: string, config: Record<string, unknown>): void {
  if (name === 'sigmoid' && config.labelSmoothing !== undefined && config.labelSmoothing !== 0)
    throw new Error(
      "objective 'sigmoid': TRL 1.13's sigmoid loss ignores label_smoothing; for conservative DPO use objective 'cdpo' (or 'dpo' with labelSmoothing)",
    );
}

/** TRL DPOConfig defaults for the fields its loss types share. */
const TRL_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  beta: 0.1,
  labelSmoothing: 0,
  fDivergenceType: 'reverse_kl',
  fAlphaDivergenceCoef: 0.5,
  useWeighting: false,
  discopopTau: 0.05,
  referenceFree: false,
});

/** Fields TRL applies to every loss type (an error if some part cannot take them). */
const EVERY_PART = ['fDivergenceType', 'useWeighting', 'ldAlpha', 'referenceFree'];
/** Fields a TRL loss type ignores although our objective of that name reads them. */
const TRL_IGNORES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  sigmoid: ['labelSmoothing'],
  sft: ['fDivergenceType', 'fAlphaDivergenceCoef'],
});

function accepts(o: Objective<object>, field: string, value: unknown): boolean {
  try {
    o.parseConfig({ [field]: value });
    return true;
  } catch (err) {
    return !(err as Error).message.includes(`unknown field '${field}'`);
  }
}

/**
 * TRL's spelling, `loss_type: [sigmoid, bco_pair, sft]` with `loss_weights` and the shared
 * DPOConfig fields (`beta`, `label_smoothing`, `f_divergence_type`, …), as weighted parts
 * with TRL's semantics: every part gets TRL's defaults (β = 0.1, ε = 0, …) and the shared
 * fields its loss type uses. A field no part uses, or one TRL applies to every part that a
 * part cannot take, is an error naming it.
 */
export function partsFromTrl(
  lossTypes: readonly string[],
  weights: readonly number[] | undefined,
  shared: Record<string, unknown>,
  where = 'objective',
): PartSpec[] {
  if (lossTypes.length === 0) throw new Error(`${where}: loss_type is an empty list`);
  if (weights && weights.length !== lossTypes.length)
    throw new Error(
      `${where}: loss_weights has ${weights.length} values for ${lossTypes.length} loss types`,
    );
  const given = camelConfig(shared, where);
  const fields = { ...TRL_DEFAULTS, ...given };
  const used = new Set<string>();
  const parts = lossTypes.map((t, i) => {
    const objective = getObjective(t);
    const config: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const neutral = k in TRL_DEFAULTS && TRL_DEFAULTS[k] === v;
      const ok = !TRL_IGNORES[t]?.includes(k) && accepts(objective, k, v);
      if (ok) {
        config[k] = v;
        used.add(k);
      } else if (EVERY_PART.includes(k) && !neutral && !TRL_IGNORES[t]?.includes(k)) {
        throw new Error(
          `${where}: '${k}' = ${JSON.stringify(v)} applies to every loss type, but '${t}' does not support it`,
        );
      }
    }
    return { name: t, weight: weights?.[i] ?? 1, config };
  });
  for (const [k, v] of Object.entries(given)) {
    if (!used.has(k) && !(k in TRL_DEFAULTS && TRL_DEFAULTS[k] === v))
      throw new Error(
        `${where}: field '${k}' is not used by ${lossTypes.join(', ')}${
          lossTypes.includes('sigmoid') && k === 'labelSmoothing'
            ? " (TRL 1.13's sigmoid ignores label_smoothing; 'cdpo' is conservative DPO)"
            : ''
        }`,
      );
  }
  return parts;
}

/**
 * The `objective` field in any of its spellings: a name; `{name, config}`; a list of
 * `{name, weight, config}` (a weighted sum); TRL's `{loss_type: [...], loss_weights: [...],
 * beta, label_smoothing, …}`; or an `Objective` object (bare, or `{objective, config}`).
 * TRL's snake_case field names are accepted everywhere.
 */
function parseNamedSpec(raw: unknown, fail: (message: string) => never): ObjectiveSpec {
  // an Objective object of the user's (the contract in @alignjs/core-logprob), bare or with its config
  if (isObjective(raw) || (isObject(raw) && isObjective(raw.objective)))
    return parseObjectiveObject(raw, fail);
  const where = 'objective';
  const wrap = (f: () => { name: string; config: Record<string, unknown> }) => {
    try {
      return f();
    } catch (err) {
      return fail((err as Error).message.replace(/^objective: /, ''));
    }
  };
  if (typeof raw === 'string' && raw !== '') return { name: raw, config: {} };
  if (Array.isArray(raw)) {
    if (raw.length === 0) fail('is an empty list');
    const parts: PartSpec[] = raw.map((p, i) => {
      if (typeof p === 'string') return { name: p, weight: 1, config: {} };
      if (!isObject(p) || typeof p.name !== 'string')
        fail(`entry ${i} must be a name or {name, weight, config}, got ${JSON.stringify(p)}`);
      const extra = Object.keys(p).filter((k) => !['name', 'weight', 'config'].includes(k));
      if (extra.length)
        fail(`entry ${i}: unknown field '${extra[0]}' (known: name, weight, config)`);
      const weight = p.weight ?? 1;
      if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)
        fail(`entry ${i}: weight must be a finite number >= 0, got ${JSON.stringify(p.weight)}`);
      if (p.config !== undefined && !isObject(p.config))
        fail(`entry ${i}: config must be an object`);
      const config = wrap(() => ({
        name: '',
        config: camelConfig((p.config as Record<string, unknown>) ?? {}, `${where}[${i}]`),
      })).config;
      return { name: p.name as string, weight: weight as number, config };
    });
    return { name: 'weighted', config: { parts } };
  }
  if (isObject(raw)) {
    const lossType = raw.loss_type ?? raw.lossType;
    if (raw.name === undefined && lossType !== undefined) {
      const { loss_type: _a, lossType: _b, loss_weights, lossWeights, config, ...shared } = raw;
      const types = typeof lossType === 'string' ? [lossType] : lossType;
      if (!Array.isArray(types) || !types.every((t) => typeof t === 'string'))
        fail(`loss_type must be a name or a list of names, got ${JSON.stringify(lossType)}`);
      const weights = loss_weights ?? lossWeights;
      if (
        weights !== undefined &&
        (!Array.isArray(weights) || !weights.every((w) => typeof w === 'number'))
      )
        fail(`loss_weights must be a list of numbers, got ${JSON.stringify(weights)}`);
      if (config !== undefined && !isObject(config)) fail('config must be an object');
      return wrap(() => {
        const parts = partsFromTrl(types as string[], weights as number[] | undefined, {
          ...(config as Record<string, unknown> | undefined),
          ...shared,
        });
        return parts.length === 1
          ? { name: parts[0]!.name, config: parts[0]!.config }
          : { name: 'weighted', config: { parts } };
      });
    }
    if (typeof raw.name === 'string') {
      const extra = Object.keys(raw).filter((k) => k !== 'name' && k !== 'config');
      if (extra.length)
        fail(
          `unknown field '${extra[0]}' (an objective is {name, config}; its settings go in config)`,
        );
      if (raw.config !== undefined && !isObject(raw.config)) fail('config must be an object');
      return wrap(() => ({
        name: raw.name as string,
        config: camelConfig((raw.config as Record<string, unknown>) ?? {}, where),
      }));
    }
  }
  return fail(
    "is required: a name ('dpo'), {name, config}, a list of {name, weight, config}, or TRL's {loss_type, loss_weights, …}",
  );
}

/**
 * The `objective` field in every spelling (see {@link parseNamedSpec}), resolved against the
 * registry: the parser `parseRunConfig` gives the trainer's `parseTrainConfig`.
 */
export const parseObjectiveSpec: ObjectiveParser = (raw, fail) => {
  const spec = parseNamedSpec(raw, fail);
  try {
    return attachObjective(spec);
  } catch (err) {
    return fail((err as Error).message);
  }
};
