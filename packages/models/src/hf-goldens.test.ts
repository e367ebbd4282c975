/**
 * Logits of tiny random checkpoints made and saved by transformers 5.17 itself
 * (`tools/make-hf-goldens.py`: `save_pretrained`, config.json as transformers 5 writes it),
 * one per architecture and RoPE type, on a batch with a left-padded row: equal to ours within
 * 1e-4 of each position's largest logit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadModel } from './node.js';
import { maxRelLogitError } from './test-util.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'hf');
const CASES = readdirSync(DIR).sort();

interface Golden {
  transformers: string;
  inputIds: number[][];
  attentionMask: number[][];
  logits: number[][][];
}

describe('checkpoints saved by transformers 5.17', () => {
  it('cover every architecture and RoPE type', () => {
    const kinds = new Set(
      CASES.map((c) => {
        const cfg = JSON.parse(readFileSync(join(DIR, c, 'config.json'), 'utf8'));
        return `${cfg.model_type}/${cfg.rope_parameters?.rope_type ?? '-'}`;
      }),
    );
    for (const k of [
      'gpt2/-',
      'llama/default',
      'llama/linear',
      'llama/dynamic',
      'llama/yarn',
      'llama/llama3',
      'qwen2/default',
      'qwen3/default',
      'mistral/default',
      'gemma2/default',
    ])
      expect(kinds, k).toContain(k);
  });

  it.each(CASES)('%s: logits within 1e-4 (left padding)', async (name) => {
    const g = JSON.parse(readFileSync(join(DIR, name, 'expected.json'), 'utf8')) as Golden;
    expect(g.transformers).toBe('5.17.0');
    const model = await loadModel(join(DIR, name));
    const before = tf.memory().numTensors;
    const ids = tf.tensor2d(g.inputIds, undefined, 'int32');
    const mask = tf.tensor2d(g.attentionMask, undefined, 'int32');
    const logits = model.call(ids, mask);
    const got = logits.arraySync();
    expect(maxRelLogitError(got, g.logits, g.attentionMask)).toBeLessThan(1e-4);
    tf.dispose([ids, mask, logits]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
