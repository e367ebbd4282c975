/**
 * `alignjs serve`: an OpenAI-compatible HTTP server for a local model directory —
 * `GET /v1/models`, `POST /v1/chat/completions` (chat template), `POST /v1/completions`
 * (plain prompts). Requests are validated (clear 4xx), run one at a time through a bounded
 * queue (503 when full), and `close()` drains in-flight work before the socket closes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CausalLM, generate, type HfTokenizer } from '@alignjs/models';

export interface ServeOptions {
  model: CausalLM;
  tokenizer: HfTokenizer;
  /** the id `/v1/models` reports and requests must name (any name is accepted if omitted in a request) */
  modelId: string;
  host?: string;
  port?: number;
  /** requests waiting at most (default 16); more get 503 */
  maxQueue?: number;
  /** cap on max_tokens (default 256) */
  maxTokensLimit?: number;
  maxBodyBytes?: number;
}

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: HttpError): void {
  send(res, err.status, {
    error: {
      message: err.message,
      type: err.status >= 500 ? 'server_error' : 'invalid_request_error',
      param: err.param ?? null,
      code: null,
    },
  });
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
}

function sampling(body: Record<string, unknown>, cap: number): Sampling {
  const num = (f: string, fallback: number, ok: (v: number) => boolean, range: string) => {
    const v = body[f];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      throw new HttpError(400, `'${f}' must be ${range}, got ${JSON.stringify(v)}`, f);
    return v;
  };
  const maxTokens = num(
    'max_tokens',
    64,
    (v) => Number.isInteger(v) && v >= 1 && v <= cap,
    `an integer in [1, ${cap}]`,
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
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string'))
    throw new HttpError(400, "'stop' must be a string or a list of strings", 'stop');
  if (body.stream === true)
    throw new HttpError(400, "'stream' is not supported; send stream: false", 'stream');
  if (body.n !== undefined && body.n !== 1) throw new HttpError(400, "'n' must be 1", 'n');
  return { maxTokens, temperature, topP, seed, stop: stop as string[] };
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

/** Starts the server; resolves once it listens. */
export async function serve(o: ServeOptions): Promise<RunningServer> {
  const maxQueue = o.maxQueue ?? 16;
  const cap = o.maxTokensLimit ?? 256;
  const tok = o.tokenizer;
  let closing = false;
  const created = () => Math.floor(Date.now() / 1000);
  const queue = boundedQueue(maxQueue);
  const run = queue.run;
  const complete = (promptIds: number[], s: Sampling) =>
    generate(o.model, [promptIds], {
      maxNewTokens: s.maxTokens,
      temperature: s.temperature,
      topP: s.topP,
      seed: s.seed,
      stopTokenIds: tok.eosTokenId !== undefined ? [tok.eosTokenId] : [],
      stopStrings: s.stop,
      decode: (ids) => tok.decode(ids),
    });
  const finishReason = (f: string) => (f === 'length' ? 'length' : 'stop');

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
      const body = await readJson(req, o.maxBodyBytes ?? 1_000_000);
      if (body.model !== undefined && body.model !== o.modelId)
        throw new HttpError(
          404,
          `model '${body.model}' not found; this server has '${o.modelId}'`,
          'model',
        );
      const s = sampling(body, cap);
      if (url.pathname === '/v1/chat/completions') {
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
        const prompt = tok.applyChatTemplate(messages as { role: string; content: string }[], {
          addGenerationPrompt: true,
        });
        const ids = tok.encode(prompt, { addSpecialTokens: false });
        const r = await run(() => complete(ids, s));
        send(res, 200, {
          id: `chatcmpl-${Date.now().toString(36)}`,
          object: 'chat.completion',
          created: created(),
          model: o.modelId,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: r.texts![0]! },
              finish_reason: finishReason(r.finish[0]!),
            },
          ],
          usage: {
            prompt_tokens: ids.length,
            completion_tokens: r.ids[0]!.length,
            total_tokens: ids.length + r.ids[0]!.length,
          },
        });
        return;
      }
      const prompt = body.prompt;
      if (typeof prompt !== 'string' || prompt === '')
        throw new HttpError(400, "'prompt' must be a non-empty string", 'prompt');
      const ids = [
        ...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []),
        ...tok.encode(prompt, { addSpecialTokens: false }),
      ];
      const r = await run(() => complete(ids, s));
      send(res, 200, {
        id: `cmpl-${Date.now().toString(36)}`,
        object: 'text_completion',
        created: created(),
        model: o.modelId,
        choices: [
          {
            index: 0,
            text: r.texts![0]!,
            finish_reason: finishReason(r.finish[0]!),
            logprobs: null,
          },
        ],
        usage: {
          prompt_tokens: ids.length,
          completion_tokens: r.ids[0]!.length,
          total_tokens: ids.length + r.ids[0]!.length,
        },
      });
    } catch (err) {
      if (err instanceof HttpError) sendError(res, err);
      else sendError(res, new HttpError(500, (err as Error).message));
    }
  });
  await new Promise<void>((resolve) =>
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', resolve),
  );
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
