import { matMulBf16 } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { type RopeSpec, ropeFrequencies } from './arch/rope.js';

/** Rows of `weight [V, E]` at `ids [N]` → `[N, E]`, with a gradient that works on every backend. */
export function embeddingLookup(weight: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const [V] = weight.shape;
  const f = tf.customGrad(((w: tf.Tensor, save: tf.GradSaveFunc) => {
    // Save the ids: the caller's copy may be disposed before the backward pass.
    save([ids]);
    return {
      value: tf.gather(w, ids),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [
        embeddingGrad(dy as tf.Tensor2D, saved[0] as tf.Tensor1D, V),
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(weight) as tf.Tensor2D;
}

const ONE_HOT_ROWS = 256;

/**
 * `dW[v] = Σ_{n: ids[n] = v} dy[n]`: UnsortedSegmentSum (the gather gradient) where the
 * backend has it; else ScatterNd, which sums duplicate indices (tfjs-wasm, ~40–260× faster
 * than a one-hot product there); else `onehot(ids)ᵀ·dy` in row chunks so the one-hot block
 * stays small, transposed explicitly because tfjs-wasm's transposed matmul is its slow path.
 */
function embeddingGrad(dy: tf.Tensor2D, ids: tf.Tensor1D, V: number): tf.Tensor2D {
  return tf.tidy(() => {
    const backend = tf.getBackend();
    if (tf.getKernel('UnsortedSegmentSum', backend)) {
      return tf.unsortedSegmentSum(dy, ids, V) as tf.Tensor2D;
    }
    const [N, E] = dy.shape;
    if (tf.getKernel('ScatterNd', backend)) {
      return tf.scatterND(tf.reshape(ids, [N, 1]), dy, [V, E]) as tf.Tensor2D;
    }
    let acc: tf.Tensor2D | undefined;
    for (let s = 0; s < N; s += ONE_HOT_ROWS) {
      const c = Math.min(ONE_HOT_ROWS, N - s);
      const oh = tf.transpose(tf.cast(tf.oneHot(tf.slice(ids, [s], [c]), V), 'float32'));
      const part = tf.matMul(oh, tf.slice(dy, [s, 0], [c, E])) as tf.Tensor2D;
      acc = acc ? (tf.add(acc, part) as tf.Tensor2D) : part;
    }
    return acc!;
  });
}

/**
 * `x·Wᵀ + b` for nn.Linear weights `[out, in]`, or `x·W + b` for GPT-2 Conv1D `[in, out]`;
 * `bf16`: the product in bfloat16 ({@link matMulFast}).
 */
export function linear(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  layout: 'out_in' | 'in_out',
  bf16 = false,
): tf.Tensor2D {
  const y = matMulFast(x, weight, false, layout === 'out_in', bf16);
  return bias ? (tf.add(y, bias) as tf.Tensor2D) : y;
}

/**
 * LayerNorm over the last axis, `(x − mean)·rstd·weight + bias` with `rstd = 1/√(var + eps)`
 * (population variance, as torch), as one custom op: 9 ops forward and 11 backward, where
 * tfjs's autodiff of the same formula runs ~3× as many (per op, ~30 µs of engine bookkeeping
 * on top of the kernel). The backward pass is the closed form
 * `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))`, `g = dy·weight`, from the saved `x̂` and `rstd`. A
 * frozen weight or bias (`trainable: false`) is closed over and gets no gradient.
 */
export function layerNorm(
  x: tf.Tensor2D,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
): tf.Tensor2D {
  return normOp(x, weight, bias, eps) as tf.Tensor2D;
}

/**
 * RMSNorm over the last axis, `x·rstd·weight` with `rstd = 1/√(mean(x²) + eps)`, as one custom
 * op (6 ops forward, 9 backward: `dx = rstd·(g − x̂·mean(g·x̂))`, `g = dy·weight`, x̂ = x·rstd
 * recomputed from the saved input). A frozen weight gets no gradient.
 */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  return normOp(x, weight, undefined, eps) as tf.Tensor2D;
}

/** LayerNorm (with `bias`, centred) or RMSNorm (without) over the last axis of `x`. */
function normOp(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  eps: number,
): tf.Tensor {
  const centred = bias !== undefined;
  const needW = !isFrozen(weight);
  const needB = centred && !isFrozen(bias);
  const lead = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    const w = needW ? (args[1] as tf.Tensor) : weight;
    const b = needB ? (args[needW ? 2 : 1] as tf.Tensor) : bias;
    const [xhat, rstd, y] = tf.tidy(() => {
      const xc = centred ? tf.sub(xi, tf.mean(xi, -1, true)) : xi;
      const r = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
      const xh = tf.mul(xc, r);
      const scaled = tf.mul(xh, w);
      return [xh, r, b ? tf.add(scaled, b) : scaled];
    });
    // LayerNorm saves x̂ (its input is not x̂); RMSNorm saves its input and recomputes x̂
    save([centred ? xhat! : xi, rstd!, w]);
    if (!centred) xhat!.dispose();
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [s0, r, sw] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          const d = dy as tf.Tensor;
          const xh = centred ? s0 : tf.mul(s0, r);
          const g = tf.mul(d, sw);
          const proj = tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true));
          const inner = centred ? tf.sub(tf.sub(g, tf.mean(g, -1, true)), proj) : tf.sub(g, proj);
          const grads: tf.Tensor[] = [tf.mul(inner, r)];
          if (needW) grads.push(tf.sum(tf.mul(d, xh), lead));
          if (needB) grads.push(tf.sum(d, lead));
          return grads;
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const inputs = [x, ...(needW ? [weight] : []), ...(needB ? [bias!] : [])];
  return f(...inputs) as tf.Tensor;
}

/**
 * GPT-2's `gelu_new`: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), computed as
 * x·σ(s) with s = 2u = x·(2c + 2c·0.044715·x²), c = √(2/π) — the same function
 * (½(1 + tanh(u)) = σ(2u)) in 6 elementwise ops instead of 9, and no `1 + tanh` cancellation
 * for negative x; no `tf.pow` (it and its gradient, which also computes the exponent's
 * derivative with a log, cost ~5% of a GPT-2 training step on wasm). A custom gradient
 * `σ(s)·(1 + x·s′·(1 − σ(s)))`, s′ = 2c + 6c·0.044715·x², with σ(s) recomputed from the
 * saved input (14 ops instead of 19): the tape keeps x alone instead of the
 * `[tokens, 4·hidden]` intermediates its ops would save (a third of GPT-2's activation memory).
 */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const c2 = 2 * Math.sqrt(2 / Math.PI);
  const k = 0.044715;
  // s = 2u from x and x² (the backward pass reuses x² for s′)
  const s = (z: tf.Tensor, z2: tf.Tensor) => tf.mul(z, tf.add(tf.mul(z2, c2 * k), c2));
  const f = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
    save([z]);
    return {
      value: tf.tidy(() => tf.mul(z, tf.sigmoid(s(z, tf.square(z))))),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const z0 = saved[0]!;
          const z2 = tf.square(z0);
          const sg = tf.sigmoid(s(z0, z2));
          const ds = tf.add(tf.mul(z2, 3 * c2 * k), c2);
          const d = tf.mul(sg, tf.add(tf.mul(tf.mul(z0, ds), tf.sub(1, sg)), 1));
          return [tf.mul(dy as tf.Tensor, d)];
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/** Hugging Face's rotate_half: `[x1, x2] → [−x2, x1]` on the last axis. */
export function rotateHalf(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const d = x.shape[3];
    const [x1, x2] = tf.split(x, [d / 2, d / 2], 3);
    return tf.concat([tf.neg(x2!), x1!], 3) as tf.Tensor4D;
  });
}

/**
 * RoPE tables for positions `[B, T]`: cos and sin of `pos·inv_freq` duplicated over the two
 * halves (`emb = cat(freqs, freqs)`), times the type's attention scaling (YaRN), shape
 * `[B, 1, T, headDim]`, float32 as transformers computes.
 */
export function ropeTables(
  positions: Int32Array,
  B: number,
  T: number,
  headDim: number,
  rope: RopeSpec,
): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const half = headDim / 2;
  let maxPosition = 0;
  for (const p of positions) maxPosition = Math.max(maxPosition, p);
  const { invFreq, scaling } = ropeFrequencies(rope, maxPosition);
  const cos = new Float32Array(B * T * headDim);
  const sin = new Float32Array(B * T * headDim);
  for (let n = 0; n < B * T; n++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(positions[n]! * invFreq[i]!);
      const c = Math.fround(Math.cos(a)) * scaling;
      const s = Math.fround(Math.sin(a)) * scaling;
      cos[n * headDim + i] = c;
      cos[n * headDim + half + i] = c;
      sin[n * headDim + i] = s;
      sin[n * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor4d(cos, [B, 1, T, headDim]), sin: tf.tensor4d(sin, [B, 1, T, headDim]) };
}

/**
 * `x` times the signed permutation that rotates halves: `sign` 1 is {@link rotateHalf}
 * (`[x1, x2] → [−x2, x1]`), −1 its transpose (`[x2, −x1]`, the inverse). One small matrix
 * product over the last axis: the split, negation and concatenation it replaces were three
 * kernels each way, costlier than this product on wasm (11% of the tiny model's step).
 * Exact for finite values (each output is one ±x plus zeros); a non-finite entry makes its
 * whole row NaN (0·∞), where the split left it alone — the step's finite guard stops either.
 */
function rotateHalves(x: tf.Tensor, sign: 1 | -1): tf.Tensor {
  const d = x.shape.at(-1)!;
  const h = d / 2;
  const p = new Float32Array(d * d);
  for (let j = 0; j < h; j++) {
    p[(h + j) * d + j] = -sign; // output j takes −x2[j]
    p[j * d + h + j] = sign; // output h + j takes x1[j]
  }
  return tf.reshape(tf.matMul(tf.reshape(x, [-1, d]), tf.tensor2d(p, [d, d])), x.shape);
}

/**
 * Hugging Face's `apply_rotary_pos_emb` for one of q, k: `x·cos + rotate_half(x)·sin`, with
 * its gradient written out (`dy·cos + rotate_halfᵀ(dy·sin)`; none for the tables).
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const f = tf.customGrad(((xs: tf.Tensor, save: tf.GradSaveFunc) => {
    // Save the tables: the caller's copies may be disposed before the backward pass.
    save([cos, sin]);
    return {
      value: tf.add(tf.mul(xs, cos), tf.mul(rotateHalves(xs, 1), sin)),
      gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) =>
        tf.add(tf.mul(dy, c!), rotateHalves(tf.mul(dy, s!), -1)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.tidy(() => f(x) as tf.Tensor4D);
}

/** Additive attention bias `[B, 1, T, S]`: 0 where query t may see key s, −1e9 elsewhere. */
export function attentionBias(
  mask: Int32Array,
  B: number,
  S: number,
  T: number,
  window = Infinity,
): tf.Tensor4D {
  const past = S - T;
  const bias = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let s = 0; s < S; s++) {
        const ok = s <= past + t && past + t - s < window && mask[b * S + s] === 1;
        bias[(b * T + t) * S + s] = ok ? 0 : -1e9;
      }
    }
  }
  return tf.tensor4d(bias, [B, 1, T, S]);
}

