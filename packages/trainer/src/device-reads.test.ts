/**
 * The training step reads the device at most twice per optimizer step: once for the loss,
 * gradient norm and finite flag, once more on logging steps for the interval's metrics.
 * Counted by wrapping the active backend's `readSync` / `read` (what `dataSync`/`data` call),
 * outside kernels: on wasm, kernels such as Slice and GatherV2 call `readSync` themselves to
 * copy within the wasm heap (no device → host transfer, no synchronization); those calls are
 * tfjs's kernel implementation, not reads the step asks for, and are counted separately.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseTrainConfig } from './config.js';
import { makeLogger } from './log.js';
import { testDpoObjective, writeTestData } from './testing.js';
import { Trainer } from './trainer.js';

/** DPO written with core's primitives (the trainer imports no loss package), with metrics. */
const dpo = testDpoObjective();

function countReads(): { count: () => number; inKernels: () => number; restore: () => void } {
  const b = tf.backend() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const engine = tf.engine() as unknown as { state: { kernelDepth: number } };
  let n = 0;
  let inKernels = 0;
  const orig = { readSync: b.readSync!, read: b.read! };
  const tally = () => {
    if (engine.state.kernelDepth > 0) inKernels++;
    else n++;
  };
  b.readSync = (...a) => {
    tally();
    return orig.readSync.apply(b, a);
  };
  b.read = (...a) => {
    tally();
    return orig.read.apply(b, a);
  };
  return {
    count: () => n,
    inKernels: () => inKernels,
    restore: () => {
      b.readSync = orig.readSync;
      b.read = orig.read;
    },
  };
}

describe('device reads per optimizer step', () => {
  for (const accumulation of [1, 2]) {
    it(`≤ 2 with logSteps 4 (gradient accumulation ${accumulation}), 1 on non-logging steps`, async () => {
      const data = await writeTestData(8);
      const cfg = parseTrainConfig({
        train: data.pairwise,
        objective: dpo,
        output: await mkdtemp(join(tmpdir(), 'alignjs-reads-')),
        maxSteps: 8,
        batchSize: 2,
        gradientAccumulationSteps: accumulation,
        epochs: 8,
        logSteps: 4,
        learningRate: 1e-3,
        // adamw_torch on wasm, TensorFlow's fused kernel (adamw_torch_fused) on tensorflow
        optim: 'auto',
      });
      let reads: ReturnType<typeof countReads> | undefined;
      const perStep: number[] = [];
      const tensorsAt: number[] = [];
      let last = 0;
      const tensorsBefore = tf.memory().numTensors;
      const t = new Trainer(cfg, {
        logger: makeLogger(join(cfg.output, 'metrics.jsonl'), 'quiet'),
        callbacks: {
          onStep: () => {
            tensorsAt.push(tf.memory().numTensors);
            // counting starts after the first step: setup, reference pass and warm-up excluded
            if (!reads) reads = countReads();
            else perStep.push(reads.count() - last);
            last = reads.count();
          },
        },
      });
      try {
        const r = await t.train();
        expect(r.steps).toBe(8);
        // metrics are the logging interval's means, on logging steps only
        expect(Object.keys(r.history[3]!.metrics).sort()).toEqual([
          'rewards/accuracies',
          'rewards/margins',
        ]);
        expect(r.history[4]!.metrics).toEqual({});
      } finally {
        reads?.restore();
        t.dispose();
      }
      // steps 2..8: step 4 and 8 log (2 reads), the others read once
      expect(perStep).toEqual([1, 1, 2, 1, 1, 1, 2]);
      // no tensor outlives its step: the same count at the same point of each logging
      // interval, and none left once the trainer is disposed
      expect(tensorsAt.slice(4)).toEqual(tensorsAt.slice(0, 4));
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      console.log(
        `device reads, steps 2–8 (accumulation ${accumulation}): ${perStep.join(', ')}; kernel-internal readSync calls on ${tf.getBackend()}: ${reads!.inKernels()}`,
      );
    });
  }
});
