import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeLoss, logSigmoid, type Objective } from '@alignjs/core-logprob';
import { TINY_TASK_WORDS } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';

/** Small datasets of every kind, written to a temp directory; returns their paths. */
export async function writeTestData(
  n = 8,
): Promise<
  Record<'pairwise' | 'conversational' | 'implicit' | 'binary' | 'score' | 'multi', string>
> {
  const dir = await mkdtemp(join(tmpdir(), 'alignjs-data-'));
  const W = TINY_TASK_WORDS;
  const rows = Array.from({ length: n }, (_, i) => {
    const s = W.subjects[i % W.subjects.length]!;
    return {
      prompt: `Tell me about the ${s}.`,
      good: `The ${s} is ${W.positive[i % W.positive.length]}.`,
      bad: `The ${s} is ${W.negative[i % W.negative.length]}.`,
      mid: `It is ${W.positive[(i + 1) % W.positive.length]} and ${W.negative[(i + 2) % W.negative.length]}.`,
    };
  });
  const user = (c: string) => [{ role: 'user', content: c }];
  const asst = (c: string) => [{ role: 'assistant', content: c }];
  const files = {
    pairwise: rows.map((r) => ({
      prompt: r.prompt,
      chosen: r.good,
      rejected: r.bad,
      score_chosen: 4,
      score_rejected: 1,
    })),
    conversational: rows.map((r) => ({
      prompt: user(r.prompt),
      chosen: asst(r.good),
      rejected: asst(r.bad),
    })),
    implicit: rows.map((r) => ({
      chosen: [...user(r.prompt), ...asst(r.good)],
      rejected: [...user(r.prompt), ...asst(r.bad)],
    })),
    binary: rows.flatMap((r) => [
      { prompt: r.prompt, completion: r.good, label: true },
      { prompt: r.prompt, completion: r.bad, label: false },
    ]),
    score: rows.flatMap((r) => [
      { prompt: r.prompt, completion: r.good, score: 4 },
      { prompt: r.prompt, completion: r.mid, score: 2.5 },
      { prompt: r.prompt, completion: r.bad, score: 1 },
    ]),
    multi: rows.map((r, i) => ({
      prompt: r.prompt,
      completions: i % 2 ? [r.good, r.mid, r.bad] : [r.good, r.bad],
      scores: i % 2 ? [4, 2.5, 1] : [4, 1],
    })),
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(files)) {
    out[k] = join(dir, `${k}.jsonl`);
    await writeFile(out[k]!, `${v.map((x) => JSON.stringify(x)).join('\n')}\n`);
  }
  return out as Record<keyof typeof files, string>;
}

/**
 * DPO (β = 0.1) written with core's primitives, for tests of the trainer (which imports no
 * loss package): reference log-probs, pairwise inputs, margin and accuracy metrics.
 */
export function testDpoObjective(name = 'test_dpo'): Objective<{ beta: number }> {
  return {
    name,
    description: 'DPO for trainer tests',
    feedback: ['pairwise'],
    metricNames: ['rewards/margins', 'rewards/accuracies'],
    parseConfig: () => ({ beta: 0.1 }),
    feedbackFor: () => ['pairwise'],
    needs: () => ({
      inputs: 'pairwise',
      reference: true,
      promptLogps: false,
      rewards: false,
      mismatchedPairs: false,
    }),
    loss: (inputs, c) =>
      computeLoss(name, inputs, 'pairwise', (p) => {
        const m = tf.mul(
          c.beta,
          tf.sub(
            tf.sub(p.policyChosenLogps, p.refChosenLogps!),
            tf.sub(p.policyRejectedLogps, p.refRejectedLogps!),
          ),
        );
        return {
          loss: tf.neg(tf.mean(logSigmoid(m))) as tf.Scalar,
          metrics: {
            'rewards/margins': m,
            'rewards/accuracies': tf.cast(tf.greater(m, 0), 'float32'),
          },
        };
      }),
  };
}
