/** `alignjs generate`: AlpacaEval-style model outputs for a list of instructions. */
import { generateOutputs, readInstructions, writeModelOutputs } from '@alignjs/eval/node';
import { makeLogger } from '@alignjs/trainer/node';
import type { Args } from '../args.js';
import { loadModelFlag } from './model.js';

export async function run(args: Args): Promise<number> {
  const instructions = await readInstructions(args.get('--instructions') ?? '');
  const { name, model, tokenizer } = await loadModelFlag(args);
  try {
    const output = args.get('--output') ?? 'model_outputs.json';
    const log = makeLogger(undefined);
    const outs = generateOutputs(model, tokenizer, instructions, {
      generator: args.get('--generator') ?? name,
      maxNewTokens: Number(args.get('--max-tokens') ?? 256),
      temperature: Number(args.get('--temperature') ?? 0),
      seed: Number(args.get('--seed') ?? 0),
      onProgress: (d, t) => log.progress('generate', d, t),
    });
    log.done();
    await writeModelOutputs(output, outs);
    process.stderr.write(`wrote ${outs.length} outputs to ${output}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}
