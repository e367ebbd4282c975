/** Hugging Face `config.json` → {@link ModelConfig}, through the architecture registry. */
import { architectureFor, architectureOf } from './arch/index.js';
import type { ModelConfig } from './arch/types.js';

export type { ModelConfig };

/** Parses a Hugging Face `config.json` object. `path` is used in error messages. */
export function parseModelConfig(raw: unknown, path = 'config.json'): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${path}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  return architectureFor(c.model_type, path).parseConfig(c, path);
}

/** Hugging Face parameter names and shapes for a config (the state_dict of the model). */
export function parameterShapes(c: ModelConfig): Map<string, number[]> {
  return architectureOf(c).parameterShapes(c);
}

/** Checkpoint tensors that are buffers or tied copies, not parameters: ignored on load. */
export function isIgnorableBuffer(name: string, c: ModelConfig): boolean {
  return architectureOf(c).isIgnorableBuffer(name, c);
}
