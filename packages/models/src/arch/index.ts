/**
 * The architecture registry: Hugging Face `model_type` → the `arch/` module that runs it.
 * Adding an architecture is one module (see `types.ts`) plus one line here.
 */
import { gemma2 } from './gemma2.js';
import { gpt2 } from './gpt2.js';
import { llama } from './llama.js';
import { qwen3 } from './qwen3.js';
import type { Architecture, ModelConfig } from './types.js';

export const ARCHITECTURES: readonly Architecture[] = Object.freeze([gpt2, llama, qwen3, gemma2]);

const BY_TYPE = new Map(ARCHITECTURES.flatMap((a) => a.modelTypes.map((t) => [t, a] as const)));

/** Every `model_type` alignjs runs. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.freeze([...BY_TYPE.keys()]);

/** The module for a `model_type`, or an error listing the supported ones. */
export function architectureFor(modelType: unknown, path = 'config.json'): Architecture {
  const a = typeof modelType === 'string' ? BY_TYPE.get(modelType) : undefined;
  if (!a)
    throw new Error(
      `${path}: model_type ${JSON.stringify(modelType)} is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    );
  return a;
}

/** The module that runs a parsed config. */
export function architectureOf(c: ModelConfig): Architecture {
  const a = ARCHITECTURES.find((x) => x.name === c.architecture);
  if (!a) throw new Error(`no architecture module '${c.architecture}'`);
  return a;
}
