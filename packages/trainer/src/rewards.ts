/**
 * Rewards for a fixed batch, computed once when it is planned: from the data's scores, or
 * from a reward function (a user's module or a reward model) over the texts. Then the
 * batch goes to core-logprob's layout builders as token ids and numbers only.
 */
import type {
  DataKind,
  LayoutExample,
  LayoutExtras,
  LayoutPlan,
  ObjectiveNeeds,
} from '@alignjs/core-logprob';
import { planLayout } from '@alignjs/core-logprob';
import type { TokenizedExample } from './tokenize.js';

/** Explicit reward for (prompt text, response text). */
export type RewardFn = (prompt: string, response: string) => number;

/**
 * The batch with rewards where the layout takes them: pairwise keeps the data's scores when
 * every record has them (else the reward function's); score, multi and cross rows take the
 * reward function's when there is one; VAR's cross mode also gets r(x_i, y_j) for every pair.
 */
export function withRewards(
  batch: readonly TokenizedExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  reward?: RewardFn,
): { examples: LayoutExample[]; extras: LayoutExtras } {
  const rescore = (e: TokenizedExample) => e.responseTexts.map((t) => reward!(e.promptText, t));
  const keep = (e: TokenizedExample): LayoutExample => ({
    kind: e.kind,
    line: e.line,
    prompt: e.prompt,
    responses: e.responses,
    ...(e.scores ? { scores: e.scores } : {}),
    ...(e.label !== undefined ? { label: e.label } : {}),
  });
  if (!reward) return { examples: batch.map(keep), extras: {} };
  switch (needs.inputs) {
    case 'pairwise':
      return {
        examples: batch.every((e) => e.scores)
          ? batch.map(keep)
          : batch.map((e) => ({ ...keep(e), scores: rescore(e) })),
        extras: {},
      };
    case 'pointwise':
      return {
        examples: batch.map((e) =>
          e.kind === 'score' ? { ...keep(e), scores: rescore(e) } : keep(e),
        ),
        extras: {},
      };
    case 'multi':
      return { examples: batch.map((e) => ({ ...keep(e), scores: rescore(e) })), extras: {} };
    case 'cross': {
      // the cross layout's rows: every completion of multi data, the first of any other kind
      const items = batch.flatMap((e) =>
        (dataKind === 'multi' ? e.responseTexts : e.responseTexts.slice(0, 1)).map((r) => ({
          p: e.promptText,
          r,
        })),
      );
      return {
        examples: batch.map((e) => ({ ...keep(e), scores: rescore(e) })),
        extras: { crossRewards: items.map((a) => items.map((b) => reward(a.p, b.r))) },
      };
    }
  }
}

/** Plans a fixed batch (rewards, then the layout), errors naming the example's line. */
export function planBatch(
  batch: readonly TokenizedExample[],
  dataKind: DataKind,
  needs: ObjectiveNeeds,
  reward?: RewardFn,
): LayoutPlan {
  const { examples, extras } = withRewards(batch, dataKind, needs, reward);
  return planLayout(examples, dataKind, needs, extras);
}
