// `serve` with the built-in tiny model, checked with plain fetch on 127.0.0.1.
import { generate, HfTokenizer, loadModel, tinyModelDir } from '@alignjs/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedQueue, type RunningServer, serve } from './serve.js';

let srv: RunningServer;
let tok: HfTokenizer;
let model: Awaited<ReturnType<typeof loadModel>>;

beforeAll(async () => {
  model = await loadModel(tinyModelDir());
  tok = await HfTokenizer.fromDir(tinyModelDir());
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
        { messages: [{ role: 'user', content: 'x' }], stream: true },
        400,
        /'stream' is not supported/,
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
});
