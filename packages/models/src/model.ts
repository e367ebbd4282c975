import { hostValues, releaseBf16Weights, tensorflowBackend } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { architectureOf } from './arch/index.js';
import type { Architecture, ArchModel, KVCache, ModelConfig } from './arch/types.js';
import { parameterShapes } from './config.js';
import {
  type AttentionScale,
  attentionBias,
  attentionWeights,
  linear,
  matMulFast,
  positionsFromMask,
  scaleScores,
} from './layers.js';

/** Past keys and values per layer, `[B, nKV, S, headDim]` (keys after RoPE). */
export type { KVCache };

export function disposeCache(cache: KVCache | undefined): void {
  if (cache) tf.dispose(cache.layers.flatMap((l) => [l.k, l.v]));
}

/** A LoRA adapter on one linear module. */
export interface LoraModule {
  /** [r, in] */
  a: tf.Variable;
  /** [out, r] */
  b: tf.Variable;
  /** lora_alpha / r */
  scale: number;
  dropout: number;
}

export interface ForwardOptions {
  /** past keys/values; the returned cache covers past + these tokens */
  cache?: KVCache;
  /** return a cache (default: only when one was given) */
  useCache?: boolean;
  /** enables LoRA dropout */
  training?: boolean;
  /** return the final hidden states `[B, T, E]` in `logits` instead of the LM head's output */
  hiddenOnly?: boolean;
}

export interface ForwardOutput {
  /** [B, T, V] */
  logits: tf.Tensor3D;
  cache?: KVCache;
}

/**
 * A causal LM of any registered architecture (`arch/`) whose parameters are tf.Variables named exactly as
 * the Hugging Face state_dict names them.
 */
export class CausalLM implements ArchModel {
  readonly config: ModelConfig;
  private readonly arch: Architecture;
  readonly params: Map<string, tf.Variable>;
  /** LoRA adapters by module name (e.g. `model.layers.0.self_attn.q_proj`) */
  readonly lora = new Map<string, LoraModule>();
  private disposed = false;
  private matmulBf16 = false;

  /**
   * The linear layers' matmuls (projections, LM head, LoRA), forward and backward, in
   * bfloat16 with the weights cast once per value, the rest in float32: torch's CPU autocast
   * under TRL's `bf16: true`, except that the attention products (QKᵀ, ·V) stay float32 —
   * their bfloat16 casts cost more than the bfloat16 product saves at these sizes, and
   * float32 there is the more precise side. The tensorflow backend only (TensorFlow's
   * bfloat16 kernels; tfjs has no bfloat16 dtype): setting it elsewhere throws. Default false.
   */
  get bf16(): boolean {
    return this.matmulBf16;
  }

  set bf16(on: boolean) {
    if (on && !tensorflowBackend())
      throw new Error(
        `bf16 needs the tensorflow backend (tfjs-node: TensorFlow's bfloat16 matmuls); this run is on '${tf.getBackend()}'`,
      );
    this.matmulBf16 = on;
    if (!on) releaseBf16Weights();
  }

  constructor(config: ModelConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    this.arch = architectureOf(config);
    const shapes = parameterShapes(config);
    for (const [name, shape] of shapes) {
      const v = params.get(name);
      if (!v) throw new Error(`missing parameter '${name}' (shape [${shape}])`);
      if (v.shape.join() !== shape.join())
        throw new Error(`parameter '${name}' has shape [${v.shape}], expected [${shape}]`);
    }
    for (const name of params.keys()) {
      if (!shapes.has(name))
        throw new Error(`unexpected parameter '${name}' for ${config.modelType}`);
    }
  }

