/**
 * RoPE as transformers 5 defines it (`modeling_rope_utils.py`): the settings read from either
 * config layout (`rope_parameters: {rope_type, rope_theta, …}` or the older top-level
 * `rope_theta` / `rope_scaling`), and the inverse frequencies and attention scaling of each
 * type: `default`, `linear`, `dynamic` (NTK), `yarn`, `llama3`. Any other type, or a field a
 * type does not read, is an error naming it: never a silent fallback to plain RoPE.
 */

export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'llama3';

/** The RoPE settings of a checkpoint, normalized. */
export interface RopeSpec {
  type: RopeType;
  theta: number;
  /** rotary dimensions (= head_dim; partial rotary is refused) */
  dim: number;
  /** `max_position_embeddings` (dynamic's threshold, yarn's implicit factor) */
  maxPositions: number;
  factor?: number;
  originalMaxPositions?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  attentionFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
}

/** The fields each type reads besides `rope_type`/`type` and `rope_theta` (transformers' validators). */
const FIELDS: Record<RopeType, readonly string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  yarn: [
    'factor',
    'original_max_position_embeddings',
    'attention_factor',
    'beta_fast',
    'beta_slow',
    'mscale',
    'mscale_all_dim',
    'truncate',
  ],
  llama3: ['factor', 'original_max_position_embeddings', 'low_freq_factor', 'high_freq_factor'],
};
const REQUIRED: Record<RopeType, readonly string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  yarn: [],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor'],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the RoPE settings of `config.json` (`path` names the file in errors). */
export function parseRope(
  c: Record<string, unknown>,
  path: string,
  headDim: number,
  maxPositions: number,
): RopeSpec {
  const p = c.rope_parameters;
  const scaling = c.rope_scaling;
  for (const [name, v] of [
    ['rope_parameters', p],
    ['rope_scaling', scaling],
  ] as const)
    if (v !== undefined && v !== null && !isObject(v))
      throw new Error(`${path}: field '${name}' must be an object, got ${JSON.stringify(v)}`);
  if (isObject(p) && isObject(scaling) && JSON.stringify(p) !== JSON.stringify(scaling))
    throw new Error(`${path}: both 'rope_parameters' and 'rope_scaling' are set and differ`);
  // transformers: `rope_scaling` (the old name) is read as `rope_parameters`.
  const prefix = isObject(p) ? 'rope_parameters' : 'rope_scaling';
  const r: Record<string, unknown> = isObject(p) ? p : isObject(scaling) ? scaling : {};
  const rawType = r.rope_type ?? r.type ?? 'default';
  if (!(typeof rawType === 'string' && rawType in FIELDS))
    throw new Error(
      `${path}: field '${prefix}.${r.rope_type !== undefined ? 'rope_type' : 'type'}' is ${JSON.stringify(rawType)}; supported RoPE types: ${Object.keys(FIELDS).join(', ')}`,
    );
  const type = rawType as RopeType;
  const allowed = new Set(['rope_type', 'type', 'rope_theta', ...FIELDS[type]]);
  for (const k of Object.keys(r)) {
    if (k === 'partial_rotary_factor') continue;
    if (!allowed.has(k))
      throw new Error(
        `${path}: field '${prefix}.${k}' is not read by RoPE type '${type}' (it takes ${[...allowed].filter((f) => f !== 'type').join(', ')}); refusing rather than ignoring it`,
      );
  }
  for (const k of REQUIRED[type])
    if (r[k] === undefined || r[k] === null)
      throw new Error(`${path}: RoPE type '${type}' needs field '${prefix}.${k}'`);
  const partial = r.partial_rotary_factor ?? c.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    throw new Error(
      `${path}: field 'partial_rotary_factor' ${JSON.stringify(partial)} is not supported (partial rotary embeddings)`,
    );
  const top = c.rope_theta;
  if (top !== undefined && r.rope_theta !== undefined && top !== r.rope_theta)
    throw new Error(
      `${path}: 'rope_theta' (${JSON.stringify(top)}) and '${prefix}.rope_theta' (${JSON.stringify(r.rope_theta)}) disagree`,
    );
  const theta = r.rope_theta ?? top ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0))
    throw new Error(`${path}: RoPE theta must be a number > 0, got ${JSON.stringify(theta)}`);
  const number = (k: string, min = 0): number | undefined => {
    const v = r[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
      throw new Error(
        `${path}: field '${prefix}.${k}' must be a number ≥ ${min}, got ${JSON.stringify(v)}`,
      );
    return v;
  };
  const spec: RopeSpec = { type, theta, dim: headDim, maxPositions };
  if (type === 'default') return spec;
  spec.factor = number('factor', 1);
  if (type === 'yarn' || type === 'llama3') {
    // transformers' standardize_rope_params: a top-level original_max_position_embeddings
    // wins, else the one in the parameters, else max_position_embeddings.
    const top = c.original_max_position_embeddings;
    spec.originalMaxPositions =
      typeof top === 'number'
        ? top
        : (number('original_max_position_embeddings', 1) ?? maxPositions);
  }
  if (type === 'llama3') {
    spec.lowFreqFactor = number('low_freq_factor');
    spec.highFreqFactor = number('high_freq_factor');
    if (spec.lowFreqFactor === spec.highFreqFactor)
      throw new Error(`${path}: llama3 RoPE needs low_freq_factor ≠ high_freq_factor`);
  }
  if (type === 'yarn') {
    spec.attentionFactor = number('attention_factor');
    spec.betaFast = number('beta_fast', -Infinity);
    spec.betaSlow = number('beta_slow', -Infinity);
    spec.mscale = number('mscale', -Infinity);
    spec.mscaleAllDim = number('mscale_all_dim', -Infinity);
    if (r.truncate !== undefined && typeof r.truncate !== 'boolean')
      throw new Error(`${path}: field '${prefix}.truncate' must be a boolean`);
    spec.truncate = r.truncate as boolean | undefined;
  }
  return spec;
}

