import { initBackend, variableGrads } from '@alignjs/core-logprob';
import { expectClose, numericGrad, rng } from '@alignjs/core-logprob/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  applyRope,
  attentionWeights,
  embeddingLookup,
  geluNew,
  layerNorm,
  matMulFast,
  rmsNorm,
} from './layers.js';
import { CausalLM } from './model.js';
import { randomConfigs } from './test-util.js';

// wasm (the patched kernels), cpu, and whatever backend this run uses (tensorflow in its CI run)
const BACKENDS = [...new Set(['wasm', 'cpu', tf.getBackend()])] as (
  | 'wasm'
  | 'cpu'
  | 'tensorflow'
)[];

describe.each(BACKENDS)('matMulFast on %s', (backend) => {
  it('equals tf.matMul with the stock gradient, for every transpose and for batched operands', async () => {
    const previous = tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow';
    await initBackend({ backend });
    expect(tf.getBackend()).toBe(backend);
    const shapes: [number[], number[]][] = [
      [
        [5, 7],
        [7, 3],
      ],
      [
        [2, 3, 5, 7],
        [2, 3, 7, 4],
      ],
      // A few rows against a wide right operand: computed as (op(b)ᵀ·op(a)ᵀ)ᵀ.
      [
        [3, 40],
        [40, 200],
      ],
      [
        [200, 40],
        [40, 3],
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
    await initBackend({ backend: previous });
  });
});

describe.each(BACKENDS)('matMulFast with a frozen operand on %s', (backend) => {
  it('differentiates only the other operand: the stock gradient, one backward product, no leak', async () => {
    const previous = tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow';
    await initBackend({ backend });
    const count = async (f: () => tf.Tensor) => {
      const p = await tf.profile(() => {
        f().dispose();
      });
      return p.kernels.filter((k) => k.name === 'BatchMatMul').length;
    };
    for (const frozenSide of ['a', 'b'] as const) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const label = `frozen ${frozenSide} tA=${ta} tB=${tb}`;
          const a = tf.randomNormal(ta ? [7, 5] : [5, 7], 0, 1, 'float32', 11);
          const b = tf.randomNormal(tb ? [3, 7] : [7, 3], 0, 1, 'float32', 12);
          const w = tf.randomNormal([5, 3], 0, 1, 'float32', 13);
          const frozen = tf.variable(frozenSide === 'a' ? a : b, false);
          const other = frozenSide === 'a' ? b : a;
          const pair = (x: tf.Tensor) => (frozenSide === 'a' ? [frozen, x] : [x, frozen]);
          const ours = tf.grad((x: tf.Tensor) => {
            const [l, r] = pair(x);
            return tf.sum(tf.mul(matMulFast(l!, r!, ta, tb), w));
          });
          const [sa, sb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
            tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w)),
          )([a, b]);
          const before = tf.memory().numTensors;
          const g = ours(other);
          expect(tf.memory().numTensors, label).toBe(before + 1);
          expectClose(g.dataSync(), (frozenSide === 'a' ? sb : sa)!.dataSync(), {
            atol: 1e-4,
            rtol: 1e-5,
            label,
          });
          // forward + the other operand's product; a trainable pair runs three
          expect(await count(() => ours(other)), label).toBe(2);
          const trainable = tf.variable(frozen, true);
          expect(
            await count(() =>
              tf.grad((x: tf.Tensor) => {
                const [l, r] = frozenSide === 'a' ? [trainable, x] : [x, trainable];
                return tf.sum(tf.mul(matMulFast(l!, r!, ta, tb), w));
              })(other),
            ),
            `${label} (trainable)`,
          ).toBe(3);
          tf.dispose([a, b, w, frozen, trainable, g, sa!, sb!]);
        }
      }
    }
    await initBackend({ backend: previous });
  });
});