  /** A randomly initialised model (N(0, std²) weights, unit norms, zero biases), seeded. */
  static random(config: ModelConfig, seed = 0, std = 0.02): CausalLM {
    const params = new Map<string, tf.Variable>();
    let s = seed;
    for (const [name, shape] of parameterShapes(config)) {
      const init = /(ln_\d|ln_f|layernorm|norm)\.weight$/.test(name)
        ? tf.fill(shape, architectureOf(config).normWeightInit ?? 1)
        : name.endsWith('.bias')
          ? tf.zeros(shape)
          : tf.randomNormal(shape, 0, std, 'float32', s++);
      params.set(name, tf.variable(init, true));
      init.dispose();
    }
    return new CausalLM(config, params);
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`missing parameter '${name}'`);
    return v;
  }

  private maybe(name: string): tf.Variable | undefined {
    return this.params.get(name);
  }

  /** A parameter by its Hugging Face name (ArchModel). */
  param(name: string): tf.Tensor {
    return this.p(name);
  }

  /** A linear module by its HF name, with its LoRA adapter if any (ArchModel). */
  linear(
    x: tf.Tensor2D,
    module: string,
    layout: 'out_in' | 'in_out',
    training: boolean,
  ): tf.Tensor2D {
    const y = linear(
      x,
      this.p(`${module}.weight`) as tf.Tensor as tf.Tensor2D,
      this.maybe(`${module}.bias`) as tf.Tensor as tf.Tensor1D | undefined,
      layout,
      this.matmulBf16,
    );
    const ad = this.adaptersOff ? undefined : this.lora.get(module);
    if (!ad) return y;
    const xin = training && ad.dropout > 0 ? tf.dropout(x, ad.dropout) : x;
    const bf16 = this.matmulBf16;
    const low = matMulFast(
      matMulFast(xin, ad.a as tf.Tensor as tf.Tensor2D, false, true, bf16),
      ad.b as tf.Tensor as tf.Tensor2D,
      false,
      true,
      bf16,
    );
    return tf.add(y, tf.mul(low, ad.scale)) as tf.Tensor2D;
  }

  /** `(inputIds, attentionMask) → logits`, the shape core-logprob's `sequenceLogprobs` takes. */
  readonly call = (inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor3D =>
    this.forward(inputIds, attentionMask).logits;

  /** Training-mode forward (LoRA dropout on). */
  private adaptersOff = false;

  /**
   * `call` with every LoRA adapter disabled: the base model (PEFT's `disable_adapter()`, which
   * TRL uses as the reference of a LoRA run, so no copy of the weights is needed).
   */
  readonly callWithoutAdapters = (
    inputIds: tf.Tensor2D,
    attentionMask: tf.Tensor2D,
  ): tf.Tensor3D => {
    this.adaptersOff = true;
    try {
      return this.call(inputIds, attentionMask);
    } finally {
      this.adaptersOff = false;
    }
  };

  readonly callTraining = (inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor3D =>
    this.forward(inputIds, attentionMask, { training: true }).logits;

  /**
   * Logits for `inputIds [B, T]`. `attentionMask` is `[B, S]` with S = past + T (1 = real
   * token). Positions follow transformers' generate(): cumsum(mask) − 1, so left padding works.
   */
  forward(
    inputIds: tf.Tensor2D,
    attentionMask: tf.Tensor2D,
    options: ForwardOptions = {},
  ): ForwardOutput {
    if (this.disposed) throw new Error('model was disposed');
    const [B, T] = inputIds.shape;
    const past = options.cache?.layers[0]?.k.shape[2] ?? 0;
    const S = past + T;
    if (attentionMask.shape[0] !== B || attentionMask.shape[1] !== S) {
      throw new Error(
        `attentionMask shape [${attentionMask.shape}] must be [${B}, ${S}] (past ${past} + ${T} new tokens)`,
      );
    }
    const mask = Int32Array.from(hostValues(attentionMask));
    const positions = positionsFromMask(mask, B, S, T);
    this.arch.checkPositions?.(this.config, Math.max(...positions));
    const wantCache = options.useCache ?? options.cache !== undefined;
    const training = options.training ?? false;
    const newCache: KVCache = { layers: [] };
    const logits = tf.tidy(() => {
      const ids = tf.reshape(tf.cast(inputIds, 'int32'), [B * T]) as tf.Tensor1D;
      this.pass = {
        bias: attentionBias(mask, B, S, T),
        slidingBias:
          this.config.slidingWindow !== undefined
            ? attentionBias(mask, B, S, T, this.config.slidingWindow)
            : undefined,
        past: options.cache,
        store: wantCache ? newCache : undefined,
      };
      let h: tf.Tensor2D;
      try {
        h = this.arch.hidden(this, { ids, positions, B, T, training });
      } finally {
        this.pass = undefined;
      }
      for (const l of newCache.layers) {
        tf.keep(l.k);
        tf.keep(l.v);
      }
      if (options.hiddenOnly) return tf.reshape(h, [B, T, this.config.hiddenSize]) as tf.Tensor3D;
      let out = matMulFast(h, this.head(), false, true, this.matmulBf16);
      const cap = this.config.finalLogitSoftcap;
      if (cap !== undefined) out = tf.mul(tf.tanh(tf.div(out, cap)), cap) as tf.Tensor2D;
      return tf.reshape(out, [B, T, this.config.vocabSize]) as tf.Tensor3D;
    });
    return wantCache ? { logits, cache: newCache } : { logits };
  }

  /** Final (normed) hidden states `[B, T, E]`, the input of the LM head (reward models use them). */
  hidden(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, training = false): tf.Tensor3D {
    return this.forward(inputIds, attentionMask, { hiddenOnly: true, training }).logits;
  }

  /** The current forward pass's attention bias and KV caches (set by `forward`). */
  private pass?: {
    bias: tf.Tensor4D;
    slidingBias?: tf.Tensor4D;
    past?: KVCache;
    store?: KVCache;
  };

  /** Causal attention of layer `layer` (ArchModel), with the current pass's bias and cache. */
  attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number): tf.Tensor2D {
    if (!this.pass) throw new Error('attend: called outside a forward pass');
    const { past, store } = this.pass;
    const c = this.config;
    // transformers' sliding-window mask: key index > query index − window (cache positions).
    const bias =
      c.layerTypes?.[layer] === 'sliding_attention' ? this.pass.slidingBias! : this.pass.bias;
    const [B, , T] = q.shape;
    let kk = k;
    let vv = v;
    const prev = past?.layers[layer];
    if (prev) {
      kk = tf.concat([prev.k, k], 2) as tf.Tensor4D;
      vv = tf.concat([prev.v, v], 2) as tf.Tensor4D;
    }
    if (store) store.layers[layer] = { k: kk, v: vv };
    // Grouped-query attention without copying keys/values (repeat_kv): the `rep` query heads
    // that share kv head j are consecutive, so [B, nH, T, d] regroups to [B, nKV, rep·T, d].
    const rep = c.numHeads / c.numKvHeads;
    const qg = rep === 1 ? q : tf.reshape(q, [B, c.numKvHeads, rep * T, c.headDim]);
    const raw = matMulFast(qg, kk, false, true) as tf.Tensor4D;
    const factor = c.attentionScale;
    const by: AttentionScale =
      factor === undefined ? { divisor: Math.sqrt(c.headDim) } : { factor };
    const cap = c.attnLogitSoftcap;
    let weights: tf.Tensor4D;
    if (cap === undefined) weights = attentionWeights(raw, bias, by, rep);
    else {
      const capped = tf.mul(tf.tanh(tf.div(scaleScores(raw, by), cap)), cap) as tf.Tensor4D;
      weights = attentionWeights(capped, bias, { factor: 1 }, rep);
    }
    const o = tf.reshape(matMulFast(weights, vv), [B, c.numHeads, T, c.headDim]);
    return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [
      B * T,
      c.numHeads * c.headDim,
    ]) as tf.Tensor2D;
  }

  /** `[B·T, E] → [B, heads, T, headDim]` (ArchModel). */
  heads(x: tf.Tensor2D, B: number, T: number, n: number): tf.Tensor4D {
    return tf.transpose(tf.reshape(x, [B, T, n, this.config.headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
  }

  /** The LM head's weight `[V, E]` (the embedding when tied). */
  private head(): tf.Tensor2D {
    return this.p(this.arch.headWeight(this.config)) as tf.Tensor as tf.Tensor2D;
  }

  /** Variables an optimizer should update: LoRA adapters if any, else every parameter. */
  trainableVariables(): tf.Variable[] {
    if (this.lora.size > 0) return [...this.lora.values()].flatMap((m) => [m.a, m.b]);
    return [...this.params.values()].filter((v) => v.trainable);
  }

  /** An independent copy (new variables; nothing mutable shared), e.g. a frozen reference. */
  clone(options: { trainable?: boolean } = {}): CausalLM {
    const params = new Map<string, tf.Variable>();
    for (const [name, v] of this.params)
      params.set(name, tf.variable(v, options.trainable ?? true));
    const m = new CausalLM(this.config, params);
    for (const [name, ad] of this.lora) {
      m.lora.set(name, {
        ...ad,
        a: tf.variable(ad.a, options.trainable ?? true),
        b: tf.variable(ad.b, options.trainable ?? true),
      });
    }
    return m;
  }

  /** Number of parameters (base weights only). */
  get numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.matmulBf16) releaseBf16Weights();
    tf.dispose([...this.params.values()]);
    tf.dispose([...this.lora.values()].flatMap((m) => [m.a, m.b]));
    this.lora.clear();
  }
}
