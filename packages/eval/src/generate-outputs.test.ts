import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, loadTokenizer, tinyModelDir } from '@alignjs/models/node';
import { describe, expect, it } from 'vitest';
import { generateOutputs, readInstructions } from './generate-outputs.js';

describe('generate model outputs', () => {
  it('reads instructions (JSON or JSONL) and answers each with the chat template', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-gen-'));
    await writeFile(
      join(dir, 'a.json'),
      JSON.stringify([
        { instruction: 'Tell me about the cat.' },
        { instruction: 'Describe the dog.' },
      ]),
    );
    await writeFile(
      join(dir, 'b.jsonl'),
      '{"instruction": "Tell me about the cat."}\n{"prompt": "x"}\n',
    );
    const instructions = await readInstructions(join(dir, 'a.json'));
    expect(instructions).toEqual(['Tell me about the cat.', 'Describe the dog.']);
    await expect(readInstructions(join(dir, 'b.jsonl'))).rejects.toThrow(
      /b.jsonl:2: field 'instruction' is missing or empty/,
    );
    const model = await loadModel(tinyModelDir());
    const tok = await loadTokenizer(tinyModelDir());
    let progress = 0;
    const outs = generateOutputs(model, tok, instructions, {
      generator: 'tiny',
      maxNewTokens: 16,
      onProgress: (d) => (progress = d),
    });
    expect(outs.map((o) => o.instruction)).toEqual(instructions);
    expect(outs.every((o) => o.generator === 'tiny' && typeof o.output === 'string')).toBe(true);
    expect(progress).toBe(2);
    // Greedy (temperature 0) is deterministic.
    expect(
      generateOutputs(model, tok, instructions, { generator: 'tiny', maxNewTokens: 16 }),
    ).toEqual(outs);
    model.dispose();
  });
});
