#!/usr/bin/env node
/**
 * The `alignjs` command line: train, precompute-ref, demo. User mistakes (bad config, bad
 * data) print one clear message and exit 1; ALIGNJS_DEBUG=1 adds stack traces.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suggest } from '@alignjs/core-logprob';
import { writeFileAtomic } from '@alignjs/core-logprob/cache';
import { textTable } from '@alignjs/eval';
import { parse as parseYaml } from 'yaml';
import { parseTrainConfig, type TrainConfig } from './config.js';
import { runDemo } from './demo.js';
import { COMMANDS, checkFlags, commandHelp, mainHelp } from './flags.js';
import { makeLogger } from './log.js';
import { parseRewardTrainConfig, trainRewardModel } from './reward-model.js';
import { summaryRows, Trainer } from './trainer.js';

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
  const version = await packageVersion();
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(mainHelp(version));
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  if (!COMMANDS[cmd])
    throw new Error(
      `unknown command '${cmd}'${suggest(cmd, Object.keys(COMMANDS))} (commands: ${Object.keys(COMMANDS).join(', ')}; alignjs --help)`,
    );
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  checkFlags(cmd, args);
  if (cmd === 'demo') {
    const num = (f: string) => (arg(args, f) ? Number(arg(args, f)) : undefined);
    await runDemo({
      output: arg(args, '--output') ?? 'alignjs-demo',
      quick: args.includes('--quick'),
      steps: num('--steps'),
      seeds: num('--seeds'),
      seed: num('--seed'),
    });
    return 0;
  }
  if (cmd === 'generate' || cmd === 'serve') {
    const { HfTokenizer, loadModel, tinyModelDir } = await import('@alignjs/models');
    const { initBackend } = await import('@alignjs/core-logprob');
    await initBackend();
    const dir = arg(args, '--model') ?? 'builtin:tiny';
    const modelDir = dir === 'builtin:tiny' ? tinyModelDir() : dir;
    const model = await loadModel(modelDir);
    const tok = await HfTokenizer.fromDir(modelDir);
    const ev = await import('@alignjs/eval');
    if (cmd === 'serve') {
      const s = await ev.serve({
        model,
        tokenizer: tok,
        modelId:
          dir === 'builtin:tiny' ? 'tiny' : (dir.split('/').filter(Boolean).pop() ?? 'model'),
        port: Number(arg(args, '--port') ?? 8000),
        host: arg(args, '--host') ?? '127.0.0.1',
        maxQueue: Number(arg(args, '--max-queue') ?? 16),
        maxTokensLimit: Number(arg(args, '--max-tokens-limit') ?? 256),
      });
      process.stderr.write(`serving ${modelDir} at ${s.url}/v1 (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      model.dispose();
      return 0;
    }
    const instructions = await ev.readInstructions(arg(args, '--instructions') ?? '');
    const output = arg(args, '--output') ?? 'model_outputs.json';
    const log = makeLogger(undefined);
    const outs = ev.generateOutputs(model, tok, instructions, {
      generator:
        arg(args, '--generator') ??
        (dir === 'builtin:tiny' ? 'tiny' : (dir.split('/').filter(Boolean).pop() ?? 'model')),
      maxNewTokens: Number(arg(args, '--max-tokens') ?? 256),
      temperature: Number(arg(args, '--temperature') ?? 0),
      seed: Number(arg(args, '--seed') ?? 0),
      onProgress: (d, t) => log.progress('generate', d, t),
    });
    log.done();
    await ev.writeModelOutputs(output, outs);
    process.stderr.write(`wrote ${outs.length} outputs to ${output}\n`);
    model.dispose();
    return 0;
  }
  if (cmd === 'harness') {
    const ev = await import('@alignjs/eval');
    const { HfTokenizer, loadModel, tinyModelDir } = await import('@alignjs/models');
    const { initBackend } = await import('@alignjs/core-logprob');
    const external = arg(args, '--external');
    if (external && external !== 'lm_eval' && external !== 'alpaca_eval')
      throw new Error(`--external must be lm_eval or alpaca_eval, got '${external}'`);
    if (external) ev.requireTool(external as 'lm_eval' | 'alpaca_eval');
    await initBackend();
    const dir = arg(args, '--model') ?? 'builtin:tiny';
    const modelDir = dir === 'builtin:tiny' ? tinyModelDir() : dir;
    const model = await loadModel(modelDir);
    const tok = await HfTokenizer.fromDir(modelDir);
    const task = arg(args, '--task');
    const output = arg(args, '--output') ?? 'results.json';
    try {
      if (external === 'lm_eval') {
        if (!task) throw new Error('harness needs --task');
        const s = await ev.serve({ model, tokenizer: tok, modelId: 'alignjs', port: 0 });
        try {
          await ev.runCommand(
            ev.lmEvalCommand({
              serverUrl: s.url,
              modelId: 'alignjs',
              tasks: task.split(','),
              outputPath: output,
              tokenizer: modelDir,
              maxLength: model.config.maxPositions,
              ...(arg(args, '--fewshot') ? { numFewshot: Number(arg(args, '--fewshot')) } : {}),
              ...(arg(args, '--limit') ? { limit: Number(arg(args, '--limit')) } : {}),
            }),
          );
        } finally {
          await s.close();
        }
        const results = await ev.readLmEvalResults(output);
        process.stderr.write(`${JSON.stringify(results.results, null, 2)}\n`);
        return 0;
      }
      if (external === 'alpaca_eval') {
        const outs = arg(args, '--model-outputs');
        if (!outs)
          throw new Error(
            'harness --external alpaca_eval needs --model-outputs FILE (write it with alignjs generate)',
          );
        await ev.runCommand(
          ev.alpacaEvalCommand({
            modelOutputs: outs,
            referenceOutputs: arg(args, '--reference-outputs'),
            outputPath: output,
          }),
        );
        return 0;
      }
      const docs = arg(args, '--docs');
      if (!task || !docs) throw new Error('harness needs --task NAME and --docs FILE.jsonl');
      const fewshot = arg(args, '--fewshot');
      const limit = arg(args, '--limit');
      const r = await ev.runHarness({
        model,
        tokenizer: tok,
        task: task as never,
        docs,
        fewshot: fewshot ? Number(fewshot) : 0,
        limit: limit ? Number(limit) : undefined,
        modelName: modelDir,
      });
      await writeFileAtomic(output, `${JSON.stringify(r.json, null, 2)}\n`);
      const res = (r.json.results as Record<string, Record<string, unknown>>)[task]!;
      process.stderr.write(
        `${textTable(
          ['metric', 'value'],
          Object.entries(res)
            .filter(([k]) => k !== 'alias')
            .map(([k, v]) => [k, typeof v === 'number' ? v : String(v)]),
        )}\nresults in ${output}\n`,
      );
      return 0;
    } finally {
      model.dispose();
    }
  }
  if (cmd === 'judge') {
    const ev = await import('@alignjs/eval');
    const need = (name: string) => {
      const v = arg(args, name);
      if (!v) throw new Error(`judge needs ${name}`);
      return v;
    };
    const model = await ev.readModelOutputs(need('--model-outputs'));
    const reference = await ev.readModelOutputs(need('--reference-outputs'));
    const out = need('--output');
    const aligned = ev.alignOutputs(model, reference);
    const judge = new ev.JudgeClient({
      baseUrl: need('--base-url'),
      model: need('--judge-model'),
      concurrency: Number(arg(args, '--concurrency') ?? 4),
      requestBudget: arg(args, '--budget') ? Number(arg(args, '--budget')) : undefined,
      maxTokens: Number(arg(args, '--max-tokens') ?? 50),
    });
    const cache = await ev.AnnotationCache.open(join(out, 'judge-cache.json'));
    const generator = model[0]?.generator ?? 'model';
    const run = await ev.annotatePairwise(
      { ...aligned, generator, referenceGenerator: reference[0]?.generator ?? 'reference' },
      judge,
      cache,
    );
    await ev.writeAnnotations(join(out, 'annotations.json'), run.annotations);
    const wr = ev.winRate(run.annotations.map((a) => a.preference));
    // LC: AlpacaEval's GLM fit when df_gamed.csv is given; otherwise not computed (and said so)
    const dfGamed = arg(args, '--df-gamed');
    const lc = dfGamed
      ? ev.lengthControlledWinRate(run.annotations, {
          dfGamed,
          glm: (arg(args, '--glm') ?? 'length_controlled_v1') as never,
        })
      : undefined;
    const avg = Math.round(
      aligned.outputs.reduce((s, o) => s + [...o].length, 0) / Math.max(1, aligned.outputs.length),
    );
    await ev.writeLeaderboard(join(out, 'leaderboard.csv'), [
      {
        name: generator,
        ...wr,
        avg_length: avg,
        ...(lc
          ? {
              length_controlled_winrate: lc.length_controlled_winrate,
              lc_standard_error: lc.lc_standard_error,
              length_controlled_method: `${lc.glm} fit (C ${lc.C ?? '–'})`,
            }
          : {}),
      },
    ]);
    process.stderr.write(
      `${textTable(
        ['metric', 'value'],
        [
          ['win rate', wr.win_rate],
          ['standard error', wr.standard_error],
          ['wins / losses / draws', `${wr.n_wins} / ${wr.n_wins_base} / ${wr.n_draws}`],
          [
            'LC win rate',
            lc
              ? `${lc.length_controlled_winrate.toFixed(2)} ± ${lc.lc_standard_error.toFixed(2)} (${lc.glm}, C ${lc.C ?? '–'})`
              : 'not computed: pass --df-gamed (AlpacaEval df_gamed.csv)',
          ],
          ['unparsed judge answers', run.unparsed],
          ['requests', run.requests],
          ['cache hits', run.cacheHits],
        ],
      )}\nannotations and leaderboard.csv in ${out}\n`,
    );
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
  throw new Error(`internal: command '${cmd}' has no handler`);
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
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
