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
