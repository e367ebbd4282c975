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

/** The parts of tfjs-core's engine that {@link variableGrads} drives (tfjs-core 4.x). */
interface TapeNode {
  id: number;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: tf.Tensor[]) => Record<string, () => tf.Tensor>;
}
interface Engine {
  state: { gradientDepth: number; activeTape: TapeNode[] | null };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

function engineInternals(): Engine {
  const e = tf.engine() as unknown as Partial<Engine>;
  for (const k of ['startTape', 'endTape', 'scopedRun', 'tidy'] as const) {
    if (typeof e[k] !== 'function') {
      throw new Error(
        `variableGrads: this tfjs-core has no engine.${k}(); it supports tfjs-core 4.x`,
      );
    }
  }
  if (typeof e.state?.gradientDepth !== 'number') {
    throw new Error('variableGrads: this tfjs-core engine has no gradient tape state');
  }
  return e as Engine;
}

/** The tape's nodes on a path from `xs` to `y`, each with its inputs pruned to those from `xs`. */
function pathNodes(tape: TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodeFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      nodeToY.add(node.id);
      for (const t of Object.values(node.inputs)) toY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodeFromX.has(node.id) || !nodeToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[k] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

/**
 * `tf.variableGrads(f, vars)` with the memory profile of torch's backward: the gradient of
 * each intermediate tensor and the activations an op saved for its backward pass are freed as
 * soon as that op's backward has run, instead of all at the end. tfjs keeps both until the
 * whole backward pass ends, so its peak is every saved activation plus every intermediate
 * gradient; here it is about the forward pass's peak. Same values, same order of operations.
 *
 * Drives tfjs-core 4.x's engine (its gradient tape) directly; any other engine is an error
 * naming what is missing. Inside another gradient computation (a tape already recording) it
 * defers to `tf.variableGrads`, which frees nothing early there either.
 *
 * @returns the value of `f` and the gradient of every trainable variable in `vars` that `f`
 *   depends on, by variable name (as `tf.variableGrads`)
 */
export function variableGrads(
  f: () => tf.Scalar,
  vars: readonly tf.Variable[],
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const e = engineInternals();
  if (e.state.gradientDepth > 0) return tf.variableGrads(f, vars as tf.Variable[]);
  const xs = vars.filter((v) => v.trainable);
  if (xs.length === 0) {
    throw new Error(`variableGrads: none of the ${vars.length} variables is trainable`);
  }
  const y = e.scopedRun(
    () => e.startTape(),
    () => e.endTape(),
    () => e.tidy('forward', f),
  );
  const tape = e.state.activeTape ?? [];
  try {
    if (!(y instanceof tf.Tensor) || y.rank !== 0) {
      if (y instanceof tf.Tensor) y.dispose();
      throw new Error(`variableGrads: f must return a scalar tensor, got rank ${y?.rank}`);
    }
    const nodes = pathNodes(tape, xs, y);
    return e.tidy('backward', () => {
      // gradient so far of each tensor on the path, by tensor id
      const acc = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
      const held = (t: tf.Tensor) => {
        for (const g of acc.values()) if (g === t) return true;
        return false;
      };
      for (let i = nodes.length - 1; i >= 0; i--) {
        const node = nodes[i]!;
        if (!node.gradient) throw new Error(`variableGrads: no gradient for ${node.id}`);
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null) as tf.Tensor[];
        const dxs = node.gradient(dys);
        for (const [name, x] of Object.entries(node.inputs)) {
          const grad = dxs[name];
          if (!grad) throw new Error(`variableGrads: no gradient for input ${name}`);
          const dx = tf.tidy(grad);
          if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
            throw new Error(
              `variableGrads: gradient of input ${name} is ${dx.dtype} [${dx.shape}], ` +
                `input is [${x.shape}]`,
            );
          }
          const cur = acc.get(x.id);
          if (!cur) acc.set(x.id, dx);
          else {
            acc.set(x.id, tf.add(cur, dx));
            if (!held(cur)) cur.dispose();
            if (!held(dx)) dx.dispose();
          }
        }
        // This op's backward has run: its outputs' gradients and its saved activations are
        // needed by no other op (every consumer of an output came later on the tape).
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          if (!g) continue;
          acc.delete(o.id);
          if (!held(g)) g.dispose();
        }
        for (const t of node.saved ?? []) if (!held(t)) t.dispose();
      }
      const grads: tf.NamedTensorMap = {};
      for (const v of xs) {
        const g = acc.get(v.id);
        if (g) grads[v.name] = g;
      }
      if (Object.keys(grads).length === 0) {
        y.dispose();
        throw new Error('variableGrads: f does not depend on any of the trainable variables');
      }
      return { value: y as tf.Scalar, grads };
    });
  } finally {
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    e.state.activeTape = null;
  }
}
