import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

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
  readonly chatTemplate?: string;
  private readonly compiled?: Template;

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
    this.chatTemplate = Array.isArray(ct)
      ? (ct as { name: string; template: string }[]).find((t) => t.name === 'default')?.template
      : typeof ct === 'string'
        ? ct
        : undefined;
    if (this.chatTemplate) this.compiled = new Template(this.chatTemplate);
  }

  static fromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}): HfTokenizer {
    return new HfTokenizer(
      new Tokenizer(tokenizerJson as object, tokenizerConfig as object),
      tokenizerConfig as Record<string, unknown>,
    );
  }

  /** Reads `tokenizer.json` and (if present) `tokenizer_config.json` from a model directory. */
  static async fromDir(dir: string): Promise<HfTokenizer> {
    const read = async (name: string, required: boolean): Promise<unknown> => {
      const path = join(dir, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return {};
        throw new Error(`${path}: cannot read (${(err as Error).message})`);
      }
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
      }
    };
    return HfTokenizer.fromJson(
      await read('tokenizer.json', true),
      await read('tokenizer_config.json', false),
    );
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

  /** Renders `messages` with the model's chat template (error if it has none). */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    options: { addGenerationPrompt?: boolean } = {},
  ): string {
    if (!this.compiled)
      throw new Error('this tokenizer has no chat_template in tokenizer_config.json');
    return this.compiled.render({
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
