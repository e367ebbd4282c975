import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tokenLogprobs } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadModel } from './node.js';
import { maxRelLogitError } from './test-util.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

interface Expected {
  inputIds: number[][];
  attentionMask: number[][];
  logits: number[][][];
  tokenLogps: number[][];
  greedy: { prompt: number[]; ids: number[] }[];
  parameterNames: string[];
}

const load = async (arch: string) =>
  JSON.parse(await readFile(join(FIXTURES, arch, 'expected.json'), 'utf8')) as Expected;

describe.each(['gpt2', 'llama', 'qwen2'])('%s matches the PyTorch reference', (arch) => {
  it('logits to 1e-4 relative and log-probs to 1e-4 absolute at every real position', async () => {
    const exp = await load(arch);
    const model = await loadModel(join(FIXTURES, arch));
    const ids = tf.tensor2d(exp.inputIds, undefined, 'int32');
    const mask = tf.tensor2d(exp.attentionMask, undefined, 'int32');
    const logits = model.call(ids, mask);
    const got = logits.arraySync();
    const maxRel = maxRelLogitError(got, exp.logits, exp.attentionMask);
    expect(maxRel).toBeLessThan(1e-4);
    const lp = tokenLogprobs(logits, ids, mask).arraySync();
    exp.tokenLogps.forEach((row, b) => {
      row.forEach((v, t) => {
        expect(Math.abs(lp[b]![t]! - v), `[${b},${t}]`).toBeLessThan(1e-4);
      });
    });
    tf.dispose([ids, mask, logits]);
    model.dispose();
  });
});

describe.each(['gpt2', 'llama', 'qwen2'])('%s greedy decoding', (arch) => {
  it('equals the reference greedy ids exactly, with and without the KV cache', async () => {
    const { generate } = await import('./generate.js');
    const exp = await load(arch);
    const model = await loadModel(join(FIXTURES, arch));
    for (const g of exp.greedy) {
      for (const useCache of [true, false]) {
        const r = generate(model, [g.prompt], {
          greedy: true,
          maxNewTokens: g.ids.length,
          useCache,
        });
        expect(r.ids[0], `${arch} cache=${useCache}`).toEqual(g.ids);
      }
    }
    model.dispose();
  });

  it('loads with Hugging Face names and frees everything on dispose', async () => {
    const exp = await load(arch);
    const before = tf.memory().numTensors;
    const model = await loadModel(join(FIXTURES, arch));
    const expectedNames = exp.parameterNames.filter(
      (n) => !(n === 'lm_head.weight' && model.config.tieWordEmbeddings),
    );
    expect([...model.params.keys()].sort()).toEqual(expectedNames);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