/** How attention scores are scaled: divided by `divisor` (`√headDim`) or multiplied by `factor`. */
export type AttentionScale = { divisor: number } | { factor: number };

/** `t / divisor` or `t · factor` (a factor of 1 returns `t` itself). */
export function scaleScores<T extends tf.Tensor>(t: T, by: AttentionScale): T {
  if ('divisor' in by) return tf.div(t, by.divisor);
  return by.factor === 1 ? t : tf.mul(t, by.factor);
}

/**
 * Attention weights `softmax(scale(scores) + bias)` over the last axis as one custom op, where
 * `scale` divides by `divisor` (`√headDim`, as transformers' eager attention) or else
 * multiplies by `factor` (a config's `attention_scale`), and `bias` (a constant: no gradient)
 * broadcasts as `tf.add` does. `groups` > 1 is grouped-query attention's layout: `scores` is
 * `[B, kvHeads, groups·T, S]` and `bias` `[B, 1, T, S]`. The tape keeps only the weights `p`:
 * tfjs's autodiff of the same three ops keeps the raw and the scaled scores too (its `RealDiv`
 * and `Add` save their inputs) — two more `[B, heads, T, S]` tensors per layer until the
 * backward pass reaches it. Backward: `d scores = scale(p·(dy − Σ dy·p))`.
 */