describe('embeddingLookup', () => {
  it('sums the gradient rows of repeated ids, on each of its backward paths', () => {
    const V = 6;
    const E = 4;
    const ids = [3, 1, 3, 0, 3, 5, 1];
    const dy = ids.map((_, n) => Array.from({ length: E }, (_, e) => Math.sin(1 + 3 * n + e)));
    // Float64 oracle: dW[v] = Σ over positions n with ids[n] = v of dy[n].
    const want = Array.from({ length: V }, (_, v) =>
      Array.from({ length: E }, (_, e) =>
        ids.reduce((s, id, n) => s + (id === v ? dy[n]![e]! : 0), 0),
      ),
    ).flat();
    const w = tf.randomNormal([V, E], 0, 1, 'float32', 4) as tf.Tensor2D;
    const idt = tf.tensor1d(ids, 'int32');
    const dyt = tf.tensor2d(dy);
    const grad = () => {
      const g = tf.grad((x: tf.Tensor) =>
        tf.sum(tf.mul(embeddingLookup(x as tf.Tensor2D, idt), dyt)),
      )(w);
      const out = Array.from(g.dataSync());
      g.dispose();
      return out;
    };
    const backend = tf.getBackend();
    const scatter = tf.getKernel('ScatterNd', backend);
    expect(tf.getKernel('UnsortedSegmentSum', backend) ?? scatter).toBeDefined();
    expectClose(grad(), want, { atol: 1e-5, label: `${backend} default path` });
    // The one-hot fallback, for backends with neither kernel: hide ScatterNd for a moment.
    if (scatter && !tf.getKernel('UnsortedSegmentSum', backend)) {
      tf.unregisterKernel('ScatterNd', backend);
      try {
        expectClose(grad(), want, { atol: 1e-5, label: `${backend} one-hot path` });
      } finally {
        tf.registerKernel(scatter);
      }
    }
    tf.dispose([w, idt, dyt]);
  });
});

describe.each(BACKENDS)('matMulFast with a broadcast operand on %s', (backend) => {
  it('reduces the gradient of a rank-2 right operand over the batch dimensions', async () => {
    const previous = tf.getBackend();
    await initBackend({ backend });
    // Oracle: the same product with b tiled explicitly, through stock ops (tile's gradient sums).
    const a = tf.randomNormal([2, 3, 5, 7], 0, 1, 'float32', 5);
    const b = tf.randomNormal([7, 4], 0, 1, 'float32', 6);
    const w = tf.randomNormal([2, 3, 5, 4], 0, 1, 'float32', 7);
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMulFast(x, y), w)));
    const stock = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(x, tf.tile(tf.reshape(y, [1, 1, 7, 4]), [2, 3, 1, 1])), w)),
    );
    const [oa, ob] = ours([a, b]);
    const [sa, sb] = stock([a, b]);
    expect(ob!.shape).toEqual([7, 4]);
    expectClose(oa!.dataSync(), sa!.dataSync(), { atol: 1e-4, rtol: 1e-5, label: 'dA' });
    expectClose(ob!.dataSync(), sb!.dataSync(), { atol: 1e-4, rtol: 1e-5, label: 'dB' });
    tf.dispose([a, b, w, oa!, ob!, sa!, sb!]);
    await initBackend({ backend: previous as 'wasm' | 'cpu' | 'tensorflow' });
  });
});

describe('geluNew', () => {
  it('matches gelu_new and its derivative computed in float64 (central differences), leaking nothing', () => {
    // float64 oracle, independent of the tfjs code: transformers' NewGELUActivation
    const g = (x: number) =>
      0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    const xs = [-6, -3, -1.5, -0.7, -0.1, 0, 0.05, 0.4, 1, 2.2, 4, 9];
    const h = 1e-6;
    const slope = xs.map((x) => (g(x + h) - g(x - h)) / (2 * h));
    const x = tf.tensor1d(xs);
    const w = tf.tensor1d(xs.map((_, i) => 0.5 + i / 7));
    const before = tf.memory().numTensors;
    // d/dx Σ w·gelu(x) = w·gelu'(x): a non-uniform upstream gradient
    const y = geluNew(x);
    const { value, grad } = tf.valueAndGrad((z: tf.Tensor) => tf.sum(tf.mul(geluNew(z), w)))(x);
    expectClose(y.dataSync(), xs.map(g), {
      atol: 1e-6,
      rtol: 1e-6,
      label: 'value',
    });
    expectClose(
      grad.dataSync(),
      slope.map((s, i) => s * (0.5 + i / 7)),
      {
        atol: 2e-6,
        rtol: 1e-5,
        label: 'gradient',
      },
    );
    tf.dispose([y, value, grad]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
  });
});

describe('matMulFast in bfloat16 (bf16)', () => {
  it('off tensorflow: a model refuses bf16, naming the backend', () => {
    if (tf.getBackend() === 'tensorflow') return;
    const m = CausalLM.random(randomConfigs().gpt2!, 1);
    expect(() => {
      m.bf16 = true;
    }).toThrow(/bf16 needs the tensorflow backend/);
    expect(m.bf16).toBe(false);
    m.dispose();
  });

  it('on tensorflow: value and both gradients within bfloat16 rounding of float32, broadcast reduced; a model in bf16 gives close logits', () => {
    if (tf.getBackend() !== 'tensorflow') return;
    const a = tf.randomNormal([2, 3, 16], 0, 1, 'float32', 1);
    const w = tf.variable(tf.randomNormal([8, 16], 0, 1, 'float32', 2));
    const dy = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 3);
    const run = (bf16: boolean) =>
      tf.tidy(() => {
        const f = (x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.mul(matMulFast(x, y, false, true, bf16), dy));
        const [ga, gw] = tf.grads(f)([a, w]);
        return [matMulFast(a, w, false, true, bf16), ga!, gw!];
      });
    const exact = run(false);
    const half = run(true);
    for (const [i, name] of ['value', 'dA', 'dW'].entries()) {
      const e = exact[i]!.dataSync();
      const h = half[i]!.dataSync();
      expect(half[i]!.shape, name).toEqual(exact[i]!.shape);
      // k ≤ 16 products of operands each rounded to 8 bits: a few 2⁻⁸ of the terms' size
      const scale = Math.max(...Array.from(e, Math.abs));
      let worst = 0;
      for (let k = 0; k < e.length; k++) worst = Math.max(worst, Math.abs(e[k]! - h[k]!));
      expect(worst, name).toBeLessThan(scale * 2 ** -5);
      expect(worst, `${name} is really bf16`).toBeGreaterThan(0);
    }
    const m = CausalLM.random(randomConfigs().gpt2!, 1, 0.5);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const mask = tf.ones([1, 4], 'int32') as tf.Tensor2D;
    const f32 = m.call(ids as tf.Tensor2D, mask);
    m.bf16 = true;
    const b16 = m.call(ids as tf.Tensor2D, mask);
    m.bf16 = false;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(f32, b16))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(0.05 * tf.tidy(() => tf.max(tf.abs(f32)).dataSync()[0]!));
    tf.dispose([a, w, dy, ...exact, ...half, ids, mask, f32, b16]);
    m.dispose();
  });
});

