import { expectClose } from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { matMulFast } from './layers.js';

describe('matMulFast', () => {
  it('equals tf.matMul with the stock gradient, for every transpose and for batched operands', () => {
    expect(tf.getBackend()).toBe('wasm');
    const shapes: [number[], number[]][] = [
      [
        [5, 7],
        [7, 3],
      ],
      [
        [2, 3, 5, 7],
        [2, 3, 7, 4],
      ],
    ];
    for (const [sa, sb] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const swap = (s: number[], t: boolean) =>
            t ? [...s.slice(0, -2), s.at(-1)!, s.at(-2)!] : s;
          const a = tf.randomNormal(swap(sa, ta), 0, 1, 'float32', 1);
          const b = tf.randomNormal(swap(sb, tb), 0, 1, 'float32', 2);
          const w = tf.randomNormal([...sa.slice(0, -1), sb.at(-1)!], 0, 1, 'float32', 3);
          const loss = (mm: typeof tf.matMul) => (x: tf.Tensor, y: tf.Tensor) =>
            tf.sum(tf.mul(mm(x, y, ta, tb), w));
          const [fa, fb] = tf.grads(loss(matMulFast as typeof tf.matMul))([a, b]);
          const [sa2, sb2] = tf.grads(loss(tf.matMul))([a, b]);
          const label = `${sa}×${sb} tA=${ta} tB=${tb}`;
          expectClose(matMulFast(a, b, ta, tb).dataSync(), tf.matMul(a, b, ta, tb).dataSync(), {
            atol: 1e-4,
            rtol: 1e-5,
            label,
          });
          expectClose(fa!.dataSync(), sa2!.dataSync(), {
            atol: 1e-4,
            rtol: 1e-5,
            label: `${label} dA`,
          });
          expectClose(fb!.dataSync(), sb2!.dataSync(), {
            atol: 1e-4,
            rtol: 1e-5,
            label: `${label} dB`,
          });
          tf.dispose([a, b, w, fa!, fb!, sa2!, sb2!]);
        }
      }
    }
  });
});
