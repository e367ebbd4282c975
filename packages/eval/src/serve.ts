/**
 * `alignjs serve`: an OpenAI-compatible HTTP server for a local model directory —
 * `GET /v1/models`, `POST /v1/chat/completions` (chat template), `POST /v1/completions`
 * (prompts as text, text lists, token ids or token-id lists, with `echo` and `logprobs` as
 * lm-evaluation-harness's `local-completions` uses them). Requests are validated before any
 * work (clear 4xx naming the parameter; parameters it does not implement are refused, never
 * ignored; prompts longer than the model's context are refused naming the limit), run one
 * at a time through a bounded queue (503 with `Retry-After` when full), and `close()` drains
 * in-flight work before the socket closes. `stream: true` answers in server-sent events
 * ending with `data: [DONE]` (the chunks are sent once the completion is computed: the
 * tfjs forward is synchronous).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readTidy } from '@alignjs/core-logprob';
import { type CausalLM, generate, type HfTokenizer } from '@alignjs/models/node';
import * as tf from '@tensorflow/tfjs-core';

export interface ServeOptions {
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** the id `/v1/models` reports and requests must name (any name is accepted if omitted in a request) */
  modelId: string;
  host?: string;
  port?: number;
  /** requests waiting or running at most (default 16); more get 503 */
  maxQueue?: number;
  /** cap on max_tokens (default 256) */
  maxTokensLimit?: number;
  /** request body limit in bytes (default 1 MB) */
  maxBodyBytes?: number;
  /** prompts per request at most (default 64) */
  maxPrompts?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: HttpError): void {
  send(
    res,
    err.status,
    {
      error: {
        message: err.message,
        type: err.status >= 500 ? 'server_error' : 'invalid_request_error',
        param: err.param ?? null,
        code: null,
      },
    },
    err.status === 503 ? { 'retry-after': '1' } : {},
  );
}

async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new HttpError(400, `request body is not a JSON object (${(err as Error).message})`);
  }
}

interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  stream: boolean;
}

/** Parameters of the OpenAI API this server does not implement: a 400 naming them, never ignored. */
const UNSUPPORTED = [
  'response_format',
  'tools',
  'tool_choice',
  'functions',
  'function_call',
  'logit_bias',
  'best_of',
  'suffix',
  'presence_penalty',
  'frequency_penalty',
  'audio',
  'modalities',
  'prediction',
  'parallel_tool_calls',
  'stream_options',
];
/** Values of those that change nothing (the API's defaults). */
const NEUTRAL: Record<string, unknown> = { presence_penalty: 0, frequency_penalty: 0, best_of: 1 };

