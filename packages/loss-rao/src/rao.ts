import {
  computeLoss,
  hostValues,
  type MultiInputs,
  type Objective,
  parseWith,
  requireInput,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

export interface RaoConfig {
  /** β > 0, default 0.1 (paper) */
  beta: number;
  /** log Z0, the partition offset on the log scale; default 50 (paper's "Z0 = 50") */
  logZ0: number;
}

export const RAO_DEFAULTS: Readonly<RaoConfig> = Object.freeze({ beta: 0.1, logZ0: 50 });

export interface RaoTerms {
  /** [B] per-prompt losses (1/K_i) Σ_j (R_j − target_j)² */
  losses: tf.Tensor1D;
  /** [B, K] targets β·ρ_j + β·logZ_i (0 in empty slots) */
  targets: tf.Tensor2D;
  /** [B] logZ_i = logZ0 + stopgrad(prompt log-ratio), detached */
  logZ: tf.Tensor1D;
  /** [B, K] implicit rewards β·ρ_j, detached */
  rewards: tf.Tensor2D;
}

function checkMask(mask: tf.Tensor2D): Float32Array {
  const m = hostValues(mask) as Float32Array;
  const [B, K] = mask.shape;
  for (let i = 0; i < B; i++) {
    let n = 0;
    for (let k = 0; k < K; k++) {
      const v = m[i * K + k]!;
      if (v !== 0 && v !== 1)
        throw new Error(`rao: input 'mask' must be 0 or 1, [${i}, ${k}] is ${v}`);
      n += v;
    }
    if (n === 0) throw new Error(`rao: prompt ${i} has no responses (mask row is all 0)`);
  }
  return m;
}

/**
 * RAO (rao.txt Algorithm 1; objectives.md "loss-rao"):
 * ```
 * logZ_i   = logZ0 + stopgrad( logp_θ(x_{2:}|t0) − logp_ref(x_{2:}|t0) )
 * target_j = β·ρ(y_j) + β·logZ_i
 * loss_i   = (1/K_i) Σ_j (R_j − target_j)²        averaged over prompts
 * ```
 * `scores` are the explicit rewards `R_j`; `mask` marks the K_i real responses of prompt i.
 */
export function raoTerms(p: MultiInputs, c: Readonly<RaoConfig>): RaoTerms {
  const policyPrompt = requireInput(
    'rao',
    'policyPromptLogps',
    p.policyPromptLogps,
    'the partition estimate uses the prompt tokens after the first',
  );
  const refPrompt = requireInput(
    'rao',
    'refPromptLogps',
    p.refPromptLogps,
    'the partition estimate uses the prompt tokens after the first',
  );
  requireInput('rao', 'scores', p.scores, 'explicit rewards R_j per response');
  checkMask(p.mask);
  return tf.tidy(() => {
    const logZ = tf.add(c.logZ0, stopGradient(tf.sub(policyPrompt, refPrompt)));
    const betaRho = tf.mul(c.beta, tf.sub(p.policyLogps, p.refLogps));
    const targets = tf.mul(tf.add(betaRho, tf.mul(c.beta, tf.expandDims(logZ, 1))), p.mask);
    const sq = tf.mul(tf.square(tf.sub(p.scores, targets)), p.mask);
    const losses = tf.div(tf.sum(sq, 1), tf.sum(p.mask, 1)) as tf.Tensor1D;
    return {
      losses,
      targets: targets as tf.Tensor2D,
      logZ: logZ as tf.Tensor1D,
      rewards: stopGradient(betaRho) as tf.Tensor2D,
    };
  });
}

export const RAO_METRICS = [
  'rao/target_mean',
  'rao/logZ_mean',
  'rao/reward_mean',
  'rao/gap',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
  'rewards/accuracies',
] as const;

/** `rao`: RAO on K ≥ 1 responses per prompt with explicit rewards. */
export const raoObjective: Objective<RaoConfig> = Object.freeze<Objective<RaoConfig>>({
  name: 'rao',
  description:
    'RAO: regress β·ρ + β·logZ onto explicit rewards, with a detached prompt-based partition estimate (rao.txt)',
  feedback: ['multi', 'pairwise', 'score'],
  metricNames: RAO_METRICS,
  parseConfig: (raw) =>
    parseWith('rao', raw, (r) => ({
      beta: r.number('beta', RAO_DEFAULTS.beta, { gt: 0 }),
      logZ0: r.number('logZ0', RAO_DEFAULTS.logZ0),
    })),
  feedbackFor: () => ['multi', 'pairwise', 'score'],
  needs: () => ({
    inputs: 'multi',
    reference: true,
    promptLogps: true,
    rewards: true,
    mismatchedPairs: false,
  }),
  loss(inputs, c) {
    return computeLoss('rao', inputs, 'multi', (p) => {
      const t = raoTerms(p, c);
      const count = tf.sum(p.mask);
      const metrics: Record<string, tf.Tensor> = {
        'rao/target_mean': tf.div(tf.sum(t.targets), count),
        'rao/logZ_mean': t.logZ,
        'rao/reward_mean': tf.div(tf.sum(tf.mul(p.scores, p.mask)), count),
        // the prefix-consistency gap mean |R − (βρ + β·logZ)| the loss drives to 0
        'rao/gap': tf.div(tf.sum(tf.mul(tf.abs(tf.sub(p.scores, t.targets)), p.mask)), count),
      };
      if (p.mask.shape[1] === 2) {
        // K = 2: the response with the higher explicit reward is "chosen".
        const [r0, r1] = tf.split(t.rewards, 2, 1).map((x) => tf.squeeze(x, [1]));
        const [s0, s1] = tf.split(p.scores, 2, 1).map((x) => tf.squeeze(x, [1]));
        const firstWins = tf.cast(tf.greaterEqual(s0!, s1!), 'float32');
        const chosen = tf.add(tf.mul(firstWins, r0!), tf.mul(tf.sub(1, firstWins), r1!));
        const rejected = tf.add(tf.mul(firstWins, r1!), tf.mul(tf.sub(1, firstWins), r0!));
        metrics['rewards/chosen'] = chosen;
        metrics['rewards/rejected'] = rejected;
        metrics['rewards/margins'] = tf.sub(chosen, rejected);
        metrics['rewards/accuracies'] = tf.cast(tf.greater(chosen, rejected), 'float32');
      }
      return { loss: tf.mean(t.losses) as tf.Scalar, metrics };
    });
  },
});
