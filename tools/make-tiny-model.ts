/**
 * Makes the built-in tiny model of @alignjs/models from a committed corpus:
 *   1. writes the corpus (tiny/corpus.txt): chat dialogs built from TINY_TASK_WORDS with a
 *      fixed seed (the file is committed; rerunning reproduces it byte for byte);
 *   2. trains a byte-level BPE tokenizer on it (tokenizer.json in Hugging Face's format,
 *      tokenizer_config.json with a chat template);
 *   3. trains a small Llama-family model (GQA, RoPE) on the corpus with our own trainer
 *      pieces, and saves config.json + model.safetensors.
 *
 *   npm run build && npx tsx tools/make-tiny-model.ts [--steps N]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildBatch,
  disposeBatch,
  initBackend,
  mulberry32,
  sequenceLogprobs,
  toTensors,
} from '@alignjs/core-logprob';
import {
  CausalLM,
  loadTokenizer,
  parseModelConfig,
  saveModel,
  TINY_TASK_WORDS,
  tinyModelDir,
} from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';

const steps = Number(process.argv[process.argv.indexOf('--steps') + 1] || 1500);
const OUT = tinyModelDir();
const SPECIAL = ['<|endoftext|>', '<|user|>', '<|assistant|>', '<|system|>'];
const BOS = SPECIAL[0]!;
const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

// 1. Corpus -------------------------------------------------------------------------------
const rand = mulberry32(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const W = TINY_TASK_WORDS;
const adjectives = [...W.positive, ...W.negative];
const dialogs: { prompt: string; answer: string }[] = [];
for (let i = 0; i < 4000; i++) {
  const s = pick(W.subjects);
  const n = 1 + Math.floor(rand() * 3);
  const sentences = Array.from({ length: n }, () =>
    pick(W.sentences)
      .replaceAll('{s}', s)
      .replace('{a}', pick(adjectives))
      .replace('{b}', pick(adjectives)),
  );
  dialogs.push({ prompt: pick(W.prompts).replace('{s}', s), answer: sentences.join(' ') });
}
const render = (d: { prompt: string; answer: string }) =>
  `<|user|>\n${d.prompt}<|endoftext|>\n<|assistant|>\n${d.answer}<|endoftext|>\n`;
const corpus = dialogs.map(render).join('');

// 2. Byte-level BPE ------------------------------------------------------------------------
function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}
const B2U = bytesToUnicode();
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const words = new Map<string, number>();
for (const piece of corpus.split(
  new RegExp(SPECIAL.map((s) => s.replace(/[|]/g, '\\|')).join('|'), 'g'),
)) {
  for (const w of piece.match(GPT2_SPLIT) ?? []) {
    const u = [...new TextEncoder().encode(w)].map((b) => B2U.get(b)!).join('');
    words.set(u, (words.get(u) ?? 0) + 1);
  }
}
const vocab = new Map<string, number>();
for (const c of [...B2U.values()].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!))
  vocab.set(c, vocab.size);
const split = new Map([...words.keys()].map((w) => [w, [...w]]));
const merges: string[] = [];
const NUM_MERGES = 200;
while (merges.length < NUM_MERGES) {
  const counts = new Map<string, number>();
  for (const [w, n] of words) {
    const sym = split.get(w)!;
    for (let i = 0; i + 1 < sym.length; i++) {
      const k = `${sym[i]} ${sym[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + n);
    }
  }
  if (!counts.size) break;
  const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
  const [l, r] = best.split(' ') as [string, string];
  merges.push(best);
  vocab.set(l + r, vocab.size);
  for (const [w, sym] of split) {
    const next: string[] = [];
    for (let i = 0; i < sym.length; i++) {
      if (i + 1 < sym.length && sym[i] === l && sym[i + 1] === r) {
        next.push(l + r);
        i++;
      } else next.push(sym[i]!);
    }
    split.set(w, next);
  }
}
const added = SPECIAL.map((content) => ({
  id: vocab.size + SPECIAL.indexOf(content),
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
}));
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: null,
  pre_tokenizer: {
    type: 'ByteLevel',
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: true,
  },
  // `tokenizer(text)` starts with BOS (as Llama's tokenizers do), so TRL-style tokenization
  // gives every prompt the same first token (RAO's partition estimate conditions on it).
  post_processor: {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: BOS, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: BOS, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: BOS, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [BOS]: { id: BOS, ids: [added[0]!.id], tokens: [BOS] } },
      },
    ],
  },
  decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: '',
    end_of_word_suffix: '',
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab: Object.fromEntries(vocab),
    merges,
  },
};
const tokenizerConfig = {
  tokenizer_class: 'PreTrainedTokenizerFast',
  bos_token: '<|endoftext|>',
  eos_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  unk_token: null,
  model_max_length: 128,
  clean_up_tokenization_spaces: false,
  chat_template: CHAT_TEMPLATE,
  added_tokens_decoder: Object.fromEntries(
    added.map((t) => [
      String(t.id),
      {
        content: t.content,
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: true,
      },
    ]),
  ),
};

// 3. Model ------------------------------------------------------------------------------------
async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  await writeFile(join(OUT, 'corpus.txt'), corpus);
  await writeFile(join(OUT, 'tokenizer.json'), `${JSON.stringify(tokenizerJson)}\n`);
  await writeFile(
    join(OUT, 'tokenizer_config.json'),
    `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
  );
  const tok = await loadTokenizer(OUT);
  const V = vocab.size + SPECIAL.length;
  const configJson = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: V,
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    attention_bias: false,
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eosTokenId,
    pad_token_id: tok.padTokenId,
    torch_dtype: 'float32',
  };
  const info = await initBackend();
  console.log(`backend ${info.backend}; vocab ${V}; ${dialogs.length} dialogs`);
  const model = CausalLM.random(parseModelConfig(configJson), 1);
  const examples = dialogs.map((d) => ({
    prompt: [] as number[],
    response: tok.encode(render(d).trimEnd(), { addSpecialTokens: false }),
  }));
  const opt = tf.train.adam(3e-3);
  const order = mulberry32(3);
  const vars = model.trainableVariables();
  for (let step = 0; step < steps; step++) {
    const batch = Array.from(
      { length: 16 },
      () => examples[Math.floor(order() * examples.length)]!,
    );
    const data = toTensors(buildBatch(batch, { padTokenId: tok.padTokenId ?? 0, maxLength: 96 }));
    const cost = opt.minimize(
      () => {
        const r = sequenceLogprobs(model.call, data);
        return tf.neg(tf.div(tf.sum(r.responseSum), tf.sum(r.responseLength))) as tf.Scalar;
      },
      true,
      vars,
    )!;
    if (step % 100 === 0 || step === steps - 1)
      console.log(`step ${step} nll/token ${cost.dataSync()[0]!.toFixed(4)}`);
    cost.dispose();
    disposeBatch(data);
  }
  await saveModel(Object.assign(model, { config: { ...model.config, raw: configJson } }), OUT);
  console.log(`saved ${model.numParameters} parameters to ${OUT}`);
}

await main();