function sampling(body: Record<string, unknown>, cap: number, minTokens: number): Sampling {
  for (const f of UNSUPPORTED) {
    const v = body[f];
    if (v !== undefined && v !== null && v !== NEUTRAL[f])
      throw new HttpError(400, `'${f}' is not supported by this server`, f);
  }
  const num = (f: string, fallback: number, ok: (v: number) => boolean, range: string) => {
    const v = body[f];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      throw new HttpError(400, `'${f}' must be ${range}, got ${JSON.stringify(v)}`, f);
    return v;
  };
  if (body.max_tokens != null && body.max_completion_tokens != null)
    throw new HttpError(
      400,
      "give 'max_tokens' or 'max_completion_tokens', not both",
      'max_tokens',
    );
  const maxField = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = num(
    maxField,
    Math.min(64, cap),
    (v) => Number.isInteger(v) && v >= minTokens && v <= cap,
    `an integer in [${minTokens}, ${cap}]`,
  );
  const temperature = num('temperature', 1, (v) => v >= 0 && v <= 2, 'a number in [0, 2]');
  const topP = num('top_p', 1, (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const seed = num('seed', 0, (v) => Number.isInteger(v), 'an integer');
  const stopRaw = body.stop;
  const stop =
    stopRaw === undefined || stopRaw === null
      ? []
      : typeof stopRaw === 'string'
        ? [stopRaw]
        : stopRaw;
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string') || stop.length > 4)
    throw new HttpError(400, "'stop' must be a string or a list of at most 4 strings", 'stop');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    throw new HttpError(400, "'stream' must be true or false", 'stream');
  if (body.n !== undefined && body.n !== null && body.n !== 1)
    throw new HttpError(400, "'n' other than 1 is not supported by this server", 'n');
  return {
    maxTokens,
    temperature,
    topP,
    seed,
    stop: stop as string[],
    stream: body.stream === true,
  };
}

/**
 * Runs tasks one at a time; at most `max` may be waiting or running, more are refused with
 * 503. Each task starts on a fresh macrotask so requests that arrived meanwhile get queued.
 */
export function boundedQueue(max: number): {
  run<T>(fn: () => T): Promise<T>;
  drain(): Promise<void>;
  readonly size: number;
} {
  let chain: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  return {
    get size() {
      return waiting;
    },
    run<T>(fn: () => T): Promise<T> {
      if (waiting >= max)
        return Promise.reject(
          new HttpError(503, `server busy: ${waiting} requests queued (limit ${max})`),
        );
      waiting++;
      const p = chain.then(() => new Promise<void>((r) => setImmediate(r))).then(() => fn());
      chain = p
        .catch(() => undefined)
        .finally(() => {
          waiting--;
        });
      return p;
    },
    drain: () => chain.then(() => undefined).catch(() => undefined),
  };
}

/** Per-token log-probs of a sequence under the model, OpenAI's completions layout. */
export interface TokenLogprobs {
  /** ids[t] for every scored position */
  ids: number[];
  /** log p(ids[t] | ids[<t]); the first token of a sequence has none (null) */
  logprobs: (number | null)[];
  /** the k most likely next tokens at each position (ids and log-probs), null at position 0 */
  top: ({ id: number; logprob: number }[] | null)[];
}

/**
 * Log-probs of `ids[from..]` (each given its prefix) and the top `k` alternatives, from one
 * forward pass; position 0 of the sequence has no prediction (null, as OpenAI's echo).
 */
export function sequenceTokenLogprobs(
  model: CausalLM,
  ids: readonly number[],
  from: number,
  k: number,
): TokenLogprobs {
  const T = ids.length;
  const out: TokenLogprobs = { ids: ids.slice(from), logprobs: [], top: [] };
  if (T === 0 || from >= T) return out;
  const start = Math.max(from, 1);
  const n = T - start; // positions with a prediction, predicted from rows start-1 .. T-2
  let chosen: ArrayLike<number> = [];
  let topV: ArrayLike<number> = [];
  let topI: ArrayLike<number> = [];
  if (n > 0) {
    const lsm = tf.tidy(() => {
      const input = tf.tensor2d([Array.from(ids)], [1, T], 'int32');
      const logits = model.call(input, tf.onesLike(input));
      return tf.logSoftmax(tf.slice(tf.reshape(logits, [T, -1]), [start - 1, 0], [n, -1]));
    }) as tf.Tensor2D;
    const targets = ids.slice(start);
    const V = lsm.shape[1];
    // flat gather at r·V + target_r (no one-hot: tfjs-wasm's float OneHot is unreliable)
    chosen = readTidy(() =>
      tf.gather(
        tf.reshape(lsm, [n * V]),
        tf.tensor1d(
          targets.map((id, r) => r * V + id),
          'int32',
        ),
      ),
    ) as Float32Array;
    if (k > 0) {
      const t = tf.topk(lsm, Math.min(k, lsm.shape[1]));
      topV = t.values.dataSync() as Float32Array;
      topI = t.indices.dataSync() as Int32Array;
      tf.dispose([t.values, t.indices]);
    }
    lsm.dispose();
  }
  const kk = Math.min(k, topV.length / Math.max(n, 1));
  for (let t = from; t < T; t++) {
    if (t === 0) {
      out.logprobs.push(null);
      out.top.push(null);
      continue;
    }
    const r = t - start;
    out.logprobs.push(chosen[r]!);
    out.top.push(
      k > 0
        ? Array.from({ length: kk }, (_, j) => ({
            id: topI[r * kk + j]!,
            logprob: topV[r * kk + j]!,
          }))
        : null,
    );
  }
  return out;
}

type PromptIn = { ids: number[]; text: string };

/**
 * The completions `prompt` in any of OpenAI's forms: a string, a list of strings, a list of
 * token ids, or a list of token-id lists. Text gets the tokenizer's BOS; token ids are used as
 * given.
 */
function promptsOf(raw: unknown, tok: HfTokenizer, vocab: number, max: number): PromptIn[] {
  const bad = () =>
    new HttpError(
      400,
      "'prompt' must be a non-empty string, a list of strings, a list of token ids, or a list of token-id lists",
      'prompt',
    );
  const fromText = (s: unknown): PromptIn => {
    if (typeof s !== 'string' || s === '') throw bad();
    return {
      ids: [
        ...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []),
        ...tok.encode(s, { addSpecialTokens: false }),
      ],
      text: s,
    };
  };
  const fromIds = (xs: unknown[], where: string): PromptIn => {
    if (xs.length === 0) throw bad();
    for (const x of xs)
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= vocab)
        throw new HttpError(
          400,
          `${where} holds ${JSON.stringify(x)}: token ids must be integers in [0, ${vocab})`,
          'prompt',
        );
    const ids = xs as number[];
    return { ids, text: tok.decode(ids) };
  };
  let list: PromptIn[];
  if (typeof raw === 'string') list = [fromText(raw)];
  else if (Array.isArray(raw) && raw.length > 0) {
    if (raw.every((x) => typeof x === 'string')) list = raw.map(fromText);
    else if (raw.every((x) => typeof x === 'number')) list = [fromIds(raw, "'prompt'")];
    else if (raw.every((x) => Array.isArray(x)))
      list = raw.map((x, i) => fromIds(x as unknown[], `'prompt[${i}]'`));
    else throw bad();
  } else throw bad();
  if (list.length > max)
    throw new HttpError(
      400,
      `'prompt' has ${list.length} prompts; at most ${max} per request`,
      'prompt',
    );
  return list;
}

