/** The model a command's `--model` flag names (default: the built-in tiny model), loaded. */
import { initBackend } from '@alignjs/core-logprob';
import {
  type CausalLM,
  type HfTokenizer,
  loadModel,
  loadTokenizer,
  tinyModelDir,
} from '@alignjs/models/node';
import { type Args, modelName } from '../args.js';

export async function loadModelFlag(
  args: Args,
): Promise<{ dir: string; name: string; model: CausalLM; tokenizer: HfTokenizer }> {
  await initBackend();
  const flag = args.get('--model') ?? 'builtin:tiny';
  const dir = flag === 'builtin:tiny' ? tinyModelDir() : flag;
  const model = await loadModel(dir);
  const tokenizer = await loadTokenizer(dir);
  return { dir, name: modelName(flag), model, tokenizer };
}