const f32 = Math.fround;

/** `1 / base^(2i/dim)` for i < dim/2, in float32 as torch computes it. */
function plainInvFreq(base: number, dim: number): Float64Array {
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f32(1 / f32(f32(base) ** f32((2 * i) / dim)));
  return out;
}

/**
 * Inverse frequencies and the cos/sin scaling for a forward pass whose largest position id
 * is `maxPosition` (only `dynamic` depends on it: θ grows once positions pass
 * `max_position_embeddings`, computed per call as a freshly loaded transformers model does).
 */
export function ropeFrequencies(
  s: RopeSpec,
  maxPosition: number,
): { invFreq: Float64Array; scaling: number } {
  const dim = s.dim;
  switch (s.type) {
    case 'default':
      return { invFreq: plainInvFreq(s.theta, dim), scaling: 1 };
    case 'linear':
      return { invFreq: plainInvFreq(s.theta, dim).map((v) => f32(v / s.factor!)), scaling: 1 };
    case 'dynamic': {
      const seqLen = Math.max(maxPosition + 1, s.maxPositions);
      const f = s.factor!;
      const base = s.theta * ((f * seqLen) / s.maxPositions - (f - 1)) ** (dim / (dim - 2));
      return { invFreq: plainInvFreq(base, dim), scaling: 1 };
    }
    case 'llama3': {
      const inv = plainInvFreq(s.theta, dim);
      const old = s.originalMaxPositions!;
      const lowF = s.lowFreqFactor!;
      const highF = s.highFreqFactor!;
      const factor = s.factor!;
      const lowWavelen = old / lowF;
      const highWavelen = old / highF;
      const out = inv.map((v) => {
        const wavelen = (2 * Math.PI) / v;
        if (wavelen > lowWavelen) return f32(v / factor);
        if (wavelen < highWavelen) return v;
        const smooth = (old / wavelen - lowF) / (highF - lowF);
        return f32(((1 - smooth) * v) / factor + smooth * v);
      });
      return { invFreq: out, scaling: 1 };
    }
    case 'yarn': {
      const base = s.theta;
      const orig = s.originalMaxPositions!;
      const factor = s.factor ?? s.maxPositions / orig;
      const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const attention =
        s.attentionFactor ??
        (s.mscale && s.mscaleAllDim
          ? getMscale(factor, s.mscale) / getMscale(factor, s.mscaleAllDim)
          : getMscale(factor));
      const betaFast = s.betaFast || 32;
      const betaSlow = s.betaSlow || 1;
      const corrDim = (rot: number) =>
        (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
      let low = corrDim(betaFast);
      let high = corrDim(betaSlow);
      if (s.truncate ?? true) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001;
      const out = new Float64Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) {
        const pos = f32(f32(base) ** f32((2 * i) / dim));
        const extrap = f32(1 / pos);
        const interp = f32(1 / f32(factor * pos));
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapFactor = 1 - ramp;
        out[i] = f32(interp * (1 - extrapFactor) + extrap * extrapFactor);
      }
      return { invFreq: out, scaling: attention };
    }
  }
}
