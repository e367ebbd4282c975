import * as tf from '@tensorflow/tfjs-core';
import { patchWasmKernels } from './wasm-kernels.js';
import {
  nodeCores,
  parseWasmThreads,
  prepareWasmThreads,
  wasmThreadCount,
} from './wasm-threads.js';

/** The TensorFlow.js backends alignjs knows how to start, in order of preference. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** One backend that was tried and not used. */
export interface SkippedBackend {
  backend: BackendName;
  /** npm package that provides it */
  module: string;
  reason: string;
}

export interface BackendInfo {
  /** the active backend */
  backend: BackendName;
  /** the package that provided it */
  module: string;
  /** why this one: `forced by ALIGNJS_BACKEND=…`, `forced by options.backend`, or `first available` */
  reason: string;
  /** the candidates tried before it, and why each was skipped */
  skipped: SkippedBackend[];
  /** for wasm: which binary runs (SIMD, threads) and XNNPACK's thread count */
  wasm?: { simd: boolean; threads: boolean; threadCount: number };
}

export interface InitBackendOptions {
  /** force one backend (wins over `ALIGNJS_BACKEND`) */
  backend?: BackendName;
  /** environment to read `ALIGNJS_BACKEND` from; defaults to `process.env` */
  env?: Record<string, string | undefined>;
  /** directory (or URL prefix, ending in `/`) holding the `.wasm` binaries; resolved from the installed package in Node */
  wasmPath?: string;
  /**
   * Backend packages already imported, by package name — what a bundled page passes, since a
   * bundler cannot follow the variable `import()` used otherwise:
   * `initBackend({ modules: { '@tensorflow/tfjs-backend-wasm': await import('@tensorflow/tfjs-backend-wasm') }, wasmPath: '/wasm/' })`.
   * Candidates not given here are imported by name (Node) or skipped (browser).
   */
  modules?: Record<string, unknown>;
  /**
   * XNNPACK threads on wasm (1–8, or `'auto'` = the logical cores); wins over
   * `ALIGNJS_WASM_THREADS`. Default 1 in Node (tfjs turns wasm threads off there; alignjs
   * starts the threaded SIMD build itself when asked), tfjs's own choice in a browser. Fixed
   * at the backend's first start in a process.
   */
  wasmThreads?: number | 'auto';
  /** module loader; tests replace it to simulate missing packages */
  importModule?: (specifier: string) => Promise<unknown>;
}

interface Candidate {
  backend: BackendName;
  module: string;
}

const CANDIDATES: readonly Candidate[] = [
  { backend: 'tensorflow', module: '@tensorflow/tfjs-node-gpu' },
  { backend: 'tensorflow', module: '@tensorflow/tfjs-node' },
  { backend: 'wasm', module: '@tensorflow/tfjs-backend-wasm' },
  { backend: 'cpu', module: '@tensorflow/tfjs-backend-cpu' },
];

const defaultImport = (specifier: string): Promise<unknown> => import(/* @vite-ignore */ specifier);

function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node != null;
}

function describeLoadError(module: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') {
    return `${module} is not installed (npm install ${module})`;
  }
  const msg = e?.message ?? String(err);
  return `${module} failed to load: ${msg.split('\n')[0]}`;
}

/**
 * The `.wasm` binaries' directory of the installed package, in Node (tfjs would otherwise
 * look next to the running script). No `node:` imports: `import.meta.resolve` finds the
 * package, so this module stays browser-safe; in a browser, pass `wasmPath`.
 */
async function resolveWasmDir(): Promise<string | undefined> {
  if (!isNode()) return undefined;
  const resolve = (import.meta as { resolve?: (s: string) => string }).resolve;
  if (!resolve) return undefined;
  let main: string;
  try {
    main = resolve('@tensorflow/tfjs-backend-wasm');
  } catch {
    return undefined;
  }
  // …/tfjs-backend-wasm/dist/index.js (or dist/tf-backend-wasm.node.js): the binaries sit in dist/
  const url = new URL('./', main);
  return decodeURIComponent(url.pathname);
}

/** The wasm backend package (already loaded: the import is cached). */
async function wasmModule(
  c: Candidate,
  load: (s: string) => Promise<unknown>,
  modules: Record<string, unknown> | undefined,
): Promise<unknown> {
  return modules?.[c.module] ?? load(c.module);
}

type WasmModule = { setWasmPaths?: (prefix: string) => void };