export function attentionWeights(
  scores: tf.Tensor4D,
  bias: tf.Tensor4D,
  by: AttentionScale,
  groups = 1,
): tf.Tensor4D {
  const scale = (t: tf.Tensor) => scaleScores(t, by);
  const [B, G, RT, S] = scores.shape;
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const p = tf.tidy(() => {
      const z =
        groups === 1
          ? tf.add(scale(x), bias)
          : tf.reshape(
              tf.add(
                tf.reshape(scale(x), [B, G, groups, RT / groups, S]),
                tf.reshape(bias, [bias.shape[0], 1, 1, RT / groups, S]),
              ),
              [B, G, RT, S],
            );
      return tf.softmax(z);
    });
    save([p]);
    return {
      value: p,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const pp = saved[0]!;
          const d = dy as tf.Tensor;
          const dot = tf.sum(tf.mul(d, pp), -1, true);
          return [scale(tf.mul(pp, tf.sub(d, dot)))];
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(scores) as tf.Tensor4D;
}

/** Positions as transformers' generate() makes them: cumsum(mask) − 1, pads at 1; the last T columns. */
export function positionsFromMask(mask: Int32Array, B: number, S: number, T: number): Int32Array {
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let s = 0; s < S; s++) {
      const m = mask[b * S + s]!;
      c += m;
      if (s >= S - T) out[b * T + s - (S - T)] = m ? c - 1 : 1;
    }
  }
  return out;
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const r = t.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(t, perm);
}

