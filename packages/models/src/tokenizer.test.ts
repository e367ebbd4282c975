import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer, tinyModelDir } from './node.js';
import { HfTokenizer } from './tokenizer.js';

describe('tokenizer of the built-in tiny model', () => {
  it('round-trips text, keeps special tokens whole and knows its special ids', async () => {
    const tok = await loadTokenizer(tinyModelDir());
    for (const text of [
      'The cat is happy.',
      'It is warm and kind. I think the river is very dull.',
      'naïve 123 ☕ words!',
    ]) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    expect(tok.eosToken).toBe('<|endoftext|>');
    const raw = { addSpecialTokens: false };
    expect(tok.encode('<|endoftext|>', raw)).toEqual([tok.eosTokenId]);
    // its post-processor adds BOS, as transformers' tokenizer(text) does (checked with 5.17)
    expect(tok.encode('The cat')).toEqual([tok.bosTokenId, ...tok.encode('The cat', raw)]);
    const ids = tok.encode('<|user|>\nHi<|endoftext|>', raw);
    expect(ids[0]).toBe(tok.tokenToId('<|user|>'));
    expect(ids.at(-1)).toBe(tok.eosTokenId);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe('<|user|>\nHi<|endoftext|>');
    expect(tok.decode(ids)).toBe('\nHi');
    expect(tok.padTokenId).toBe(tok.eosTokenId);
  });

  it('renders the chat template exactly as written by hand', async () => {
    const tok = await loadTokenizer(tinyModelDir());
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
    await expect(loadTokenizer('/nonexistent-dir')).rejects.toThrow(
      /nonexistent-dir\/tokenizer.json: not found/,
    );
  });
});

describe('chat templates from files (transformers 5 layout)', () => {
  const T = (tag: string) =>
    `{% for m in messages %}[${tag}:{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[${tag}:go]{% endif %}`;
  const msgs = [{ role: 'user' as const, content: 'hi' }];

  async function dirWith(files: Record<string, string>, config: Record<string, unknown>) {
    const { mkdtemp, mkdir, writeFile, copyFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'alignjs-tok-'));
    await copyFile(join(tinyModelDir(), 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    return dir;
  }

  it('chat_template.jinja is the default and wins over the config; named templates by name', async () => {
    const dir = await dirWith(
      { 'chat_template.jinja': T('file'), 'additional_chat_templates/tool_use.jinja': T('tool') },
      { chat_template: T('config') },
    );
    const tok = await loadTokenizer(dir);
    expect(tok.applyChatTemplate(msgs, { addGenerationPrompt: true })).toBe(
      '[file:user]hi[file:go]',
    );
    expect(tok.applyChatTemplate(msgs, { chatTemplate: 'tool_use' })).toBe('[tool:user]hi');
    expect(Object.keys(tok.chatTemplates).sort()).toEqual(['default', 'tool_use']);
    expect(() => tok.applyChatTemplate(msgs, { chatTemplate: 'rag' })).toThrow(
      /no chat template named 'rag' \(templates: default, tool_use\)/,
    );
  });

  it("the config's string or list form without files; several templates and no default is an error", async () => {
    const one = await loadTokenizer(await dirWith({}, { chat_template: T('config') }));
    expect(one.applyChatTemplate(msgs)).toBe('[config:user]hi');
    const list = await loadTokenizer(
      await dirWith(
        {},
        {
          chat_template: [
            { name: 'a', template: T('a') },
            { name: 'b', template: T('b') },
          ],
        },
      ),
    );
    expect(list.applyChatTemplate(msgs, { chatTemplate: 'b' })).toBe('[b:user]hi');
    expect(() => list.applyChatTemplate(msgs)).toThrow(
      /several chat templates and no default; name one of: a, b/,
    );
    const none = await loadTokenizer(await dirWith({}, {}));
    expect(() => none.applyChatTemplate(msgs)).toThrow(/no chat_template \(chat_template\.jinja/);
    await expect(loadTokenizer(await dirWith({}, { chat_template: 7 }))).rejects.toThrow(
      /field 'chat_template' must be a string or a list of \{name, template\}, got 7/,
    );
  });
});
