// `serve` with the built-in tiny model, checked with plain fetch on 127.0.0.1.
import {
  generate,
  type HfTokenizer,
  loadModel,
  loadTokenizer,
  tinyModelDir,
} from '@alignjs/models/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loglikelihoods } from './harness-run.js';
import { boundedQueue, type RunningServer, serve } from './serve.js';

let srv: RunningServer;
let tok: HfTokenizer;
let model: Awaited<ReturnType<typeof loadModel>>;

beforeAll(async () => {
  model = await loadModel(tinyModelDir());
  tok = await loadTokenizer(tinyModelDir());
  srv = await serve({
    model,
    tokenizer: tok,
    modelId: 'tiny',
    port: 0,
    maxQueue: 2,
    maxTokensLimit: 64,
  });
});
afterAll(async () => {
  await srv.close();
  model.dispose();
});

const post = (path: string, body: unknown) =>
  fetch(`${srv.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });

describe('OpenAI-compatible server', () => {
  it('lists the model and answers chat and text completions', async () => {
    const models = await (await fetch(`${srv.url}/v1/models`)).json();
    expect(models.data[0].id).toBe('tiny');
    const messages = [{ role: 'user', content: 'Tell me about the cat.' }];
    const res = await post('/v1/chat/completions', {
      model: 'tiny',
      messages,
      temperature: 0,
      max_tokens: 20,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.object).toBe('chat.completion');
    expect(typeof body.choices[0].message.content).toBe('string');
    expect(['stop', 'length']).toContain(body.choices[0].finish_reason);
    // Greedy decoding over HTTP equals local greedy generation.
    const ids = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), {
      addSpecialTokens: false,
    });
    const local = generate(model, [ids], {
      greedy: true,
      maxNewTokens: 20,
      stopTokenIds: [tok.eosTokenId!],
      decode: (x) => tok.decode(x),
    });
    expect(body.choices[0].message.content).toBe(local.texts![0]);
    expect(body.usage.prompt_tokens).toBe(ids.length);
    const text = await (
      await post('/v1/completions', { prompt: 'The cat is', max_tokens: 5, temperature: 0 })
    ).json();
    expect(text.object).toBe('text_completion');
    expect(typeof text.choices[0].text).toBe('string');
  });

  it('rejects bad requests with clear 4xx errors', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/v1/chat/completions', '{not json', 400, /not a JSON object/],
      ['/v1/chat/completions', { messages: [] }, 400, /'messages' must be a non-empty list/],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user' }] },
        400,
        /messages\[0\] must be \{role: string, content: string\}/,
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 },
        400,
        /'max_tokens' must be an integer in \[1, 64\]/,
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], stream: 'yes' },
        400,
        /'stream' must be true or false/,
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_object' } },
        400,
        /'response_format' is not supported by this server/,
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], tools: [] },
        400,
        /'tools' is not supported/,
      ],
      ['/v1/completions', { prompt: 'x', n: 2 }, 400, /'n' other than 1 is not supported/],
      [
        '/v1/completions',
        { prompt: 'x', max_tokens: 0 },
        400,
        /'max_tokens' must be an integer in \[1, 64\]/,
      ],
      [
        '/v1/completions',
        { prompt: 'x', max_tokens: 2, max_completion_tokens: 2 },
        400,
        /not both/,
      ],
      ['/v1/completions', { prompt: [[1, 2], [999999]] }, 400, /'prompt\[1\]' holds 999999/],
      [
        '/v1/completions',
        { prompt: 'x', logprobs: 99 },
        400,
        /'logprobs' must be an integer in \[0, 20\]/,
      ],
      [
        '/v1/completions',
        { prompt: 'cat '.repeat(400), max_tokens: 1 },
        400,
        /this model's context is 128 tokens; the prompt has \d+ and max_tokens asks for 1 more/,
      ],
      [
        '/v1/chat/completions',
        { model: 'gpt-9', messages: [{ role: 'user', content: 'x' }] },
        404,
        /model 'gpt-9' not found/,
      ],
      ['/v1/completions', { prompt: 42 }, 400, /'prompt' must be a non-empty string/],
      ['/v1/embeddings', {}, 404, /no route POST \/v1\/embeddings/],
    ];
    for (const [path, body, status, re] of cases) {
      const res = await post(path, body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(status);
      expect((await res.json()).error.message).toMatch(re);
    }
  });

  it('bounds the queue: excess work gets 503, accepted work completes in order', async () => {
    const q = boundedQueue(2);
    const order: number[] = [];
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => q.run(() => order.push(n))));
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect(((results[2] as PromiseRejectedResult).reason as Error).message).toMatch(
      /server busy: 2 requests queued \(limit 2\)/,
    );
    expect(order).toEqual([1, 2]);
    expect(q.size).toBe(0);
  });

  it('shuts down gracefully: refuses new work after close', async () => {
    const m = await loadModel(tinyModelDir());
    const s = await serve({ model: m, tokenizer: tok, modelId: 'tiny', port: 0 });
    const ok = await fetch(`${s.url}/v1/models`);
    expect(ok.status).toBe(200);
    await s.close();
    await expect(
      fetch(`${s.url}/v1/models`, { signal: AbortSignal.timeout(5000) }),
    ).rejects.toThrow();
    m.dispose();
  });

  it('echo + logprobs on token ids, as lm-eval local-completions asks: the log-likelihoods our harness computes', async () => {
    const ctx = tok.encode('The cat is', { addSpecialTokens: false });
    const cont = tok.encode(' happy and calm', { addSpecialTokens: false });
    const ids = [...ctx, ...cont];
    const res = await post('/v1/completions', {
      model: 'tiny',
      prompt: [ids],
      max_tokens: 1,
      temperature: 0,
      logprobs: 1,
      echo: true,
      seed: 1234,
    });
    expect(res.status).toBe(200);
    const c = (await res.json()).choices[0];
    const lp = c.logprobs;
    expect(lp.tokens.length).toBe(ids.length + 1);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.top_logprobs[0]).toBeNull();
    expect(c.text.startsWith(tok.decode(ids))).toBe(true);
    const sum = lp.token_logprobs.slice(ctx.length, -1).reduce((a: number, b: number) => a + b, 0);
    const [want] = loglikelihoods(model, tok, [
      { context: 'The cat is', continuation: ' happy and calm' },
    ]);
    expect(Math.abs(sum - want!)).toBeLessThan(1e-4);
    // top-1 is the argmax: a greedy token's own log-prob equals its top entry
    for (let t = 1; t < lp.tokens.length; t++) {
      const top = Object.values(lp.top_logprobs[t]) as number[];
      expect(top.length).toBe(1);
      expect(top[0]!).toBeGreaterThanOrEqual(lp.token_logprobs[t] - 1e-6);
    }
    expect(lp.text_offset[0]).toBe(0);
    expect(lp.text_offset).toEqual([...lp.text_offset].sort((a: number, b: number) => a - b));
    // max_tokens 0 with echo scores the prompt alone
    const zero = await (
      await post('/v1/completions', { prompt: [ids], max_tokens: 0, logprobs: 0, echo: true })
    ).json();
    // the same prompt scored in a forward of T tokens and one of T + 1: equal up to float
    // rounding (the kernels tile the two lengths differently)
    const zeroLps = zero.choices[0].logprobs.token_logprobs.slice(1) as number[];
    const withGen = lp.token_logprobs.slice(1, -1) as number[];
    expect(zeroLps.length).toBe(withGen.length);
    zeroLps.forEach((v, i) => {
      expect(Math.abs(v - withGen[i]!)).toBeLessThan(1e-5);
    });
    expect(zero.choices[0].text).toBe(tok.decode(ids));
  });

  it('takes lists of prompts, max_completion_tokens, and streams with server-sent events', async () => {
    const many = await (
      await post('/v1/completions', {
        prompt: ['The cat is', 'The dog is'],
        max_completion_tokens: 3,
        temperature: 0,
      })
    ).json();
    expect(many.choices.map((c: { index: number }) => c.index)).toEqual([0, 1]);
    expect(many.usage.completion_tokens).toBeLessThanOrEqual(6);
    const body = {
      messages: [{ role: 'user', content: 'Tell me about the cat.' }],
      temperature: 0,
      max_tokens: 12,
    };
    const plain = await (await post('/v1/chat/completions', body)).json();
    const res = await post('/v1/chat/completions', { ...body, stream: true });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    expect(text).toBe(plain.choices[0].message.content);
    expect(chunks.at(-1).choices[0].finish_reason).toBe(plain.choices[0].finish_reason);
    const ctext = await (
      await post('/v1/completions', {
        prompt: 'The cat is',
        max_tokens: 4,
        temperature: 0,
        stream: true,
      })
    ).text();
    expect(ctext.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('a busy port is a one-line error', async () => {
    const port = Number(new URL(srv.url).port);
    await expect(serve({ model, tokenizer: tok, modelId: 'tiny', port })).rejects.toThrow(
      new RegExp(`^port ${port} on 127.0.0.1 is in use; pick another with --port$`),
    );
  });

  it('under load (concurrency 1, 8, 32 on loopback): only 200s and documented 503s, RSS bounded', async () => {
    const rss0 = process.memoryUsage().rss;
    const started = Date.now();
    let served = 0;
    for (const concurrency of [1, 8, 32]) {
      const statuses = await Promise.all(
        Array.from({ length: concurrency * 2 }, (_, i) =>
          post('/v1/completions', {
            prompt: `The cat ${i} is`,
            max_tokens: 4,
            temperature: 0,
          }).then(async (r) => {
            if (r.status === 503) expect(r.headers.get('retry-after')).toBe('1');
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
      expect(
        statuses.every((st) => st === 200 || st === 503),
        `${concurrency}: ${statuses}`,
      ).toBe(true);
      served += statuses.filter((st) => st === 200).length;
      if (concurrency === 32) expect(statuses).toContain(503); // the queue holds 2
    }
    expect(served).toBeGreaterThan(4);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 2 ** 20);
  }, 30_000);
});
