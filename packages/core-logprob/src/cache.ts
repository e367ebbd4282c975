/**
 * Reference log-prob cache (Node only: `@alignjs/core-logprob/cache`).
 *
 * Format (version 1): one JSON file
 * ```json
 * { "format": "alignjs-ref-cache", "version": 1, "reference": "<model identity>",
 *   "entries": { "<key>": { "responseSum": -12.3, "responseLength": 7,
 *                            "promptSum": -4.5, "promptLength": 3 } },
 *   "cross":   { "<key>": [[...B numbers], ...B rows] } }
 * ```
 * Keys are SHA-256 hex digests of the reference identity and the tokenized example
 * ({@link cacheKey}), so a changed tokenization or model never reads an old number. The
 * file is written atomically (temp file + rename). Opening a cache written for another
 * reference model, another format or version is an error that says so.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const CACHE_FORMAT = 'alignjs-ref-cache';
export const CACHE_VERSION = 1;

/** Cached reference numbers for one tokenized example. */
export interface RefLogpEntry {
  responseSum: number;
  responseLength: number;
  promptSum?: number;
  promptLength?: number;
}

interface CacheFile {
  format: string;
  version: number;
  reference: string;
  entries: Record<string, RefLogpEntry>;
  cross: Record<string, number[][]>;
}

/** SHA-256 of the reference identity and the example's token ids (any JSON value). */
export function cacheKey(reference: string, tokens: unknown): string {
  return createHash('sha256')
    .update(reference)
    .update('\0')
    .update(JSON.stringify(tokens))
    .digest('hex');
}

/** Writes `data` to `path` through a temp file and a rename: readers see old or new, never half. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export class RefLogpCache {
  private dirty = false;

  private constructor(
    readonly path: string,
    private readonly file: CacheFile,
  ) {}

  get reference(): string {
    return this.file.reference;
  }

  get size(): number {
    return Object.keys(this.file.entries).length;
  }

  /**
   * Opens the cache at `path` for the reference model `reference`, or starts an empty one
   * if the file does not exist. A file written for another reference is an error, or with
   * `replaceOther` an empty cache that replaces it on `save`.
   */
  static async open(
    path: string,
    reference: string,
    options: { replaceOther?: boolean } = {},
  ): Promise<RefLogpCache> {
    const fresh = () =>
      new RefLogpCache(path, {
        format: CACHE_FORMAT,
        version: CACHE_VERSION,
        reference,
        entries: {},
        cross: {},
      });
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return new RefLogpCache(path, {
          format: CACHE_FORMAT,
          version: CACHE_VERSION,
          reference,
          entries: {},
          cross: {},
        });
      }
      throw err;
    }
    let parsed: Partial<CacheFile>;
    try {
      parsed = JSON.parse(text) as Partial<CacheFile>;
    } catch (err) {
      throw new Error(`${path}: not a reference cache (invalid JSON: ${(err as Error).message})`);
    }
    if (parsed.format !== CACHE_FORMAT) {
      throw new Error(
        `${path}: not a reference cache (format is ${JSON.stringify(parsed.format)}, expected '${CACHE_FORMAT}')`,
      );
    }
    if (parsed.version !== CACHE_VERSION) {
      throw new Error(
        `${path}: reference cache version ${parsed.version} is not supported (expected ${CACHE_VERSION}); delete it to recompute`,
      );
    }
    if (parsed.reference !== reference) {
      // the reference changed (retrained, or another model): its numbers can never be used
      if (options.replaceOther) return fresh();
      throw new Error(
        `${path}: reference cache was computed for '${parsed.reference}', not '${reference}'; use another path or delete it to recompute`,
      );
    }
    return new RefLogpCache(path, {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      reference,
      entries: parsed.entries ?? {},
      cross: parsed.cross ?? {},
    });
  }

  get(key: string): RefLogpEntry | undefined {
    return this.file.entries[key];
  }

  /** Like `get`, but a miss is an error: the cache is stale for this dataset. */
  require(key: string, what = 'example'): RefLogpEntry {
    const e = this.file.entries[key];
    if (!e) {
      throw new Error(
        `${this.path}: stale reference cache: no entry for ${what} (key ${key.slice(0, 12)}…); run precompute-ref again`,
      );
    }
    return e;
  }

  set(key: string, entry: RefLogpEntry): void {
    for (const [k, v] of Object.entries(entry)) {
      if (v !== undefined && !Number.isFinite(v))
        throw new Error(`reference cache: ${k} is not finite (${v})`);
    }
    this.file.entries[key] = { ...entry };
    this.dirty = true;
  }

  getCross(key: string): number[][] | undefined {
    return this.file.cross[key];
  }

  setCross(key: string, matrix: number[][]): void {
    this.file.cross[key] = matrix.map((r) => [...r]);
    this.dirty = true;
  }

  /** Writes the cache atomically if anything changed. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    await writeFileAtomic(this.path, JSON.stringify(this.file));
    this.dirty = false;
  }
}