describe.each(BACKENDS)('layerNorm and rmsNorm on %s', (backend) => {
  // float64 oracles, independent of the tfjs code: torch's LayerNorm (population variance)
  // and Llama's RMSNorm, row by row over the last axis
  const norm64 = (x: number[], w: number[], b: number[] | undefined, D: number, eps: number) => {
    const out: number[] = [];
    for (let r = 0; r < x.length / D; r++) {
      const row = x.slice(r * D, (r + 1) * D);
      const mean = b ? row.reduce((s, v) => s + v, 0) / D : 0;
      const ms = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
      const rstd = 1 / Math.sqrt(ms + eps);
      row.forEach((v, i) => {
        out.push((v - mean) * rstd * w[i]! + (b ? b[i]! : 0));
      });
    }
    return out;
  };
  const central = (f: (v: number[]) => number, v: number[]) => numericGrad(f, v, 1e-6);

  it.each([
    ['layerNorm', true],
    ['rmsNorm', false],
  ] as const)(
    '%s: value and the gradients of x, weight and bias equal float64 central differences; frozen parameters get none',
    async (_name, centred) => {
      const prev = tf.getBackend();
      await tf.setBackend(backend);
      const [N, D, eps] = [3, 5, 1e-5];
      const xs = Array.from({ length: N * D }, (_, i) => Math.sin(i * 1.3) * 2 + (i % D) * 0.3);
      const ws = Array.from({ length: D }, (_, i) => 0.6 + i / 4);
      const bs = Array.from({ length: D }, (_, i) => (i - 2) / 5);
      const up = Array.from({ length: N * D }, (_, i) => Math.cos(i * 0.7)); // upstream gradient
      const loss64 = (x: number[], w: number[], b: number[]) =>
        norm64(x, w, centred ? b : undefined, D, eps).reduce((s, v, i) => s + v * up[i]!, 0);
      const x = tf.tensor2d(xs, [N, D]);
      const c = tf.tensor2d(up, [N, D]);
      for (const frozen of [false, true]) {
        const w = tf.variable(tf.tensor1d(ws), !frozen);
        const b = tf.variable(tf.tensor1d(bs), !frozen);
        const before = tf.memory().numTensors;
        const apply = (xx: tf.Tensor2D, ww: tf.Tensor1D, bb: tf.Tensor1D) =>
          centred ? layerNorm(xx, ww, bb, eps) : rmsNorm(xx, ww, eps);
        const y = apply(x, w, b);
        expectClose(y.dataSync(), norm64(xs, ws, centred ? bs : undefined, D, eps), {
          atol: 2e-6,
          rtol: 1e-5,
          label: 'value',
        });
        const loss = (xx: tf.Tensor) => tf.sum(tf.mul(apply(xx as tf.Tensor2D, w, b), c));
        let gx: tf.Tensor | undefined;
        const { kernels } = await tf.profile(() => {
          gx = tf.grad(loss)(x);
        });
        expectClose(
          gx!.dataSync(),
          central((v) => loss64(v, ws, bs), xs),
          {
            atol: 1e-5,
            rtol: 1e-4,
            label: `d x (frozen ${frozen})`,
          },
        );
        tf.dispose([y, gx!]);
        // the parameters' gradients are the op's only sums down to [D]; a frozen parameter is
        // not an input of the op, so its gradient is never computed
        const paramSums = kernels.filter(
          (k) => k.name === 'Sum' && k.outputShapes[0]?.join() === String(D),
        ).length;
        expect(paramSums).toBe(frozen ? 0 : centred ? 2 : 1);
        if (!frozen) {
          const { value, grads } = tf.variableGrads(
            () => loss(x) as tf.Scalar,
            centred ? [w, b] : [w],
          );
          const params = centred ? (['weight', 'bias'] as const) : (['weight'] as const);
          for (const which of params) {
            const at = which === 'weight' ? ws : bs;
            const f64 = (v: number[]) =>
              which === 'weight' ? loss64(xs, v, bs) : loss64(xs, ws, v);
            expectClose(grads[(which === 'weight' ? w : b).name]!.dataSync(), central(f64, at), {
              atol: 1e-5,
              rtol: 1e-4,
              label: `d ${which}`,
            });
          }
          tf.dispose([value, ...Object.values(grads)]);
        }
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([w, b]);
      }
      tf.dispose([x, c]);
      await tf.setBackend(prev);
    },
  );
});