/**
 * `op(a)·op(b)` on wasm without a transposed kernel, choosing which operand XNNPACK packs.
 * XNNPACK re-packs its right operand on every call with a new tensor (~8–18 ns per element,
 * more than the product itself when the left operand has few rows), while a transpose costs
 * ~6–8 ns per element. So when the right operand is the big one (a weight matrix against a
 * few tokens) this computes `(op(b)ᵀ·op(a)ᵀ)ᵀ` instead: the big operand streams as the left
 * side — often with no copy at all, since `op(b)ᵀ` is `b` itself when `transposeB` — and only
 * the small one is packed. Cost model in elements touched: pack = 2, transpose = 1.
 */
function wasmProduct(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean) {
  const r = a.rank;
  const M = a.shape[transposeA ? r - 1 : r - 2]!;
  const N = b.shape[transposeB ? b.rank - 2 : b.rank - 1]!;
  const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0) + 2 * b.size;
  const swapped = (transposeB ? 0 : b.size) + (transposeA ? 0 : a.size) + 2 * a.size + M * N;
  if (r !== 2 || b.rank !== 2 || direct <= swapped) {
    return tf.matMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b);
  }
  return swapLast(tf.matMul(transposeB ? b : swapLast(b), transposeA ? a : swapLast(a)));
}

/**
 * `a·b` (optionally transposed) that, on the wasm backend, only ever calls the untransposed
 * matmul kernel: tfjs-wasm's transposed paths (used by `matMul(…, true)` and by the stock
 * MatMul gradient) skip XNNPACK and run ~8× slower, while an explicit transpose costs one
 * pass over the operand. It also picks the operand order that packs less (see
 * `wasmProduct`). The custom gradient computes every backward product the same way and
 * keeps only the inputs alive, not transposed copies. Other backends get plain `tf.matMul`
 * products with the same gradient (which reduces broadcast batch dimensions). `bf16` (the
 * tensorflow backend only): every product, forward and backward, in bfloat16 as torch's CPU
 * autocast computes it ({@link matMulBf16}); the gradients come back as float32.
 */
export function matMulFast<T extends tf.Tensor>(
  a: T,
  b: T,
  transposeA = false,
  transposeB = false,
  bf16 = false,
): T {
  // Off wasm the products are plain tf.matMul, but the gradient is still this one: tfjs-core's
  // own BatchMatMul gradient does not reduce broadcast batch dimensions (it throws "gradient
  // of input 'b' has shape 2,3,7,4, which does not match 7,4" on tensorflow and cpu).
  const wasm = tf.getBackend() === 'wasm';
  const product = (x: tf.Tensor, y: tf.Tensor, ta: boolean, tb: boolean) =>
    bf16 ? matMulBf16(x, y, ta, tb) : wasm ? wasmProduct(x, y, ta, tb) : tf.matMul(x, y, ta, tb);
  // A frozen operand (a LoRA run's base weights) gets no gradient: it is not an input of the
  // custom op, so the backward pass skips its product — a third of a linear layer's FLOPs —
  // and the [out, in]-sized gradient it would allocate (544 MB for Qwen2.5-0.5B's tied head).
  const needA = !isFrozen(a);
  const needB = !isFrozen(b);
  if (!needA && !needB) return product(a, b, transposeA, transposeB) as T;
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const x = needA ? (args.shift() as tf.Tensor) : a;
    const y = needB ? (args.shift() as tf.Tensor) : b;
    // only inputs are saved; a frozen operand is a variable, alive for the whole pass
    save([needA ? x : y, ...(needA && needB ? [y] : [])]);
    return {
      value: product(x, y, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const sa = needA ? saved[0]! : a;
        const sb = needB ? saved[needA ? 1 : 0]! : b;
        const d = dy as tf.Tensor;
        // C = op(A)·op(B): d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC, transposed back
        // where the operand itself was transposed. Broadcast batch dimensions (a rank-2
        // operand against rank-4) reduce back to the operand's shape.
        const grads: tf.Tensor[] = [];
        if (needA)
          grads.push(
            reduceTo(
              transposeA ? product(sb, d, transposeB, true) : product(d, sb, false, !transposeB),
              sa.rank,
            ),
          );
        if (needB)
          grads.push(
            reduceTo(
              transposeB ? product(d, sa, true, transposeA) : product(sa, d, !transposeA, false),
              sb.rank,
            ),
          );
        return grads;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (needA && needB ? f(a, b) : f(needA ? a : b)) as T;
}

/** A variable marked `trainable: false` (frozen): nothing differentiates with respect to it. */
function isFrozen(t: tf.Tensor): boolean {
  return (t as Partial<tf.Variable>).trainable === false;
}

/** `g` summed over its leading dimensions down to `rank` (a broadcast operand's gradient). */
function reduceTo(g: tf.Tensor, rank: number): tf.Tensor {
  if (g.rank <= rank) return g;
  const r = tf.sum(
    g,
    Array.from({ length: g.rank - rank }, (_, i) => i),
  );
  g.dispose();
  return r;
}
