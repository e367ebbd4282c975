/** `alignjs serve`: an OpenAI-compatible server for a local model. */
import { serve } from '@alignjs/eval/node';
import type { Args } from '../args.js';
import { loadModelFlag } from './model.js';

export async function run(args: Args): Promise<number> {
  const { dir, name, model, tokenizer } = await loadModelFlag(args);
  const s = await serve({
    model,
    tokenizer,
    modelId: name,
    port: Number(args.get('--port') ?? 8000),
    host: args.get('--host') ?? '127.0.0.1',
    maxQueue: Number(args.get('--max-queue') ?? 16),
    maxTokensLimit: Number(args.get('--max-tokens-limit') ?? 256),
  });
  process.stderr.write(`serving ${dir} at ${s.url}/v1 (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => void s.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  model.dispose();
  return 0;
}
