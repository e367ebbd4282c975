/**
 * tfjs-backend-wasm's threaded SIMD build in Node (`ALIGNJS_WASM_THREADS` /
 * `initBackend({ wasmThreads })`): each run is a fresh process (threads are fixed at the
 * backend's first start), which must start the asked-for threads, compute what the
 * single-threaded build computes, and exit on its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const url = (p: string) => pathToFileURL(require.resolve(p)).href;

/** A forward and backward pass through matmuls big enough for XNNPACK to split them. */
const CHILD = `
import { initBackend } from '${url('@alignjs/core-logprob')}';
import * as tf from '${url('@tensorflow/tfjs-core')}';
const info = await initBackend({ backend: 'wasm' });
const x = tf.randomUniform([192, 256], -1, 1, 'float32', 1);
const w = tf.randomUniform([256, 320], -0.1, 0.1, 'float32', 2);
const f = (w) => tf.sum(tf.mul(tf.logSoftmax(tf.matMul(tf.tanh(tf.matMul(x, w)), w, false, true)), 0.01));
const { value, grad } = tf.valueAndGrad(f)(w);
const g = grad.dataSync();
console.log(JSON.stringify({ wasm: info.wasm, value: value.dataSync()[0], grad: Array.from(g.slice(0, 64)), gradSum: g.reduce((a, b) => a + Math.abs(b), 0) }));
`;

function run(threads: string | undefined): {
  status: number | null;
  out: Record<string, unknown>;
  stderr: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'alignjs-threads-'));
  const file = join(dir, 'child.mjs');
  writeFileSync(file, CHILD);
  const env = { ...process.env, ALIGNJS_WASM_THREADS: threads ?? '' };
  const r = spawnSync(process.execPath, [file], { env, encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').at(-1) ?? '{}';
  return {
    status: r.status,
    out: JSON.parse(last.startsWith('{') ? last : '{}'),
    stderr: r.stderr,
  };
}

describe('wasm threads in Node', () => {
  it('two threads start, equal one thread’s numbers, and the process exits by itself', () => {
    const one = run('1');
    const two = run('2');
    // spawnSync's timeout kills a process that hangs on live workers: status null
    expect(one.status, one.stderr).toBe(0);
    expect(two.status, two.stderr).toBe(0);
    expect(one.out.wasm).toEqual({ simd: true, threads: false, threadCount: 1 });
    expect(two.out.wasm).toEqual({ simd: true, threads: true, threadCount: 2 });
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
    expect(rel(two.out.value as number, one.out.value as number)).toBeLessThan(1e-6);
    expect(rel(two.out.gradSum as number, one.out.gradSum as number)).toBeLessThan(1e-6);
    const [g1, g2] = [one.out.grad as number[], two.out.grad as number[]];
    expect(g2.length).toBe(64);
    for (const [i, v] of g2.entries()) expect(Math.abs(v - g1[i]!)).toBeLessThan(1e-6);
  }, 120_000);

  it('bad thread counts are errors that name the setting', () => {
    const r = run('0');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /ALIGNJS_WASM_THREADS="0": wasm threads must be an integer from 1 to 8/,
    );
    return expect(initBackend({ backend: 'wasm', wasmThreads: 1.5 })).rejects.toThrow(
      /options\.wasmThreads=1\.5/,
    );
  }, 60_000);

  it('a started backend keeps its threads: asking for others is an error, not ignored', async () => {
    const before = tf.getBackend();
    await initBackend({ backend: 'wasm' }); // single-threaded (no setting), if not yet started
    await expect(initBackend({ backend: 'wasm', wasmThreads: 2 })).rejects.toThrow(
      /runs 1 thread\(s\), not the 2 asked for: threads are fixed when it first starts/,
    );
    await expect(initBackend({ backend: 'wasm', wasmThreads: 1 })).resolves.toMatchObject({
      backend: 'wasm',
    });
    await tf.setBackend(before);
  });
});