describe.each(BACKENDS)('attentionWeights on %s', (backend) => {
  // float64 oracle: row-wise softmax of scale(scores) + bias, max-subtracted
  const weights64 = (
    x: number[],
    bias: number[],
    [B, G, RT, S]: number[],
    groups: number,
    scale: (v: number) => number,
  ) => {
    const T = RT! / groups;
    const out: number[] = [];
    for (let b = 0; b < B!; b++)
      for (let g = 0; g < G!; g++)
        for (let r = 0; r < RT!; r++) {
          const row = Array.from({ length: S! }, (_, s) => {
            const at = ((b * G! + g) * RT! + r) * S! + s;
            return scale(x[at]!) + bias[(b * T + (r % T)) * S! + s]!;
          });
          const m = Math.max(...row);
          const z = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
          for (const v of row) out.push(Math.exp(v - m) / z);
        }
    return out;
  };

  it.each([
    ['÷ √d, one query head per kv head', 1, { divisor: Math.sqrt(8) }],
    ['× attention_scale, grouped-query (2 query heads per kv head)', 2, { factor: 0.3 }],
  ] as const)(
    '%s: value and gradient equal float64 central differences (causal −1e9 bias), no leak',
    async (_name, groups, by) => {
      const prev = tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow';
      await initBackend({ backend });
      const [B, G, T, S] = [2, 2, 3, 4];
      const shape = [B, G, groups * T, S];
      const n = B * G * groups * T * S;
      const xs = Array.from({ length: n }, (_, i) => Math.sin(i * 0.9) * 3);
      const up = Array.from({ length: n }, (_, i) => Math.cos(i * 0.4));
      // causal with one past key; batch row 1 pads its first key
      const bias = Array.from({ length: B * T * S }, (_, i) => {
        const [b, t, s] = [Math.floor(i / (T * S)), Math.floor(i / S) % T, i % S];
        return s <= t + 1 && !(b === 1 && s === 0) ? 0 : -1e9;
      });
      const scale = (v: number) => ('divisor' in by ? v / by.divisor : v * by.factor);
      const x = tf.tensor4d(xs, shape as [number, number, number, number]);
      const bt = tf.tensor4d(bias, [B, 1, T, S]);
      const c = tf.tensor4d(up, shape as [number, number, number, number]);
      const before = tf.memory().numTensors;
      const y = attentionWeights(x, bt, by, groups);
      expectClose(y.dataSync(), weights64(xs, bias, shape, groups, scale), {
        atol: 1e-6,
        rtol: 1e-5,
        label: 'value',
      });
      const loss64 = (v: number[]) =>
        weights64(v, bias, shape, groups, scale).reduce((acc, p, i) => acc + p * up[i]!, 0);
      const gx = tf.grad((z: tf.Tensor) =>
        tf.sum(tf.mul(attentionWeights(z as tf.Tensor4D, bt, by, groups), c)),
      )(x);
      expectClose(gx.dataSync(), numericGrad(loss64, xs), {
        atol: 1e-5,
        rtol: 1e-4,
        label: 'd scores',
      });
      tf.dispose([y, gx]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, bt, c]);
      await initBackend({ backend: prev });
    },
  );

  it('keeps only the weights for the backward pass: a 4-layer chain peaks below the stock ops', async () => {
    const prev = tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow';
    await initBackend({ backend });
    const [B, H, T] = [2, 4, 64];
    const bias = tf.tidy(() =>
      tf.reshape(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9), [1, 1, T, T]),
    ) as tf.Tensor4D;
    const w = tf.variable(tf.randomNormal([B, H, T, T], 0, 1, 'float32', 7));
    const by = { divisor: 4 };
    const stock = (z: tf.Tensor) => tf.softmax(tf.add(tf.div(z, by.divisor), bias));
    const ours = (z: tf.Tensor) => attentionWeights(z as tf.Tensor4D, bias, by);
    const peak = async (op: (z: tf.Tensor) => tf.Tensor) => {
      const info = await tf.profile(() => {
        const { value, grads } = variableGrads(() => {
          let h: tf.Tensor = w;
          for (let l = 0; l < 4; l++) h = tf.mul(op(h), 8); // 8: keeps the scores O(1)
          return tf.sum(tf.mul(h, h)) as tf.Scalar;
        }, [w]);
        tf.dispose([value, ...Object.values(grads)]);
      });
      return info.peakBytes - info.newBytes;
    };
    const before = tf.memory().numTensors;
    const [a, b] = [await peak(stock), await peak(ours)];
    const scoreBytes = B * H * T * T * 4;
    // Per layer, at the end of the forward pass (the peak), the stock ops hold what ours do
    // plus four [B, H, T, T] tensors as tfjs counts bytes (it counts a saved clone, which
    // shares its data, as bytes too): the scaled scores, the masked ones (freed only when the
    // forward pass ends) and the clones `RealDiv` and `Add` save of their inputs. Holding any
    // one of them (e.g. saving the raw scores as well) fails this.
    expect((a - b) / (4 * scoreBytes)).toBeGreaterThan(3.5);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([bias, w]);
    await initBackend({ backend: prev });
  });
});

