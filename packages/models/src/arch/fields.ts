/** Reading `config.json` fields, shared by the architecture modules. */

/** A number field (or its fallback); errors name the file and the field. */
export function num(
  raw: Record<string, unknown>,
  path: string,
  field: string,
  fallback?: number,
): number {
  const v = raw[field];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`${path}: missing field '${field}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`${path}: field '${field}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** `bos_token_id`, `eos_token_id` and `pad_token_id`, where the config gives them. */
export function tokenIds(c: Record<string, unknown>): {
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
} {
  return {
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : undefined,
    eosTokenId:
      typeof c.eos_token_id === 'number' || Array.isArray(c.eos_token_id)
        ? (c.eos_token_id as number | number[])
        : undefined,
    padTokenId: typeof c.pad_token_id === 'number' ? c.pad_token_id : undefined,
  };
}

/**
 * RoPE's θ from either layout: transformers 5's `rope_parameters: {rope_type, rope_theta, …}`
 * or the older top-level `rope_theta` / `rope_scaling`. Only the `default` RoPE type is
 * implemented: any other (`linear`, `dynamic`, `yarn`, `llama3`, …) or any extra field that
 * changes the math is an error naming it, never a silent fallback to plain RoPE.
 */
export function ropeThetaOf(c: Record<string, unknown>, path: string): number {
  const p = c.rope_parameters as Record<string, unknown> | undefined | null;
  const scaling = c.rope_scaling as Record<string, unknown> | undefined | null;
  if (p !== undefined && p !== null && (typeof p !== 'object' || Array.isArray(p)))
    throw new Error(`${path}: field 'rope_parameters' must be an object, got ${JSON.stringify(p)}`);
  const type = (p?.rope_type ?? scaling?.rope_type ?? scaling?.type ?? 'default') as unknown;
  if (type !== 'default') {
    const field = p?.rope_type !== undefined ? 'rope_parameters.rope_type' : 'rope_scaling';
    throw new Error(
      `${path}: field '${field}' is ${JSON.stringify(type)}; only the 'default' RoPE type is implemented (linear, dynamic, yarn and llama3 scaling are not yet), so this checkpoint would compute wrong logits`,
    );
  }
  for (const k of Object.keys(p ?? {}))
    if (k !== 'rope_type' && k !== 'rope_theta')
      throw new Error(
        `${path}: field 'rope_parameters.${k}' is not supported (it changes RoPE's math)`,
      );
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1)
    throw new Error(
      `${path}: field 'partial_rotary_factor' ${JSON.stringify(c.partial_rotary_factor)} is not supported`,
    );
  const top = c.rope_theta;
  const nested = p?.rope_theta;
  if (top !== undefined && nested !== undefined && top !== nested)
    throw new Error(
      `${path}: 'rope_theta' (${JSON.stringify(top)}) and 'rope_parameters.rope_theta' (${JSON.stringify(nested)}) disagree`,
    );
  const theta = nested ?? top ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0))
    throw new Error(`${path}: RoPE theta must be a number > 0, got ${JSON.stringify(theta)}`);
  return theta;
}
