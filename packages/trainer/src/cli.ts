#!/usr/bin/env node
/**
 * The `alignjs` command line: train, precompute-ref, demo. User mistakes (bad config, bad
 * data) print one clear message and exit 1; ALIGNJS_DEBUG=1 adds stack traces.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseTrainConfig, type TrainConfig } from './config.js';
import { runDemo } from './demo.js';
import { textTable } from './report.js';
import { parseRewardTrainConfig, trainRewardModel } from './reward-model.js';
import { summaryRows, Trainer } from './trainer.js';

const HELP = `alignjs — preference optimization for TypeScript

Usage:
  alignjs demo [--quick] [--output DIR] [--steps N]   align the built-in tiny model with each objective
  alignjs train --config run.yaml [--resume DIR]       train (YAML or JSON config; see the trainer README)
  alignjs precompute-ref --config run.yaml             compute and cache reference log-probs only
  alignjs train-rm --config rm.yaml                    train a Bradley–Terry reward model on pairwise data
  alignjs --help
`;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

export async function readConfigFile(path: string): Promise<TrainConfig> {
  return parseTrainConfig(await readRawConfig(path), path);
}

/** Reads a YAML or JSON config file into a plain object, with errors naming the file. */
export async function readRawConfig(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read the config (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(
      `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`,
    );
  }
  return raw;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd === 'demo') {
    const steps = arg(args, '--steps');
    await runDemo({
      output: arg(args, '--output') ?? 'alignjs-demo',
      quick: args.includes('--quick'),
      steps: steps ? Number(steps) : undefined,
    });
    return 0;
  }
  if (cmd === 'train-rm') {
    const path = arg(args, '--config');
    if (!path) throw new Error('train-rm needs --config FILE');
    const r = await trainRewardModel(parseRewardTrainConfig(await readRawConfig(path), path));
    const last = r.history.at(-1);
    const evalAcc =
      r.evalAccuracy !== undefined ? `, eval accuracy ${r.evalAccuracy.toFixed(3)}` : '';
    process.stderr.write(
      `done: ${r.steps} steps; final loss ${last?.loss.toFixed(4)}, batch accuracy ${last?.accuracy.toFixed(3)}${evalAcc}; reward model in ${r.outputDir}\n`,
    );
    return 0;
  }
  if (cmd === 'train' || cmd === 'precompute-ref') {
    const path = arg(args, '--config');
    if (!path) throw new Error(`${cmd} needs --config FILE`);
    const config = await readConfigFile(path);
    const trainer = new Trainer(config);
    try {
      if (cmd === 'precompute-ref') {
        await trainer.setup();
        const r = await trainer.precomputeReference();
        process.stderr.write(
          `reference log-probs: ${r.rows} rows, ${r.computed} computed, cached in ${config.refCache ?? join(config.output, 'ref-logps.json')}\n`,
        );
        return 0;
      }
      const result = await trainer.train({ resumeFrom: arg(args, '--resume') });
      const last = result.history.at(-1);
      process.stderr.write(`${textTable(['metric', 'value'], summaryRows(result))}\n`);
      process.stderr.write(
        `done: ${result.steps} steps in ${result.wallSeconds.toFixed(1)}s on ${result.backend.backend}; final loss ${last?.loss.toFixed(4)}; ${result.truncated} examples truncated; model in ${result.finalDir}; report ${join(config.output, 'report.html')}\n`,
      );
      return 0;
    } finally {
      trainer.dispose();
    }
  }
  throw new Error(`unknown command '${cmd}'\n${HELP}`);
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '');
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`alignjs: ${process.env.ALIGNJS_DEBUG ? err.stack : err.message}\n`);
      process.exit(1);
    },
  );
}
