/**
 * External harnesses: build the commands of lm-evaluation-harness and AlpacaEval, pointed
 * at our OpenAI-compatible server, run them when installed, and read their results back.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type ExternalTool = 'lm_eval' | 'alpaca_eval';

const INSTALL: Record<ExternalTool, string> = {
  lm_eval: 'pip install "lm-eval[api]"',
  alpaca_eval: 'pip install alpaca-eval',
};

/** Whether a command is on PATH. */
export function isInstalled(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Throws a clear error saying how to install the tool when it is missing. */
export function requireTool(tool: ExternalTool): void {
  if (!isInstalled(tool))
    throw new Error(`${tool} is not installed (not on PATH); install it with: ${INSTALL[tool]}`);
}

/**
 * lm_eval's command against our `/v1/completions` (local-completions): token ids sent as
 * given (lm-eval tokenizes with the model's Hugging Face tokenizer), echo + logprobs for
 * multiple choice, the model's context as `max_length`.
 */
export function lmEvalCommand(o: {
  serverUrl: string;
  modelId: string;
  tasks: string[];
  outputPath: string;
  numFewshot?: number;
  limit?: number;
  tokenizer?: string;
  maxLength?: number;
}): string[] {
  const args = [
    'lm_eval',
    '--model',
    'local-completions',
    '--model_args',
    [
      `model=${o.modelId}`,
      `base_url=${o.serverUrl}/v1/completions`,
      ...(o.tokenizer ? [`tokenizer=${o.tokenizer}`] : ['tokenized_requests=False']),
      ...(o.maxLength ? [`max_length=${o.maxLength}`] : []),
    ].join(','),
    '--tasks',
    o.tasks.join(','),
    '--output_path',
    o.outputPath,
  ];
  if (o.numFewshot !== undefined) args.push('--num_fewshot', String(o.numFewshot));
  if (o.limit !== undefined) args.push('--limit', String(o.limit));
  return args;
}

/** alpaca_eval's command for model outputs we wrote (its judge settings are its own). */
export function alpacaEvalCommand(o: {
  modelOutputs: string;
  referenceOutputs?: string;
  outputPath: string;
  annotatorsConfig?: string;
}): string[] {
  return [
    'alpaca_eval',
    'evaluate',
    '--model_outputs',
    o.modelOutputs,
    ...(o.referenceOutputs ? ['--reference_outputs', o.referenceOutputs] : []),
    '--output_path',
    o.outputPath,
    ...(o.annotatorsConfig ? ['--annotators_config', o.annotatorsConfig] : []),
  ];
}

/** Runs a command to completion, inheriting stdio; rejects with its exit code. */
export function runCommand(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv[0]} exited with code ${code}`)),
    );
  });
}

/** The newest `results_*.json` lm_eval wrote under `dir` (it nests one folder per model). */
export async function readLmEvalResults(dir: string): Promise<Record<string, unknown>> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/^results.*\.json$/.test(e.name)) found.push(p);
    }
  };
  await walk(dir);
  if (!found.length) throw new Error(`${dir}: lm_eval wrote no results_*.json`);
  found.sort();
  return JSON.parse(await readFile(found.at(-1)!, 'utf8')) as Record<string, unknown>;
}
