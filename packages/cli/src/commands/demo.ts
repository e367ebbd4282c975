/** `alignjs demo`: every objective on the built-in tiny model, with a report. */
import type { Args } from '../args.js';
import { runDemo } from '../demo.js';

export async function run(args: Args): Promise<number> {
  await runDemo({
    output: args.get('--output') ?? 'alignjs-demo',
    quick: args.has('--quick'),
    steps: args.number('--steps'),
    seeds: args.number('--seeds'),
    seed: args.number('--seed'),
  });
  return 0;
}
