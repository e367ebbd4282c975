import {
  hostValues,
  type PointwiseInputs,
  requireInput,
  stopGradient,
} from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';

export interface KtoTerms {
  /** [B] per-example losses */
  losses: tf.Tensor1D;
  /** [B] implicit rewards βρ (detached) */
  rewards: tf.Tensor1D;
  /** scalar z = max(0, KL estimate), detached */
  kl: tf.Scalar;
}

/**
 * KTO (Ethayarajh et al. 2024) on unpaired binary feedback:
 * desirable rows `λ_D·(1 − σ(β(ρ − z)))`, undesirable rows `λ_U·(1 − σ(β(z − ρ)))`, with
 * `z = max(0, mean(logpθ(y'|x) − logp_ref(y'|x)))` over mismatched pairs (x, y') of the
 * batch, detached — the batch KL estimate of the KTO paper and TRL.
 */
export function ktoTerms(
  p: PointwiseInputs,
  beta: number,
  desirableWeight: number,
  undesirableWeight: number,
  objective = 'kto',
): KtoTerms {
  const ref = requireInput(objective, 'refLogps', p.refLogps, 'reference log-probs');
  const labels = requireInput(objective, 'labels', p.labels, '1 desirable / 0 undesirable per row');
  const klPolicy = requireInput(
    objective,
    'klPolicyLogps',
    p.klPolicyLogps,
    'log-probs of mismatched (x, y′) pairs for the KL estimate',
  );
  const klRef = requireInput(
    objective,
    'klRefLogps',
    p.klRefLogps,
    'reference log-probs of mismatched (x, y′) pairs',
  );
  const l = hostValues(labels);
  for (let i = 0; i < l.length; i++) {
    if (l[i] !== 0 && l[i] !== 1)
      throw new Error(`${objective}: labels must be 0 or 1, row ${i} is ${l[i]}`);
  }
  return tf.tidy(() => {
    const kl = stopGradient(tf.relu(tf.mean(tf.sub(klPolicy, klRef)))) as tf.Scalar;
    const rho = tf.sub(p.policyLogps, ref);
    const desirable = tf.mul(desirableWeight, tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(rho, kl)))));
    const undesirable = tf.mul(
      undesirableWeight,
      tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(kl, rho)))),
    );
    const losses = tf.add(
      tf.mul(labels, desirable),
      tf.mul(tf.sub(1, labels), undesirable),
    ) as tf.Tensor1D;
    return { losses, rewards: stopGradient(tf.mul(beta, rho)) as tf.Tensor1D, kl };
  });
}
