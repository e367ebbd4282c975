import { describe, expect, it } from 'vitest';
import { tinyModelDir } from './tiny.js';
import { HfTokenizer } from './tokenizer.js';

describe('tokenizer of the built-in tiny model', () => {
  it('round-trips text, keeps special tokens whole and knows its special ids', async () => {
    const tok = await HfTokenizer.fromDir(tinyModelDir());
    for (const text of [
      'The cat is happy.',
      'It is warm and kind. I think the river is very dull.',
      'naïve 123 ☕ words!',
    ]) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    expect(tok.eosToken).toBe('<|endoftext|>');
    expect(tok.encode('<|endoftext|>')).toEqual([tok.eosTokenId]);
    const ids = tok.encode('<|user|>\nHi<|endoftext|>');
    expect(ids[0]).toBe(tok.tokenToId('<|user|>'));
    expect(ids.at(-1)).toBe(tok.eosTokenId);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('<|user|>\nHi<|endoftext|>');
    expect(tok.decode(ids)).toBe('\nHi');
    expect(tok.padTokenId).toBe(tok.eosTokenId);
  });

  it('renders the chat template exactly as written by hand', async () => {
    const tok = await HfTokenizer.fromDir(tinyModelDir());
    const messages = [
      { role: 'user', content: 'Tell me about the cat.' },
      { role: 'assistant', content: 'The cat is happy.' },
      { role: 'user', content: 'And the dog?' },
    ];
    expect(tok.applyChatTemplate(messages)).toBe(
      '<|user|>\nTell me about the cat.<|endoftext|>\n<|assistant|>\nThe cat is happy.<|endoftext|>\n<|user|>\nAnd the dog?<|endoftext|>\n',
    );
    expect(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true })).toBe(
      '<|user|>\nTell me about the cat.<|endoftext|>\n<|assistant|>\n',
    );
  });

  it('a tokenizer without a chat template says so; a missing file is named', async () => {
    const tok = HfTokenizer.fromJson(
      {
        model: { type: 'BPE', vocab: { a: 0, b: 1 }, merges: [] },
        added_tokens: [],
        pre_tokenizer: null,
        decoder: null,
        normalizer: null,
        post_processor: null,
      },
      {},
    );
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(
      /no chat_template/,
    );
    await expect(HfTokenizer.fromDir('/nonexistent-dir')).rejects.toThrow(
      /nonexistent-dir\/tokenizer.json: cannot read/,
    );
  });
});
