import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';

const notFound = (spec: string) =>
  Object.assign(new Error(`Cannot find package '${spec}'`), { code: 'ERR_MODULE_NOT_FOUND' });

/** A module loader where the listed packages are "not installed". */
const without =
  (...missing: string[]) =>
  (spec: string): Promise<unknown> =>
    missing.includes(spec) ? Promise.reject(notFound(spec)) : import(spec);

describe('initBackend', () => {
  it('falls back tensorflow-gpu → tensorflow → wasm and says why', async () => {
    const info = await initBackend({
      env: {},
      importModule: without('@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'),
    });
    expect(info.backend).toBe('wasm');
    expect(info.reason).toBe('first available');
    expect(info.skipped.map((s) => s.module)).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
    ]);
    expect(info.skipped[0]!.reason).toMatch(
      /not installed \(npm install @tensorflow\/tfjs-node-gpu\)/,
    );
    expect(info.wasm).toBeDefined();
    expect(info.wasm!.threads).toBe(false);
  });

  it('falls back to cpu when wasm is missing too', async () => {
    const info = await initBackend({
      env: {},
      importModule: without(
        '@tensorflow/tfjs-node-gpu',
        '@tensorflow/tfjs-node',
        '@tensorflow/tfjs-backend-wasm',
      ),
    });
    expect(info.backend).toBe('cpu');
    expect(info.skipped.map((s) => s.backend)).toEqual(['tensorflow', 'tensorflow', 'wasm']);
  });

  it('reports a module that is installed but broken', async () => {
    const info = await initBackend({
      env: {},
      importModule: (spec) =>
        spec === '@tensorflow/tfjs-node-gpu'
          ? Promise.reject(new Error('libcudart.so.11.0: cannot open shared object file'))
          : without('@tensorflow/tfjs-node')(spec),
    });
    expect(info.skipped[0]!.reason).toMatch(/failed to load: libcudart/);
  });

  it('honours ALIGNJS_BACKEND and options.backend', async () => {
    const fromEnv = await initBackend({ env: { ALIGNJS_BACKEND: 'cpu' } });
    expect(fromEnv.backend).toBe('cpu');
    expect(fromEnv.reason).toBe('forced by ALIGNJS_BACKEND=cpu');
    expect(fromEnv.skipped).toEqual([]);
    const fromOption = await initBackend({ backend: 'wasm', env: { ALIGNJS_BACKEND: 'cpu' } });
    expect(fromOption.backend).toBe('wasm');
    expect(fromOption.reason).toMatch(/options.backend/);
  });

  it('a forced backend that cannot load is a clear error', async () => {
    await expect(
      initBackend({
        env: { ALIGNJS_BACKEND: 'tensorflow' },
        importModule: without('@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'),
      }),
    ).rejects.toThrow(
      /backend 'tensorflow' was requested but cannot start:[\s\S]*tfjs-node-gpu is not installed[\s\S]*tfjs-node is not installed/,
    );
    await expect(initBackend({ env: { ALIGNJS_BACKEND: 'webgpu' } })).rejects.toThrow(
      /ALIGNJS_BACKEND='webgpu' is not a backend alignjs knows; use one of tensorflow, wasm, cpu/,
    );
  });

  it('with every module missing, says so', async () => {
    await expect(
      initBackend({
        env: {},
        importModule: (spec) => Promise.reject(notFound(spec)),
      }),
    ).rejects.toThrow(/no TensorFlow.js backend could start/);
  });
});

afterAll(async () => {
  await initBackend();
});
