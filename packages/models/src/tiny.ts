import { fileURLToPath } from 'node:url';

/**
 * Directory of the built-in tiny model (config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json), shipped with this package and made by tools/make-tiny-model.ts
 * from the corpus in tiny/corpus.txt.
 */
export function tinyModelDir(): string {
  return fileURLToPath(new URL('../tiny/', import.meta.url));
}

/**
 * The words of the tiny model's corpus: prompts ask about a subject, answers describe it
 * with adjectives, half of them pleasant and half unpleasant. The trainer's demo task
 * defines its true reward over these lists.
 */
export const TINY_TASK_WORDS: Readonly<
  Record<'subjects' | 'positive' | 'negative' | 'prompts' | 'sentences', readonly string[]>
> = Object.freeze({
  subjects: [
    'cat',
    'dog',
    'sun',
    'garden',
    'city',
    'music',
    'food',
    'river',
    'house',
    'morning',
    'forest',
    'song',
  ],
  positive: ['happy', 'bright', 'kind', 'warm', 'lovely', 'calm', 'sweet', 'gentle'],
  negative: ['sad', 'dark', 'cold', 'angry', 'dull', 'noisy', 'bitter', 'rough'],
  prompts: ['Tell me about the {s}.', 'Describe the {s}.', 'What is the {s} like?'],
  sentences: [
    'The {s} is {a}.',
    'It is {a} and {b}.',
    'I think the {s} is very {a}.',
    'The {s} feels {a}.',
  ],
});
