import type { Objective } from '@alignjs/core-logprob';
import { dpoObjectives } from '@alignjs/loss-dpo';
import { proObjective } from '@alignjs/loss-pro';
import { raoObjective } from '@alignjs/loss-rao';
import { unaObjective } from '@alignjs/loss-una';
import { unidpoObjective } from '@alignjs/loss-unidpo';
import { varObjective } from '@alignjs/loss-var';

/** Every objective the trainer can run, by the name users type. */
export const OBJECTIVES: Readonly<Record<string, Objective<object>>> = Object.freeze({
  ...(dpoObjectives as unknown as Record<string, Objective<object>>),
  unidpo: unidpoObjective as unknown as Objective<object>,
  una: unaObjective as unknown as Objective<object>,
  rao: raoObjective as unknown as Objective<object>,
  var: varObjective as unknown as Objective<object>,
  pro: proObjective as unknown as Objective<object>,
});

export function getObjective(name: string): Objective<object> {
  const o = OBJECTIVES[name];
  if (!o)
    throw new Error(
      `unknown objective '${name}'; available: ${Object.keys(OBJECTIVES).join(', ')}`,
    );
  return o;
}
