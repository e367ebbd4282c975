/** Runs that cannot go wrong quietly: resume checks, metrics without repeats, checkpoint hygiene, atomic final/. */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLogger, type TrainConfig, Trainer } from '@alignjs/trainer/node';
import { writeTestData } from '@alignjs/trainer/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseRunConfig } from './config-file.js';

const out = () => mkdtemp(join(tmpdir(), 'alignjs-runs-'));
const quiet = (c: TrainConfig) => makeLogger(join(c.output, 'metrics.jsonl'), 'quiet');
afterEach(() => vi.restoreAllMocks());

async function base() {
  const data = await writeTestData(8);
  return {
    data,
    cfg: {
      train: data.pairwise,
      objective: 'dpo',
      maxSteps: 4,
      batchSize: 2,
      learningRate: 1e-3,
      saveSteps: 2,
      seed: 5,
    },
  };
}
async function run(raw: Record<string, unknown>, resumeFrom?: string) {
  const cfg = parseRunConfig(raw);
  const t = new Trainer(cfg, { logger: quiet(cfg) });
  try {
    return await t.train({ resumeFrom });
  } finally {
    t.dispose();
  }
}
const steps = async (dir: string) =>
  (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.event === 'step')
    .map((l) => l.step as number);

describe('resume', () => {
  it('refuses a changed config field or changed data, naming it; accepts a changed logSteps', async () => {
    const { data, cfg } = await base();
    const a = await out();
    await run({ ...cfg, output: a });
    const ckpt = join(a, 'checkpoint-2');
    await expect(run({ ...cfg, learningRate: 5e-2, output: await out() }, ckpt)).rejects.toThrow(
      /checkpoint was made with learningRate = 0.001, this run has 0.05; a resume may change only logSteps/,
    );
    await expect(run({ ...cfg, objective: 'ipo', output: await out() }, ckpt)).rejects.toThrow(
      /made with objective = \{"name":"dpo","config":\{\}\}, this run has \{"name":"ipo"/,
    );
    await expect(
      run({ ...cfg, train: data.conversational, output: await out() }, ckpt),
    ).rejects.toThrow(/the training data differ from the checkpoint's/);
    const r = await run({ ...cfg, logSteps: 2, output: await out() }, ckpt);
    expect(r.steps).toBe(4);
  });

  it('after a resume in the same directory, metrics.jsonl has every step once', async () => {
    const { cfg } = await base();
    const a = await out();
    await run({ ...cfg, output: a });
    expect(await steps(a)).toEqual([1, 2, 3, 4]);
    // as if killed after step 4 and resumed from checkpoint-2
    await run({ ...cfg, output: a }, join(a, 'checkpoint-2'));
    expect(await steps(a)).toEqual([1, 2, 3, 4]);
  });
});

describe('checkpoints and final/', () => {
  it('saveTotalLimit keeps the newest; crashed temp folders go; checkpoints carry tokenizer files', async () => {
    const { cfg } = await base();
    const a = await out();
    await mkdir(join(a, 'checkpoint-9.tmp-999999999'), { recursive: true });
    await mkdir(join(a, 'final.tmp-999999998'), { recursive: true });
    await run({ ...cfg, saveSteps: 1, saveTotalLimit: 2, output: a });
    const names = (await readdir(a)).sort();
    expect(names.filter((n) => n.startsWith('checkpoint'))).toEqual([
      'checkpoint-3',
      'checkpoint-4',
    ]);
    expect(names.some((n) => n.includes('.tmp-'))).toBe(false);
    const files = await readdir(join(a, 'checkpoint-4'));
    for (const f of [
      'tokenizer.json',
      'tokenizer_config.json',
      'model.safetensors',
      'trainer_state.json',
    ])
      expect(files).toContain(f);
  });

  it('a failure while writing final/ leaves the previous final/ whole', async () => {
    const { cfg } = await base();
    const a = await out();
    await run({ ...cfg, output: a });
    const before = await readFile(join(a, 'final', 'model.safetensors'));
    const c = parseRunConfig({ ...cfg, maxSteps: 5, output: a });
    const t = new Trainer(c, { logger: quiet(c) });
    const inner = t as unknown as { saveModelFiles(dir: string): Promise<void> };
    const real = inner.saveModelFiles.bind(t);
    inner.saveModelFiles = async (dir: string) => {
      if (dir.includes('final.tmp-')) {
        await writeFile(join(dir, 'model.safetensors'), 'half');
        throw new Error('killed while writing final/');
      }
      return real(dir);
    };
    await expect(t.train()).rejects.toThrow(/killed while writing final/);
    t.dispose();
    expect(await readFile(join(a, 'final', 'model.safetensors'))).toEqual(before);
  });
});

describe('inputs and logs', () => {
  it('accepts a UTF-8 BOM; a config error leaves no output directory', async () => {
    const { data, cfg } = await base();
    const withBom = join(await out(), 'bom.jsonl');
    await writeFile(withBom, `\uFEFF${await readFile(data.pairwise, 'utf8')}`);
    const r = await run({ ...cfg, train: withBom, saveSteps: 0, maxSteps: 1, output: await out() });
    expect(r.steps).toBe(1);
    const never = join(await out(), 'never');
    await expect(
      run({ ...cfg, objective: { name: 'dpo', config: { beta: -1 } }, output: never }),
    ).rejects.toThrow(/beta/);
    await expect(readdir(never)).rejects.toThrow(/ENOENT/);
  });

  it('JSONL goes to stdout when stdout is not a terminal, even with a terminal on stderr', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      lines.push(String(s));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    try {
      const log = makeLogger(undefined);
      log.event({ event: 'x' });
    } finally {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else Object.defineProperty(process.stderr, 'isTTY', { value: undefined, configurable: true });
    }
    expect(lines.some((l) => JSON.parse(l).event === 'x')).toBe(true);
  });
});
