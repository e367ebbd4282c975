/** `alignjs generate`: a local model answers an instructions file, written as AlpacaEval's model_outputs.json. */
import { readFile } from 'node:fs/promises';
import { parseJsonRecords } from '@alignjs/core-logprob';
import { type CausalLM, generate, type HfTokenizer } from '@alignjs/models/node';
import type { ModelOutput } from './files.js';

/** Instructions from JSON (`[{instruction}]`) or JSONL; errors name the file, line and field. */
export async function readInstructions(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read instructions (${(err as Error).message})`);
  }
  const rows: [unknown, number][] = [];
  rows.push(...parseJsonRecords(text, path));
  if (!rows.length) throw new Error(`${path}: no instructions`);
  return rows.map(([r, line]) => {
    const v = (r as Record<string, unknown>)?.instruction;
    if (typeof v !== 'string' || !v.trim())
      throw new Error(`${path}:${line}: field 'instruction' is missing or empty`);
    return v;
  });
}

export interface GenerateOutputsOptions {
  generator: string;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Answers each instruction through the model's chat template (user turn, generation prompt). */
export function generateOutputs(
  model: CausalLM,
  tok: HfTokenizer,
  instructions: readonly string[],
  o: GenerateOutputsOptions,
): ModelOutput[] {
  const out: ModelOutput[] = [];
  const B = o.batchSize ?? 8;
  for (let i = 0; i < instructions.length; i += B) {
    const part = instructions.slice(i, i + B);
    const prompts = part.map((ins) =>
      tok.encode(
        tok.applyChatTemplate([{ role: 'user', content: ins }], { addGenerationPrompt: true }),
        { addSpecialTokens: false },
      ),
    );
    const r = generate(model, prompts, {
      maxNewTokens: o.maxNewTokens ?? 256,
      temperature: o.temperature ?? 0,
      topP: o.topP ?? 1,
      seed: (o.seed ?? 0) + i,
      stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
      decode: (ids) => tok.decode(ids),
    });
    part.forEach((instruction, k) => {
      out.push({ instruction, output: r.texts![k]!.trim(), generator: o.generator });
    });
    o.onProgress?.(Math.min(i + B, instructions.length), instructions.length);
  }
  return out;
}