describe.each(BACKENDS)('applyRope on %s', (backend) => {
  it("is transformers' x·cos + rotate_half(x)·sin, value and gradient (float64 oracle)", async () => {
    const prev = tf.getBackend() as 'wasm' | 'cpu' | 'tensorflow';
    await initBackend({ backend });
    const [B, H, T, D] = [2, 3, 5, 8];
    const r = rng(11);
    const xs = Array.from({ length: B * H * T * D }, () => r.normal());
    const cs = Array.from({ length: B * T * D }, () => r.normal());
    const sn = Array.from({ length: B * T * D }, () => r.normal());
    const up = Array.from({ length: xs.length }, () => r.normal());
    // rotate_half as transformers writes it: cat(−x[..., D/2:], x[..., :D/2]); tables broadcast over heads
    const rope64 = (v: number[]) =>
      v.map((xi, i) => {
        const [b, t, d] = [Math.floor(i / (H * T * D)), Math.floor(i / D) % T, i % D];
        const rot = d < D / 2 ? -v[i + D / 2]! : v[i - D / 2]!;
        const k = (b * T + t) * D + d;
        return xi * cs[k]! + rot * sn[k]!;
      });
    const x = tf.tensor4d(xs, [B, H, T, D]);
    const c = tf.tensor4d(cs, [B, 1, T, D]);
    const s = tf.tensor4d(sn, [B, 1, T, D]);
    const u = tf.tensor4d(up, [B, H, T, D]);
    const before = tf.memory().numTensors;
    const y = applyRope(x, c, s);
    expectClose(y.dataSync(), rope64(xs), { atol: 1e-6, rtol: 1e-5, label: 'value' });
    const loss64 = (v: number[]) => rope64(v).reduce((acc, yi, i) => acc + yi * up[i]!, 0);
    const gx = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(applyRope(z as tf.Tensor4D, c, s), u)))(x);
    expectClose(gx.dataSync(), numericGrad(loss64, xs), { atol: 1e-5, rtol: 1e-4, label: 'dx' });
    tf.dispose([y, gx]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, c, s, u]);
    await initBackend({ backend: prev });
  });
});
