/**
 * Where a model's files come from, without a file system: a Hugging Face model directory
 * served over HTTP (`urlSource`), or files already in memory (`memorySource`, e.g. from
 * `fetch`, a file input or IndexedDB). Node's directories are `dirSource` in
 * `@alignjs/models/node`. Every reader names the file in its errors.
 */

export interface ModelSource {
  /** how errors name the source: a directory, a URL prefix, `memory` */
  readonly name: string;
  /** the path errors use for `file` */
  where(file: string): string;
  /** the file's bytes, or undefined if it does not exist */
  read(file: string): Promise<Uint8Array | undefined>;
  /** bytes [begin, end) of an existing file (sources may read the whole file once) */
  readRange(file: string, begin: number, end: number): Promise<Uint8Array>;
  /** the file's size in bytes, or undefined if it does not exist */
  size(file: string): Promise<number | undefined>;
  /** names of the files under `dir` (empty where the source cannot list, as over HTTP) */
  list(dir: string): Promise<string[]>;
}

const utf8 = new TextDecoder();

/** A text file, or undefined when absent. */
export async function readText(src: ModelSource, file: string): Promise<string | undefined> {
  const b = await src.read(file);
  return b === undefined ? undefined : utf8.decode(b);
}

/** A JSON file: `undefined` when absent and not required; errors name the file. */
export async function readJson(
  src: ModelSource,
  file: string,
  required = true,
): Promise<unknown | undefined> {
  const text = await readText(src, file);
  if (text === undefined) {
    if (required) throw new Error(`${src.where(file)}: not found`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${src.where(file)}: not valid JSON (${(err as Error).message})`);
  }
}

/** Files in memory by name (`config.json`, `model.safetensors`, …): bytes, ArrayBuffers or text. */
export function memorySource(
  files: Record<string, Uint8Array | ArrayBuffer | string>,
  name = 'memory',
): ModelSource {
  const bytes = new Map<string, Uint8Array>();
  const enc = new TextEncoder();
  for (const [f, v] of Object.entries(files))
    bytes.set(
      f,
      typeof v === 'string' ? enc.encode(v) : v instanceof Uint8Array ? v : new Uint8Array(v),
    );
  return {
    name,
    where: (f) => `${name}:${f}`,
    read: async (f) => bytes.get(f),
    readRange: async (f, b, e) => {
      const v = bytes.get(f);
      if (!v) throw new Error(`${name}:${f}: not found`);
      return v.subarray(b, e);
    },
    size: async (f) => bytes.get(f)?.byteLength,
    list: async (dir) =>
      [...bytes.keys()]
        .filter((f) => f.startsWith(`${dir}/`) && !f.slice(dir.length + 1).includes('/'))
        .map((f) => f.slice(dir.length + 1)),
  };
}

/**
 * A model directory served over HTTP (`base` ends with `/` or gets one): each file is fetched
 * once and kept until the source is dropped. 404 means absent (so does an HTML page where a
 * model file was asked for: a dev server's fallback); any other failure is an error naming
 * the URL and status.
 */
export function urlSource(base: string | URL, options: { fetch?: typeof fetch } = {}): ModelSource {
  const root = String(base).endsWith('/') ? String(base) : `${String(base)}/`;
  const get = options.fetch ?? globalThis.fetch;
  if (!get) throw new Error('urlSource: no fetch in this runtime; pass options.fetch');
  const cache = new Map<string, Promise<Uint8Array | undefined>>();
  const read = (f: string) => {
    let p = cache.get(f);
    if (!p) {
      const url = new URL(f, root).href;
      p = get(url).then(
        async (r) => {
          if (r.status === 404) return undefined;
          if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${r.statusText}`);
          // A dev server's single-page fallback answers every unknown path with index.html:
          // no model file is HTML, so that is an absent file, not its content.
          if (!f.endsWith('.html') && /^text\/html/i.test(r.headers.get('content-type') ?? ''))
            return undefined;
          return new Uint8Array(await r.arrayBuffer());
        },
        (err: Error) => {
          throw new Error(`${url}: fetch failed (${err.message})`);
        },
      );
      cache.set(f, p);
    }
    return p;
  };
  return {
    name: root,
    where: (f) => new URL(f, root).href,
    read,
    readRange: async (f, b, e) => {
      const v = await read(f);
      if (!v) throw new Error(`${new URL(f, root).href}: not found`);
      return v.subarray(b, e);
    },
    size: async (f) => (await read(f))?.byteLength,
    list: async () => [],
  };
}
