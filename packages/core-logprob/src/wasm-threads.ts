/**
 * tfjs-backend-wasm's threaded SIMD build in Node, where tfjs turns it off
 * (tensorflow/tfjs#3830): its pthread workers are loaded from `blob:` URLs, which Node's
 * `worker_threads` cannot open, and XNNPACK is capped at half the logical cores. This starts
 * the same build with the worker script evaluated from the installed package and the cap
 * lifted, without touching node_modules. Browser-safe module: Node built-ins come from
 * `process.getBuiltinModule` (Node ≥ 20.16), never from a `node:` import.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Workers tfjs-backend-wasm's threaded build creates up front; more would deadlock at start. */
export const WASM_MAX_THREADS = 8;

type Builtin = (name: string) => unknown;

interface WasmThreadsModule {
  setThreadsCount?: (n: number) => void;
}

interface NodeWorkerCtor {
  new (file: string | URL, options?: Record<string, unknown>): { unref(): void };
}

let installedFor: string | undefined;

/** Makes Node's `Worker` open tfjs's `blob:` worker URL as the package's worker script. */
function installWorkerShim(builtin: Builtin, wasmDir: string): void {
  if (installedFor === wasmDir) return;
  const { createRequire } = builtin('module') as {
    createRequire(p: string): ((id: string) => unknown) & { resolve(id: string): string };
  };
  const req = createRequire(`${wasmDir}index.js`);
  const workerFile = req.resolve('../wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
  const mainScript = req.resolve('../wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = req(workerFile) as { wasmWorkerContents: string };
  // As tfjs does before making its blob (its template literal turned "\n" escapes into
  // newlines); then the worker's importScripts of the main script reads the file itself.
  const code = `${wasmWorkerContents.replace(/\n/g, '\\n')}
;global.importScripts=function(){(0,eval)(require("fs").readFileSync(${JSON.stringify(mainScript)},"utf8"))};`;
  const { Worker: NodeWorker } = builtin('worker_threads') as { Worker: NodeWorkerCtor };
  class TfjsWorker extends NodeWorker {
    constructor(file: string | URL, options?: Record<string, unknown>) {
      if (typeof file === 'string' && file.startsWith('blob:'))
        // execArgv []: a loader the parent runs under (tsx, vitest) must not load tfjs's worker
        super(code, { ...options, eval: true, execArgv: [] });
      else super(file, options);
    }
  }
  // Emscripten assigns `global.Worker = worker_threads.Worker` when its factory runs;
  // the accessor hands back the shim for that class and keeps anything else as set.
  let current: unknown = (globalThis as { Worker?: unknown }).Worker;
  Object.defineProperty(globalThis, 'Worker', {
    configurable: true,
    get: () => (current === NodeWorker || current === undefined ? TfjsWorker : current),
    set: (v) => {
      current = v;
    },
  });
  installedFor = wasmDir;
}

/** `ALIGNJS_WASM_THREADS` / `wasmThreads` as a thread count (`auto` = the logical cores, ≤ 8). */
export function parseWasmThreads(value: string | number, source: string, cores: number): number {
  const n = value === 'auto' ? Math.min(WASM_MAX_THREADS, Math.max(1, cores)) : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > WASM_MAX_THREADS)
    throw new Error(
      `${source}=${JSON.stringify(value)}: wasm threads must be an integer from 1 to ${WASM_MAX_THREADS} (tfjs-backend-wasm's worker pool) or 'auto'`,
    );
  return n;
}

/** The logical cores Node reports, or 1. */
export function nodeCores(): number {
  const builtin = nodeBuiltin();
  const os = builtin?.('os') as { availableParallelism?: () => number } | undefined;
  return os?.availableParallelism?.() ?? 1;
}

function nodeBuiltin(): Builtin | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: Builtin } }).process;
  return p?.getBuiltinModule?.bind(p);
}

/**
 * Prepares the wasm backend's start for `threads` XNNPACK threads: in Node, the threaded
 * build through the worker shim; in a browser, tfjs's own threads (cross-origin isolated
 * pages only). Returns a function to call once the backend has started.
 */
export function prepareWasmThreads(
  mod: unknown,
  threads: number,
  wasmDir: string | undefined,
): () => void {
  const m = mod as WasmThreadsModule;
  m.setThreadsCount?.(threads);
  const builtin = nodeBuiltin();
  if (threads === 1 || !builtin) return () => {};
  if (!wasmDir) throw new Error('wasm threads in Node need the installed tfjs-backend-wasm files');
  installWorkerShim(builtin, wasmDir);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  // XNNPACK takes min(threads, logical cores / 2): report twice the threads while it starts.
  const os = builtin('os') as { cpus: () => unknown[] };
  const cpus = os.cpus;
  os.cpus = () => Array.from({ length: 2 * threads }, () => cpus()[0]);
  return () => {
    os.cpus = cpus;
    // Idle pthread workers must not keep the process alive (emscripten unrefs only the pool).
    const w = (tf.backend() as { wasm?: { PThread?: { runningWorkers: { unref(): void }[] } } })
      .wasm;
    for (const worker of w?.PThread?.runningWorkers ?? []) worker.unref();
  };
}

/** XNNPACK threads of the running wasm backend (1 for the single-threaded builds). */
export function wasmThreadCount(mod: unknown): number {
  const get = (mod as { getThreadsCount?: () => number }).getThreadsCount;
  try {
    return get?.() ?? 1;
  } catch {
    return 1;
  }
}
