/**
 * The root entry of every browser-facing package bundles for the browser: esbuild with
 * `platform: 'browser'` resolves it with no Node built-in anywhere in its import graph
 * (an import of `fs`, `node:path`, … fails the bundle, naming the file that imports it). The Node-only I/O
 * lives under `/node` (`@alignjs/models/node`, `@alignjs/trainer/node`, `@alignjs/eval/node`)
 * and `@alignjs/core-logprob/cache`; only `@alignjs/cli`, the command-line program, is Node-only.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const BROWSER = [
  'core-logprob',
  'models',
  'report',
  'trainer',
  'eval',
  'loss-dpo',
  'loss-una',
  'loss-rao',
  'loss-unidpo',
  'loss-var',
  'loss-pro',
];

async function bundle(entry: string) {
  const r = await build({
    stdin: { contents: `export * from '${entry}';`, resolveDir: root, loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    // tfjs is the user's peer dependency; its own browser builds are not under test here
    external: ['@tensorflow/*'],
  });
  return Object.keys(r.metafile.inputs);
}

describe('browser entries', () => {
  it.each(BROWSER)('@alignjs/%s bundles for the browser with no node: import', async (p) => {
    const inputs = await bundle(`@alignjs/${p}`);
    expect(inputs.some((f) => f.includes(`packages/${p}/dist/`))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('node:'))).toEqual([]);
  });

  it('the check can fail: @alignjs/models/node does not bundle for the browser', async () => {
    const err = await bundle('@alignjs/models/node').then(
      () => undefined,
      (e: { errors?: { text: string }[] }) => e,
    );
    expect(err?.errors?.map((e) => e.text).join('\n')).toMatch(
      /Could not resolve "(node:)?(fs|path|url|crypto)/,
    );
  });
});
