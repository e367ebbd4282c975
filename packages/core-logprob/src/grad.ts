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

/**
 * Evaluates `fn` off the gradient tape: its ops are not recorded, so it may use ops that
 * tfjs gives no gradient (comparisons, `sign`, casts of booleans) on tensors that depend
 * on trainable inputs. The result carries no gradient. Use it for masks and gates.
 */
export function detach<T extends tf.Tensor>(fn: () => T): T {
  const anchor = tf.scalar(0);
  const f = tf.customGrad(((a: tf.Tensor) => ({
    // Ops inside a custom-gradient forward pass run at kernel depth > 0: never taped.
    value: fn(),
    gradFunc: () => [tf.zerosLike(a)],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  const out = f(anchor) as T;
  anchor.dispose();
  return out;
}
