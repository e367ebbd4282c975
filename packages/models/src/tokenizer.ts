import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { type ModelSource, readJson, readText } from './source.js';

/** A chat message as Hugging Face chat templates take it. */
export interface ChatMessage {
  role: string;
  content: string;
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

/**
 * `tokenizer.json` through `@huggingface/tokenizers`, special tokens and `chat_template`
 * from `tokenizer_config.json`, templates rendered with `@huggingface/jinja` the way
 * transformers' `apply_chat_template` renders them.
 */
export class HfTokenizer {
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly padToken?: string;
  readonly unkToken?: string;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  /** the default chat template */
  readonly chatTemplate?: string;
  /** every chat template by name (`default` included), as transformers' dict form */
  readonly chatTemplates: Readonly<Record<string, string>>;
  private readonly compiled = new Map<string, Template>();

  constructor(
    private readonly tok: Tokenizer,
    readonly config: Record<string, unknown>,
  ) {
    this.bosToken = tokenString(config.bos_token);
    this.eosToken = tokenString(config.eos_token);
    this.padToken = tokenString(config.pad_token);
    this.unkToken = tokenString(config.unk_token);
    const id = (t?: string) => (t === undefined ? undefined : tok.token_to_id(t));
    this.bosTokenId = id(this.bosToken);
    this.eosTokenId = id(this.eosToken);
    this.padTokenId = id(this.padToken) ?? this.eosTokenId;
    const ct = config.chat_template;
    const named: Record<string, string> = {};
    if (Array.isArray(ct)) {
      for (const t of ct as unknown[]) {
        const e = t as { name?: unknown; template?: unknown };
        if (typeof e?.name !== 'string' || typeof e.template !== 'string')
          throw new Error(
            `tokenizer_config.json: field 'chat_template' entries must be {name, template} strings, got ${JSON.stringify(t)}`,
          );
        named[e.name] = e.template;
      }
    } else if (typeof ct === 'string') named.default = ct;
    else if (ct !== undefined && ct !== null)
      throw new Error(
        `tokenizer_config.json: field 'chat_template' must be a string or a list of {name, template}, got ${JSON.stringify(ct)}`,
      );
    this.chatTemplates = Object.freeze(named);
    this.chatTemplate = named.default;
  }

  /**
   * The template `name` names (transformers' `get_chat_template`): the default one when
   * `name` is absent; an error if there is none, or several without a default.
   */
  private template(name?: string): Template {
    const names = Object.keys(this.chatTemplates);
    const key = name ?? 'default';
    const text = this.chatTemplates[key];
    if (text === undefined) {
      if (!names.length)
        throw new Error(
          'this tokenizer has no chat_template (chat_template.jinja, additional_chat_templates/, or the chat_template field of tokenizer_config.json)',
        );
      throw new Error(
        name
          ? `no chat template named '${name}' (templates: ${names.join(', ')})`
          : `this tokenizer has several chat templates and no default; name one of: ${names.join(', ')}`,
      );
    }
    let t = this.compiled.get(key);
    if (!t) {
      t = new Template(text);
      this.compiled.set(key, t);
    }
    return t;
  }

  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}): HfTokenizer {
    return new HfTokenizer(
      new Tokenizer(tokenizerJson as object, tokenizerConfig as object),
      tokenizerConfig as Record<string, unknown>,
    );
  }

  /**
   * Reads `tokenizer.json`, `tokenizer_config.json` (if present) and the chat templates from a
   * model source (a URL, files in memory; a directory: `loadTokenizer(dir)` in
   * `@alignjs/models/node`). As transformers 5: `chat_template.jinja` (the default template)
   * and `additional_chat_templates/<name>.jinja` take priority over `chat_template` in the config.
   */
  static async fromSource(src: ModelSource): Promise<HfTokenizer> {
    const config = ((await readJson(src, 'tokenizer_config.json', false)) ?? {}) as Record<
      string,
      unknown
    >;
    const files = await chatTemplateFiles(src);
    const names = Object.keys(files);
    const chatTemplate =
      names.length === 0
        ? config.chat_template
        : names.length === 1 && names[0] === 'default'
          ? files.default
          : names.map((name) => ({ name, template: files[name]! }));
    return HfTokenizer.fromJson(await readJson(src, 'tokenizer.json'), {
      ...config,
      ...(chatTemplate !== undefined ? { chat_template: chatTemplate } : {}),
    });
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tok.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? true });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  get vocabSize(): number {
    return this.tok.get_vocab(true).size;
  }

  /**
   * Renders `messages` with the model's chat template, or the one `chatTemplate` names
   * (error if there is none).
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean; chatTemplate?: string } = {},
  ): string {
    return this.template(options.chatTemplate).render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      pad_token: this.padToken ?? '',
      unk_token: this.unkToken ?? '',
      // @huggingface/jinja defines raise_exception itself (it throws with the template's message).
    });
  }
}

/** `chat_template.jinja` (as `default`) and `additional_chat_templates/*.jinja` of a source. */
async function chatTemplateFiles(src: ModelSource): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const main = await readText(src, 'chat_template.jinja');
  if (main !== undefined) out.default = main;
  const names = await src.list('additional_chat_templates');
  for (const f of names.filter((n) => n.endsWith('.jinja')).sort()) {
    const text = await readText(src, `additional_chat_templates/${f}`);
    if (text !== undefined) out[f.slice(0, -'.jinja'.length)] = text;
  }
  return out;
}
