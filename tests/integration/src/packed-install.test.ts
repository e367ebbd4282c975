/**
 * The published shape, as users install it: every package is `npm pack`ed, and fresh consumer
 * projects outside the workspace install a subset from the tarballs (tfjs from the registry
 * or npm's cache):
 * 1. only `@alignjs/loss-rao` (+ the core it depends on) with tfjs-core and the wasm backend:
 *    ESM code takes the gradient of RAO's loss, and `tsc` type-checks a TypeScript consumer;
 *    no trainer, models or other loss comes along, and tfjs stays a single peer copy;
 * 2. `@alignjs/trainer` with `@alignjs/loss-dpo`: two DPO steps of the Trainer on the built-in
 *    tiny model (its files ship in the models tarball).
 * Every package passes `publint --strict`. And `changeset status` on a sample changeset releases only the package it names and its
 * dependents.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['core-logprob', 'models', 'report', 'trainer', 'loss-dpo', 'loss-rao'];
let tgz = '';
// the consumers install the wasm backend only: their processes use it whatever this run uses
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, {
    env: { ...process.env, ALIGNJS_BACKEND: 'wasm' },
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 180_000,
  });
const tarball = (p: string) => join(tgz, `alignjs-${p}-0.1.0.tgz`);

beforeAll(async () => {
  tgz = await mkdtemp(join(tmpdir(), 'alignjs-pack-'));
  run(
    'npm',
    [
      'pack',
      ...PACKAGES.flatMap((p) => ['-w', `@alignjs/${p}`]),
      '--pack-destination',
      tgz,
      '--silent',
    ],
    root,
  );
}, 180_000);

async function consumer(deps: string[], files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'alignjs-consumer-'));
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...deps], dir);
  return dir;
}

const TFJS = ['@tensorflow/tfjs-core@4.22.0', '@tensorflow/tfjs-backend-wasm@4.22.0'];

const RAO_JS = `import { initBackend } from '@alignjs/core-logprob';
import { raoObjective } from '@alignjs/loss-rao';
import * as tf from '@tensorflow/tfjs-core';
await initBackend({ backend: 'wasm' });
const cfg = raoObjective.parseConfig({});
const policy = tf.variable(tf.tensor2d([[-4, -6], [-5, -3]]));
const inputs = (p) => ({
  kind: 'multi', policyLogps: p, refLogps: tf.tensor2d([[-4.5, -5.5], [-5, -3.5]]),
  lengths: tf.tensor2d([[3, 4], [2, 5]]), scores: tf.tensor2d([[1, -1], [0.5, 0]]),
  mask: tf.ones([2, 2]), policyPromptLogps: tf.tensor1d([-2, -3]), refPromptLogps: tf.tensor1d([-2.5, -3]),
});
const { value, grads } = tf.variableGrads(() => raoObjective.loss(inputs(policy), cfg).loss, [policy]);
const g = Array.from(grads[policy.name].dataSync());
console.log(JSON.stringify({ loss: value.dataSync()[0], grad: g }));
`;
const RAO_TS = `import type { MultiInputs } from '@alignjs/core-logprob';
import { type RaoConfig, raoObjective } from '@alignjs/loss-rao';
const cfg: Readonly<RaoConfig> = raoObjective.parseConfig({});
export const needs: boolean = raoObjective.needs(cfg).promptLogps;
export type K = MultiInputs['kind'];
`;

describe('packed packages installed selectively', () => {
  it('only @alignjs/loss-rao: a loss with gradients (ESM), a type-checked TS consumer, nothing extra', async () => {
    const dir = await consumer([tarball('core-logprob'), tarball('loss-rao'), ...TFJS], {
      'index.mjs': RAO_JS,
      'index.ts': RAO_TS,
      'tsconfig.json': JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['index.ts'],
      }),
    });
    const out = JSON.parse(run('node', ['index.mjs'], dir).trim().split('\n').at(-1)!);
    expect(Number.isFinite(out.loss)).toBe(true);
    expect(out.grad.every(Number.isFinite)).toBe(true);
    expect(out.grad.some((v: number) => v !== 0)).toBe(true);
    // skipLibCheck: tfjs-core's own declarations need @types/long; ours are checked through use
    run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], dir);
    await writeFile(
      join(dir, 'bad.ts'),
      "import { notExported } from '@alignjs/loss-rao';\nexport { notExported };\n",
    );
    await writeFile(
      join(dir, 'tsconfig.bad.json'),
      JSON.stringify({ extends: './tsconfig.json', files: ['bad.ts'] }),
    );
    expect(() =>
      run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.bad.json'], dir),
    ).toThrow();
    expect(readdirSync(join(dir, 'node_modules/@alignjs')).sort()).toEqual([
      'core-logprob',
      'loss-rao',
    ]);
    // tfjs is a peer: one copy, the consumer's, none nested under our packages
    for (const p of ['core-logprob', 'loss-rao'])
      expect(existsSync(join(dir, `node_modules/@alignjs/${p}/node_modules/@tensorflow`))).toBe(
        false,
      );
  }, 300_000);

  it('@alignjs/trainer with @alignjs/loss-dpo: two DPO steps of the Trainer on the tiny model', async () => {
    const data = [
      {
        prompt: 'Tell me about the cat.',
        chosen: ' The cat is kind.',
        rejected: ' The cat is rough.',
      },
      { prompt: 'Describe the dog.', chosen: ' The dog is happy.', rejected: ' The dog is sad.' },
    ];
    const dir = await consumer(
      [...['core-logprob', 'models', 'report', 'trainer', 'loss-dpo'].map(tarball), ...TFJS],
      {
        'train.jsonl': data.map((d) => JSON.stringify(d)).join('\n'),
        'index.mjs': `import { dpoObjective } from '@alignjs/loss-dpo';
import { makeLogger, parseTrainConfig, Trainer } from '@alignjs/trainer/node';
const config = parseTrainConfig({ train: 'train.jsonl', output: 'run', objective: dpoObjective, maxSteps: 2, batchSize: 2, learningRate: 1e-3 });
const t = new Trainer(config, { logger: makeLogger('run/metrics.jsonl', 'quiet') });
const r = await t.train();
t.dispose();
console.log(JSON.stringify(r.history.map((h) => h.loss)));
`,
      },
    );
    const losses = JSON.parse(run('node', ['index.mjs'], dir).trim().split('\n').at(-1)!);
    expect(losses.length).toBe(2);
    expect(losses[0]).toBeCloseTo(Math.log(2), 5);
    expect(existsSync(join(dir, 'run/final/model.safetensors'))).toBe(true);
    expect(readdirSync(join(dir, 'node_modules/@alignjs')).sort()).toEqual([
      'core-logprob',
      'loss-dpo',
      'models',
      'report',
      'trainer',
    ]);
  }, 300_000);
});

describe('publint', () => {
  const published = readdirSync(join(root, 'packages')).filter((p) =>
    existsSync(join(root, 'packages', p, 'package.json')),
  );
  it.each(published)('@alignjs/%s: exports, types and files as publint --strict wants', (p) => {
    const out = run(
      join(root, 'node_modules/.bin/publint'),
      ['--strict', join(root, 'packages', p)],
      root,
    );
    expect(out).toContain('All good');
  });
});

describe('changesets', () => {
  it('a sample changeset releases the package it names and its dependents only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-changeset-'));
    await writeFile(join(dir, 'package.json'), await readFile(join(root, 'package.json')));
    await mkdir(join(dir, '.changeset'));
    await cp(join(root, '.changeset/config.json'), join(dir, '.changeset/config.json'));
    for (const group of ['packages', 'tests', 'examples'])
      for (const p of readdirSync(join(root, group))) {
        if (!existsSync(join(root, group, p, 'package.json'))) continue;
        await mkdir(join(dir, group, p), { recursive: true });
        await cp(join(root, group, p, 'package.json'), join(dir, group, p, 'package.json'));
      }
    await writeFile(
      join(dir, '.changeset/sample.md'),
      '---\n"@alignjs/loss-rao": minor\n---\n\nA sample change.\n',
    );
    run('git', ['init', '-q', '-b', 'main'], dir);
    run('git', ['-c', 'user.email=ci@alignjs', '-c', 'user.name=ci', 'add', '.'], dir);
    run('git', ['-c', 'user.email=ci@alignjs', '-c', 'user.name=ci', 'commit', '-qm', 'x'], dir);
    run(join(root, 'node_modules/.bin/changeset'), ['status', '--output=status.json'], dir);
    const status = JSON.parse(await readFile(join(dir, 'status.json'), 'utf8')) as {
      releases: { name: string; type: string }[];
    };
    const released = Object.fromEntries(
      status.releases.filter((r) => r.type !== 'none').map((r) => [r.name, r.type]),
    );
    // loss-rao is named; the cli depends on it (patch, updateInternalDependencies); nothing else
    expect(released).toEqual({ '@alignjs/loss-rao': 'minor', '@alignjs/cli': 'patch' });
  }, 120_000);
});
