/**
 * A LoRA adapter saved by PEFT 0.21 itself with `use_rslora: true` (scale α/√r), on a base
 * checkpoint saved by transformers 5.17 (`tools/make-peft-golden.py`): loaded here, the logits
 * equal PEFT's within 1e-4 of each position's largest logit; read as plain LoRA (α/r) they do not.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadLora, loadModel } from './node.js';
import { maxRelLogitError } from './test-util.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const golden = JSON.parse(readFileSync(join(FIX, 'peft-rslora', 'expected.json'), 'utf8')) as {
  peft: string;
  inputIds: number[][];
  attentionMask: number[][];
  logits: number[][][];
};

async function worstWith(adapterDir: string): Promise<number> {
  const model = await loadModel(join(FIX, 'hf', 'llama-default'));
  await loadLora(model, adapterDir);
  const ids = tf.tensor2d(golden.inputIds, undefined, 'int32');
  const mask = tf.tensor2d(golden.attentionMask, undefined, 'int32');
  const logits = model.call(ids, mask);
  const got = logits.arraySync();
  const worst = maxRelLogitError(got, golden.logits, golden.attentionMask);
  tf.dispose([ids, mask, logits]);
  model.dispose();
  return worst;
}

describe('a PEFT adapter saved with use_rslora', () => {
  it("loads with PEFT's logits", async () => {
    expect(golden.peft).toBe('0.21.0');
    expect(await worstWith(join(FIX, 'peft-rslora'))).toBeLessThan(1e-4);
  });

  it('differs when read as plain LoRA (the option matters)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-peft-'));
    await cp(join(FIX, 'peft-rslora'), dir, { recursive: true });
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    await writeFile(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ ...cfg, use_rslora: false }),
    );
    expect(await worstWith(dir)).toBeGreaterThan(1e-2);
  });
});
