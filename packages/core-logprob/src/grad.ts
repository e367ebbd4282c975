import * as tf from '@tensorflow/tfjs-core';

/**
 * Identity in the forward pass, zero gradient in the backward pass (tfjs has no
 * `stopGradient`). Use it for every quantity a paper marks as detached / stop-gradient.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad(((input: tf.Tensor) => ({
    value: tf.clone(input),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.zerosLike(dy as tf.Tensor)],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as T;
}
