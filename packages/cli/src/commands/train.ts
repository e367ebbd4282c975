/** `alignjs train --config FILE [--resume DIR]`: a training run from a YAML/JSON config. */
import { join, resolve } from 'node:path';
import { textTable } from '@alignjs/report';
import { summaryRows, Trainer } from '@alignjs/trainer/node';
import type { Args } from '../args.js';
import { readConfigFile } from '../config-file.js';
import { loadRewardModule } from '../reward-module.js';

/** The Trainer for a config file, with its reward module (if any) loaded. */
export async function trainerFor(path: string): Promise<Trainer> {
  const config = await readConfigFile(path);
  const reward = config.rewardModule
    ? await loadRewardModule(resolve(config.rewardModule))
    : undefined;
  return new Trainer(config, reward ? { reward } : {});
}

export async function run(args: Args): Promise<number> {
  const trainer = await trainerFor(args.need('--config', 'train', '--config FILE'));
  try {
    const result = await trainer.train({ resumeFrom: args.get('--resume') });
    const last = result.history.at(-1);
    process.stderr.write(`${textTable(['metric', 'value'], summaryRows(result))}\n`);
    process.stderr.write(
      `done: ${result.steps} steps in ${result.wallSeconds.toFixed(1)}s on ${result.backend.backend}; final loss ${last?.loss.toFixed(4)}; ${result.truncated} examples truncated; model in ${result.finalDir}; report ${join(trainer.config.output, 'report.html')}\n`,
    );
    return 0;
  } finally {
    trainer.dispose();
  }
}
