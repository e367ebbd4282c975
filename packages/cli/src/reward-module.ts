/** Reward sources the CLI loads for a run: a user's JS module, or a trained reward model as a judge. */
import { pathToFileURL } from 'node:url';
import { type PreferenceFn, scoreJudge } from '@alignjs/eval/node';
import { type RewardFn, rewardFnFromModel } from '@alignjs/trainer/node';

/** Imports a user's reward module: `export function reward(prompt, response)` or a default export. */
export async function loadRewardModule(path: string): Promise<RewardFn> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path}: cannot import the reward module (${(err as Error).message})`);
  }
  const fn = (mod.reward ?? mod.default) as unknown;
  if (typeof fn !== 'function')
    throw new Error(
      `${path}: the reward module must export a function 'reward(prompt, response) => number' (or a default export)`,
    );
  return (p: string, r: string) => {
    const v = (fn as RewardFn)(p, r);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`${path}: reward returned ${JSON.stringify(v)} (not a finite number)`);
    return v;
  };
}

/**
 * A local judge from a saved reward model, for `@alignjs/eval`'s `annotateLocal`: the
 * answer with the higher reward wins (AlpacaEval preference 2 = model, 1 = reference).
 */
export async function rewardModelJudge(
  dir: string,
): Promise<{ prefer: PreferenceFn; dispose: () => void }> {
  const { reward, dispose } = await rewardFnFromModel(dir);
  return { prefer: scoreJudge(reward), dispose };
}