/** Starts the server; resolves once it listens (a busy port is a one-line error). */
export async function serve(o: ServeOptions): Promise<RunningServer> {
  const maxQueue = o.maxQueue ?? 16;
  const cap = o.maxTokensLimit ?? 256;
  const tok = o.tokenizer;
  const context = o.model.config.maxPositions;
  const vocab = o.model.config.vocabSize;
  let closing = false;
  const created = () => Math.floor(Date.now() / 1000);
  const queue = boundedQueue(maxQueue);
  const run = queue.run;
  const stopIds = tok.eosTokenId !== undefined ? [tok.eosTokenId] : [];
  const complete = (promptIds: number[], s: Sampling) =>
    s.maxTokens === 0
      ? { ids: [[]] as number[][], texts: [''], finish: ['length' as const] }
      : generate(o.model, [promptIds], {
          maxNewTokens: s.maxTokens,
          temperature: s.temperature,
          topP: s.topP,
          seed: s.seed,
          stopTokenIds: stopIds,
          stopStrings: s.stop,
          decode: (ids) => tok.decode(ids),
        });
  const finishReason = (f: string) => (f === 'length' ? 'length' : 'stop');
  const fits = (ids: number[], s: Sampling, param: string) => {
    if (ids.length + s.maxTokens > context)
      throw new HttpError(
        400,
        `this model's context is ${context} tokens; the ${param} has ${ids.length} and max_tokens asks for ${s.maxTokens} more`,
        param,
      );
  };
  const dec = (ids: readonly number[]) => (ids.length ? tok.decode(ids) : '');
  const tokenText = (id: number) => tok.decode([id]);

  /**
   * OpenAI's legacy completions `logprobs` object for `lp.ids`, which follow `prefixIds`;
   * `text_offset` counts characters from `base` (0 with echo, else the prompt's length).
   */
  const completionLogprobs = (lp: TokenLogprobs, prefixIds: number[], base: number) => {
    const text_offset: number[] = [];
    const start = dec(prefixIds).length;
    let seen = prefixIds;
    for (const id of lp.ids) {
      text_offset.push(base + dec(seen).length - start);
      seen = [...seen, id];
    }
    return {
      tokens: lp.ids.map(tokenText),
      token_logprobs: lp.logprobs,
      top_logprobs: lp.top.map((t) =>
        t === null ? null : Object.fromEntries(t.map((x) => [tokenText(x.id), x.logprob])),
      ),
      text_offset,
    };
  };

  const sse = (res: ServerResponse, chunks: unknown[]) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
    res.end('data: [DONE]\n\n');
  };

  const chat = async (body: Record<string, unknown>, res: ServerResponse) => {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0)
      throw new HttpError(400, "'messages' must be a non-empty list", 'messages');
    messages.forEach((m, i) => {
      const msg = m as Record<string, unknown>;
      if (!msg || typeof msg.role !== 'string' || typeof msg.content !== 'string') {
        throw new HttpError(
          400,
          `messages[${i}] must be {role: string, content: string}`,
          `messages[${i}]`,
        );
      }
    });
    if (body.logprobs !== undefined && body.logprobs !== null && typeof body.logprobs !== 'boolean')
      throw new HttpError(400, "'logprobs' must be true or false", 'logprobs');
    const topK = body.top_logprobs ?? 0;
    if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0 || topK > 20)
      throw new HttpError(400, "'top_logprobs' must be an integer in [0, 20]", 'top_logprobs');
    if (topK > 0 && body.logprobs !== true)
      throw new HttpError(400, "'top_logprobs' needs 'logprobs': true", 'top_logprobs');
    const s = sampling(body, cap, 1);
    const prompt = tok.applyChatTemplate(messages as { role: string; content: string }[], {
      addGenerationPrompt: true,
    });
    const ids = tok.encode(prompt, { addSpecialTokens: false });
    fits(ids, s, 'messages');
    const r = await run(() => {
      const g = complete(ids, s);
      const lp =
        body.logprobs === true
          ? sequenceTokenLogprobs(o.model, [...ids, ...g.ids[0]!], ids.length, topK)
          : undefined;
      return { ...g, lp };
    });
    const content = r.texts![0]!;
    const logprobs = r.lp
      ? {
          content: r.lp.ids.map((id, t) => ({
            token: tokenText(id),
            logprob: r.lp!.logprobs[t],
            bytes: [...Buffer.from(tokenText(id), 'utf8')],
            top_logprobs: (r.lp!.top[t] ?? []).map((x) => ({
              token: tokenText(x.id),
              logprob: x.logprob,
              bytes: [...Buffer.from(tokenText(x.id), 'utf8')],
            })),
          })),
        }
      : null;
    const id = `chatcmpl-${Date.now().toString(36)}`;
    const finish = finishReason(r.finish[0]!);
    const usage = {
      prompt_tokens: ids.length,
      completion_tokens: r.ids[0]!.length,
      total_tokens: ids.length + r.ids[0]!.length,
    };
    if (s.stream) {
      const base = { id, object: 'chat.completion.chunk', created: created(), model: o.modelId };
      sse(res, [
        {
          ...base,
          choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
        },
        ...(content
          ? [
              {
                ...base,
                choices: [{ index: 0, delta: { content }, logprobs, finish_reason: null }],
              },
            ]
          : []),
        { ...base, choices: [{ index: 0, delta: {}, finish_reason: finish }] },
      ]);
      return;
    }
    send(res, 200, {
      id,
      object: 'chat.completion',
      created: created(),
      model: o.modelId,
      choices: [
        { index: 0, message: { role: 'assistant', content }, logprobs, finish_reason: finish },
      ],
      usage,
    });
  };

  const completions = async (body: Record<string, unknown>, res: ServerResponse) => {
    const echo = body.echo ?? false;
    if (typeof echo !== 'boolean') throw new HttpError(400, "'echo' must be true or false", 'echo');
    const k = body.logprobs ?? null;
    if (k !== null && (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 20))
      throw new HttpError(400, "'logprobs' must be an integer in [0, 20] or null", 'logprobs');
    // max_tokens 0 is allowed with echo (score the prompt only), as OpenAI's completions API
    const s = sampling(body, cap, echo ? 0 : 1);
    const prompts = promptsOf(body.prompt, tok, vocab, o.maxPrompts ?? 64);
    prompts.forEach((p, i) => {
      fits(p.ids, s, prompts.length > 1 ? `prompt[${i}]` : 'prompt');
    });
    const results = await run(() =>
      prompts.map((p) => {
        const g = complete(p.ids, s);
        const all = [...p.ids, ...g.ids[0]!];
        const lp =
          k !== null ? sequenceTokenLogprobs(o.model, all, echo ? 0 : p.ids.length, k) : undefined;
        return { g, lp };
      }),
    );
    const choices = results.map(({ g, lp }, index) => {
      const p = prompts[index]!;
      const text = (echo ? p.text : '') + g.texts![0]!;
      return {
        index,
        text,
        finish_reason: finishReason(g.finish[0]!),
        logprobs: lp ? completionLogprobs(lp, echo ? [] : p.ids, echo ? 0 : p.text.length) : null,
      };
    });
    const usage = {
      prompt_tokens: prompts.reduce((t, p) => t + p.ids.length, 0),
      completion_tokens: results.reduce((t, r) => t + r.g.ids[0]!.length, 0),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = `cmpl-${Date.now().toString(36)}`;
    if (s.stream) {
      const base = { id, object: 'text_completion', created: created(), model: o.modelId };
      sse(res, [
        ...choices.map((c) => ({
          ...base,
          choices: [{ index: c.index, text: c.text, logprobs: c.logprobs, finish_reason: null }],
        })),
        ...choices.map((c) => ({
          ...base,
          choices: [{ index: c.index, text: '', logprobs: null, finish_reason: c.finish_reason }],
        })),
      ]);
      return;
    }
    send(res, 200, {
      id,
      object: 'text_completion',
      created: created(),
      model: o.modelId,
      choices,
      usage,
    });
  };

  const server = createServer(async (req, res) => {
    try {
      if (closing) throw new HttpError(503, 'server is shutting down');
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/v1/models') {
        send(res, 200, {
          object: 'list',
          data: [{ id: o.modelId, object: 'model', created: created(), owned_by: 'alignjs' }],
        });
        return;
      }
      if (
        req.method !== 'POST' ||
        (url.pathname !== '/v1/chat/completions' && url.pathname !== '/v1/completions')
      ) {
        throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
      }
      if (queue.size >= maxQueue)
        throw new HttpError(503, `server busy: ${queue.size} requests queued (limit ${maxQueue})`);
      const body = await readJson(req, o.maxBodyBytes ?? 1_000_000);
      if (body.model !== undefined && body.model !== o.modelId)
        throw new HttpError(
          404,
          `model '${body.model}' not found; this server has '${o.modelId}'`,
          'model',
        );
      if (url.pathname === '/v1/chat/completions') await chat(body, res);
      else await completions(body, res);
    } catch (err) {
      if (res.headersSent) res.end();
      else if (err instanceof HttpError) sendError(res, err);
      else sendError(res, new HttpError(500, (err as Error).message));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${o.port ?? 8000} on ${o.host ?? '127.0.0.1'} is in use; pick another with --port`,
            )
          : err,
      ),
    );
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', resolve);
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address}:${addr.port}`,
    server,
    async close() {
      closing = true;
      await queue.drain();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
