import {
  type CrossInputs,
  computeLoss,
  type Objective,
  parseWith,
  requireInput,
  requirePositive,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

export type VarMode = 'cross' | 'diagonal';

export interface VarConfig {
  /** temperature λ > 0 of the reward in the weights; default 1 */
  lambda: number;
  /** `cross` (exact, default) or `diagonal` (r(x_i, y_j) ≈ r(x_j, y_j)) */
  mode: VarMode;
  /** use mean token log-probs instead of sums, in the weights and the loss; default false */
  lengthNormalized: boolean;
}

export interface VarTerms {
  /** [B] per-example losses −w_i·logpθ(y_i|x_i) */
  losses: tf.Tensor1D;
  /** [B] detached weights w_i ≥ 0 */
  weights: tf.Tensor1D;
}

/**
 * VAR (var.txt eqs. 16–21, Algorithm 1; objectives.md "loss-var"):
 * ```
 * a_ij = logp_ref(y_j | x_i) + r(x_i, y_j)/λ            # log space
 * w_i  = exp(a_ii − logsumexp_j a_ij)                   # detached
 * loss = −(1/B) Σ_i w_i · logpθ(y_i | x_i)
 * ```
 * `diagonal` mode takes the reward of response j as given for every prompt:
 * `r(x_i, y_j) = r(x_j, y_j)` (`rewards [B]`), so no B×B reward calls are needed.
 * `lengthNormalized` divides every log-prob of response j by its token count.
 */
export function varTerms(p: CrossInputs, c: Readonly<VarConfig>): VarTerms {
  const B = p.policyLogps.shape[0];
  if (p.refCrossLogps.shape[0] !== B || p.refCrossLogps.shape[1] !== B) {
    throw new Error(
      `var: input 'refCrossLogps' must be [${B}, ${B}], got [${p.refCrossLogps.shape}]`,
    );
  }
  const crossRewards =
    c.mode === 'cross'
      ? requireInput(
          'var',
          'crossRewards',
          p.crossRewards,
          "mode 'cross' needs r(x_i, y_j) for every pair; use mode 'diagonal' with 'rewards' otherwise",
        )
      : undefined;
  const rewards =
    c.mode === 'diagonal'
      ? requireInput('var', 'rewards', p.rewards, "mode 'diagonal' needs r(x_j, y_j) per response")
      : undefined;
  if (c.lengthNormalized) requirePositive('var', 'lengths', p.lengths);
  return tf.tidy(() => {
    // Column j of every row holds response j: divide columns by len(y_j).
    const refCross = c.lengthNormalized
      ? tf.div(p.refCrossLogps, tf.reshape(p.lengths, [1, B]))
      : p.refCrossLogps;
    const r = crossRewards ?? tf.tile(tf.reshape(rewards!, [1, B]), [B, 1]);
    const a = tf.add(refCross, tf.div(r, c.lambda));
    const diag = tf.sum(tf.mul(a, tf.eye(B)), 1);
    const weights = stopGradient(tf.exp(tf.sub(diag, tf.logSumExp(a, 1)))) as tf.Tensor1D;
    const policy = c.lengthNormalized ? tf.div(p.policyLogps, p.lengths) : p.policyLogps;
    return { losses: tf.neg(tf.mul(weights, policy)) as tf.Tensor1D, weights };
  });
}

export const VAR_METRICS = [
  'var/ess',
  'var/w_max',
  'var/w_min',
  'var/w_mean',
  'logps/policy',
] as const;

/** `var`: VAR's reward-weighted maximum likelihood with in-batch partition estimates. */
export const varObjective: Objective<VarConfig> = Object.freeze<Objective<VarConfig>>({
  name: 'var',
  description:
    'VAR: variational alignment, reference- and reward-weighted SFT with an in-batch partition estimate (var.txt)',
  feedback: ['pairwise', 'score', 'multi'],
  metricNames: VAR_METRICS,
  parseConfig: (raw) =>
    parseWith('var', raw, (r) => ({
      lambda: r.number('lambda', 1, { gt: 0 }),
      mode: r.oneOf('mode', 'cross', ['cross', 'diagonal'] as const),
      lengthNormalized: r.boolean('lengthNormalized', false),
    })),
  feedbackFor: () => ['pairwise', 'score', 'multi'],
  needs: () => ({
    inputs: 'cross',
    reference: true,
    promptLogps: false,
    rewards: true,
    mismatchedPairs: false,
  }),
  loss(inputs, c) {
    return computeLoss('var', inputs, 'cross', (p) => {
      const t = varTerms(p, c);
      return {
        loss: tf.mean(t.losses) as tf.Scalar,
        metrics: {
          // Kish's (Σw)²/Σw²: 1/Σw² when the weights sum to 1 (diagonal mode), and still
          // meaningful in cross mode where each row normalizes over its own prompt; 0 if all
          // weights underflow.
          'var/ess': tf.div(
            tf.square(tf.sum(t.weights)),
            tf.maximum(tf.sum(tf.square(t.weights)), 1e-30),
          ),
          'var/w_max': tf.max(t.weights),
          'var/w_min': tf.min(t.weights),
          'var/w_mean': t.weights,
          'logps/policy': p.policyLogps,
        },
      };
    });
  },
});
