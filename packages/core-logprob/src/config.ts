/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/**
 * `; did you mean 'x'?` for the closest candidate within 2 edits (case-insensitive, `_`
 * ignored, so TRL's `label_smoothing` finds `labelSmoothing`), else ''.
 */
export function suggest(name: string, candidates: readonly string[]): string {
  const norm = (x: string) => x.toLowerCase().replace(/_/g, '');
  let best: [string, number] | undefined;
  for (const c of candidates) {
    const dist = editDistance(norm(name), norm(c));
    if (dist <= 2 && (!best || dist < best[1])) best = [c, dist];
  }
  return best ? `; did you mean '${best[0]}'?` : '';
}

/** Bounds for a numeric config field. */
export interface NumberBounds {
  /** inclusive lower bound */
  min?: number;
  /** exclusive lower bound */
  gt?: number;
  /** inclusive upper bound */
  max?: number;
  /** exclusive upper bound */
  lt?: number;
  integer?: boolean;
}

function describeBounds(b: NumberBounds): string {
  const parts: string[] = [];
  if (b.gt !== undefined) parts.push(`> ${b.gt}`);
  if (b.min !== undefined) parts.push(`>= ${b.min}`);
  if (b.lt !== undefined) parts.push(`< ${b.lt}`);
  if (b.max !== undefined) parts.push(`<= ${b.max}`);
  const range = parts.length ? parts.join(' and ') : 'finite';
  return `${b.integer ? 'an integer' : 'a number'} ${range}`;
}

/**
 * Reads a plain-object config field by field. Every error names the objective, the field,
 * the value and the allowed range; `done()` rejects fields nobody read (typos).
 */
export class ConfigReader {
  private readonly obj: Record<string, unknown>;
  private readonly seen = new Set<string>();

  constructor(
    private readonly objective: string,
    raw: unknown,
  ) {
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new Error(
        `${objective} config: expected an object, got ${Array.isArray(raw) ? 'an array' : typeof raw}`,
      );
    }
    this.obj = raw as Record<string, unknown>;
  }

  fail(field: string, message: string): never {
    throw new Error(`${this.objective} config: field '${field}' ${message}`);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined;
  }

  /** Marks fields the caller read by hand, so `done()` does not call them unknown. */
  mark(...fields: string[]): void {
    for (const f of fields) this.seen.add(f);
  }

  number(field: string, fallback: number | undefined, bounds: NumberBounds = {}): number {
    this.seen.add(field);
    const v = this.obj[field];
    if (v === undefined) {
      if (fallback === undefined) this.fail(field, `is required (${describeBounds(bounds)})`);
      return fallback;
    }
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!bounds.integer || Number.isInteger(v)) &&
      (bounds.min === undefined || v >= bounds.min) &&
      (bounds.gt === undefined || v > bounds.gt) &&
      (bounds.max === undefined || v <= bounds.max) &&
      (bounds.lt === undefined || v < bounds.lt);
    if (!ok) this.fail(field, `must be ${describeBounds(bounds)}, got ${JSON.stringify(v)}`);
    return v as number;
  }

  optionalNumber(field: string, bounds: NumberBounds = {}): number | undefined {
    if (this.obj[field] === undefined) {
      this.seen.add(field);
      return undefined;
    }
    return this.number(field, undefined, bounds);
  }

  oneOf<T extends string>(field: string, fallback: T, allowed: readonly T[]): T {
    this.seen.add(field);
    const v = this.obj[field];
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !allowed.includes(v as T)) {
      this.fail(
        field,
        `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`,
      );
    }
    return v as T;
  }

  boolean(field: string, fallback: boolean): boolean {
    this.seen.add(field);
    const v = this.obj[field];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  /** A nested object read with its own reader (field names prefixed in errors). */
  nested<T>(field: string, read: (r: ConfigReader) => T): T {
    this.seen.add(field);
    const r = new ConfigReader(`${this.objective}.${field}`, this.obj[field]);
    const out = read(r);
    r.done();
    return out;
  }

  /** A `[lo, hi]` pair with lo < hi. */
  range(field: string, fallback: [number, number] | undefined): [number, number] | undefined {
    this.seen.add(field);
    const v = this.obj[field];
    if (v === undefined) return fallback;
    if (
      !Array.isArray(v) ||
      v.length !== 2 ||
      !v.every((x) => typeof x === 'number' && Number.isFinite(x)) ||
      !(v[0] < v[1])
    ) {
      this.fail(field, `must be [low, high] with finite low < high, got ${JSON.stringify(v)}`);
    }
    return [v[0], v[1]];
  }

  /** Rejects any field that was not read. */
  done(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.seen.has(k)) {
        throw new Error(
          `${this.objective} config: unknown field '${k}' (known: ${[...this.seen].join(', ') || 'none'})${suggest(k, [...this.seen])}`,
        );
      }
    }
  }
}

/** Reads a config with `read`, rejects unknown fields, and freezes the result. */
export function parseWith<C extends object>(
  objective: string,
  raw: unknown,
  read: (r: ConfigReader) => C,
): Readonly<C> {
  const r = new ConfigReader(objective, raw);
  const c = read(r);
  r.done();
  return Object.freeze(c);
}
