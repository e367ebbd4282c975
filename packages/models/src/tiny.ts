/**
 * The files of the built-in tiny model (in this package's `tiny/` directory): a browser page
 * serves them and loads the model with `loadModelFromUrl` / `HfTokenizer.fromSource(urlSource(…))`;
 * in Node, `tinyModelDir()` from `@alignjs/models/node` is their directory.
 */
export const TINY_MODEL_FILES: readonly string[] = Object.freeze([
  'config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
]);

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