async function tryCandidate(
  c: Candidate,
  load: (s: string) => Promise<unknown>,
  wasmPath: string | undefined,
  modules: Record<string, unknown> | undefined,
  wasmThreads: number | undefined,
): Promise<string | undefined> {
  let mod: unknown = modules?.[c.module];
  if (mod === undefined) {
    if (!isNode() && c.backend === 'tensorflow') return 'tfjs-node runs only in Node';
    try {
      mod = await load(c.module);
    } catch (err) {
      const why = describeLoadError(c.module, err);
      return isNode()
        ? why
        : `${why}; in a bundled page pass the imported module: initBackend({ modules: { '${c.module}': await import('${c.module}') } })`;
    }
  }
  let started = () => {};
  if (c.backend === 'wasm') {
    const dir = wasmPath ?? (await resolveWasmDir());
    const setWasmPaths = (mod as WasmModule).setWasmPaths;
    if (dir && setWasmPaths) setWasmPaths(dir);
    if (wasmThreads !== undefined && !tf.engine().registry.wasm)
      started = prepareWasmThreads(mod, wasmThreads, isNode() ? await resolveWasmDir() : dir);
  }
  if (tf.findBackendFactory(c.backend) == null) {
    return `${c.module} loaded but registered no '${c.backend}' backend`;
  }
  let ok = false;
  let failure = '';
  try {
    ok = await tf.setBackend(c.backend);
  } catch (err) {
    failure = (err as Error)?.message ?? String(err);
  } finally {
    started();
  }
  if (ok && c.backend === 'wasm' && wasmThreads !== undefined) {
    const got = wasmThreadCount(mod);
    if (got !== wasmThreads)
      throw new Error(
        `the wasm backend runs ${got} thread(s), not the ${wasmThreads} asked for: threads are fixed when it first starts in a process${got === 1 ? ' (or this runtime has no wasm threads: a browser page must be cross-origin isolated)' : ''}`,
      );
  }
  if (!ok && !failure) {
    // tf.setBackend resolves false and only logs the cause: ask the factory for it.
    try {
      await tf.findBackendFactory(c.backend)?.();
    } catch (err) {
      failure = (err as Error)?.message ?? String(err);
    }
  }
  if (!ok)
    return `${c.module} is installed but the '${c.backend}' backend failed to start${failure ? `: ${failure}` : ''}${c.backend === 'wasm' && !isNode() && !wasmPath ? ' (no wasmPath given: tfjs fetched the .wasm files next to the page; serve them and pass wasmPath)' : ''}`;
  await tf.ready();
  return undefined;
}

/**
 * Starts the best available TensorFlow.js backend and says why.
 *
 * Order: `tensorflow` from `@tensorflow/tfjs-node-gpu`, then from `@tensorflow/tfjs-node`,
 * then `wasm` (binaries resolved from the installed package; SIMD where the runtime has it;
 * threads as `wasmThreads` / `ALIGNJS_WASM_THREADS` ask), then `cpu`. `options.backend` or the environment
 * variable `ALIGNJS_BACKEND=tensorflow|wasm|cpu` forces one; a forced backend that cannot
 * start is an error that says why.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = options.env ?? (isNode() ? process.env : {});
  const fromEnv = env.ALIGNJS_BACKEND?.trim();
  const forced = options.backend ?? (fromEnv ? fromEnv : undefined);
  if (forced !== undefined && !BACKEND_NAMES.includes(forced as BackendName)) {
    const source = options.backend !== undefined ? 'options.backend' : 'ALIGNJS_BACKEND';
    throw new Error(
      `${source}='${forced}' is not a backend alignjs knows; use one of ${BACKEND_NAMES.join(', ')}`,
    );
  }
  const load = options.importModule ?? defaultImport;
  const threadsRaw = options.wasmThreads ?? env.ALIGNJS_WASM_THREADS?.trim();
  const wasmThreads =
    threadsRaw === undefined || threadsRaw === ''
      ? undefined
      : parseWasmThreads(
          threadsRaw,
          options.wasmThreads !== undefined ? 'options.wasmThreads' : 'ALIGNJS_WASM_THREADS',
          nodeCores(),
        );
  const candidates = forced ? CANDIDATES.filter((c) => c.backend === forced) : CANDIDATES;
  const skipped: SkippedBackend[] = [];
  for (const c of candidates) {
    const failure = await tryCandidate(c, load, options.wasmPath, options.modules, wasmThreads);
    if (failure !== undefined) {
      skipped.push({ backend: c.backend, module: c.module, reason: failure });
      continue;
    }
    const reason = forced
      ? options.backend !== undefined
        ? `forced by options.backend='${forced}'`
        : `forced by ALIGNJS_BACKEND=${forced}`
      : 'first available';
    const info: BackendInfo = { backend: c.backend, module: c.module, reason, skipped };
    if (c.backend === 'wasm') {
      patchWasmKernels();
      info.wasm = {
        simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')),
        threads: Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
        threadCount: wasmThreadCount(await wasmModule(c, load, options.modules)),
      };
    }
    return info;
  }
  const why = skipped.map((s) => `  - ${s.module}: ${s.reason}`).join('\n');
  throw new Error(
    forced
      ? `backend '${forced}' was requested but cannot start:\n${why}`
      : `no TensorFlow.js backend could start:\n${why}\ninstall @tensorflow/tfjs-backend-cpu at least`,
  );
}
