/** `alignjs train-rm --config FILE [--resume DIR]`: a Bradley–Terry reward model. */
import { parseRewardTrainConfig, trainRewardModel } from '@alignjs/trainer/node';
import type { Args } from '../args.js';
import { readRawConfig } from '../config-file.js';

export async function run(args: Args): Promise<number> {
  const path = args.need('--config', 'train-rm', '--config FILE');
  const r = await trainRewardModel(parseRewardTrainConfig(await readRawConfig(path), path), {
    resumeFrom: args.get('--resume'),
  });
  const last = r.history.at(-1);
  const evalAcc =
    r.evalAccuracy !== undefined ? `, eval accuracy ${r.evalAccuracy.toFixed(3)}` : '';
  process.stderr.write(
    `done: ${r.steps} steps; final loss ${last?.loss.toFixed(4)}, batch accuracy ${last?.metrics['rm/accuracy']?.toFixed(3)}${evalAcc}; reward model in ${r.outputDir}\n`,
  );
  return 0;
}
