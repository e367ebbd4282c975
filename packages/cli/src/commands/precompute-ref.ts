/** `alignjs precompute-ref --config FILE`: the reference log-probs of a run, into its cache. */
import { join } from 'node:path';
import type { Args } from '../args.js';
import { trainerFor } from './train.js';

export async function run(args: Args): Promise<number> {
  const trainer = await trainerFor(args.need('--config', 'precompute-ref', '--config FILE'));
  try {
    await trainer.setup();
    const r = await trainer.precomputeReference();
    const c = trainer.config;
    process.stderr.write(
      `reference log-probs: ${r.rows} rows, ${r.computed} computed, cached in ${c.refCache ?? join(c.output, 'ref-logps.json')}\n`,
    );
    return 0;
  } finally {
    trainer.dispose();
  }
}
