/**
 * Loading without a file system: a model directory served over HTTP (a server this test
 * starts on 127.0.0.1) and the same files as buffers give the model `loadModel(dir)` gives —
 * equal logits — and the same tokenizer; a dev server's HTML fallback counts as an absent
 * file, and an HTTP error names the URL and status.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { initBackend } from '@alignjs/core-logprob';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HfTokenizer,
  loadModelFrom,
  loadModelFromUrl,
  memorySource,
  parameterShapes,
  parseModelConfig,
  TINY_MODEL_FILES,
  urlSource,
} from './index.js';
import { loadModel, loadTokenizer, tinyModelDir } from './node.js';

let server: Server;
let base = '';
let requests = 0;
beforeAll(async () => {
  server = createServer(async (req, res) => {
    requests++;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/broken/config.json') return void res.writeHead(500, 'Boom').end();
    if (path.startsWith('/spa/')) {
      // a single-page-app fallback: index.html for anything it does not have
      const f = path.slice('/spa/'.length);
      if (TINY_MODEL_FILES.includes(f))
        return void res.end(await readFile(join(tinyModelDir(), f)));
      return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html>');
    }
    const f = path.slice(1);
    if (!TINY_MODEL_FILES.includes(f)) return void res.writeHead(404).end();
    res.end(await readFile(join(tinyModelDir(), f)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function logitsOf(load: () => Promise<Awaited<ReturnType<typeof loadModel>>>) {
  const m = await load();
  const ids = tf.tensor2d([[398, 5, 17, 30, 2]], undefined, 'int32');
  const mask = tf.onesLike(ids);
  const out = m.call(ids, mask);
  const v = Array.from(out.dataSync());
  tf.dispose([ids, mask, out]);
  m.dispose();
  return v;
}

describe('model sources', () => {
  it('a URL and buffers load the same model and tokenizer as the directory', async () => {
    const want = await logitsOf(() => loadModel(tinyModelDir()));
    expect(await logitsOf(() => loadModelFromUrl(base))).toEqual(want);
    const files: Record<string, ArrayBuffer> = {};
    for (const f of TINY_MODEL_FILES) {
      const b = await readFile(join(tinyModelDir(), f));
      files[f] = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    }
    expect(await logitsOf(() => loadModelFrom(memorySource(files)))).toEqual(want);
    const text = 'Tell me about the cat.';
    const dirTok = await loadTokenizer(tinyModelDir());
    for (const src of [urlSource(base), memorySource(files)]) {
      const tok = await HfTokenizer.fromSource(src);
      expect(tok.encode(text)).toEqual(dirTok.encode(text));
      expect(tok.chatTemplate).toBe(dirTok.chatTemplate);
    }
  });

  it("a dev server's HTML fallback is an absent file; HTTP errors name the URL", async () => {
    const n = requests;
    expect((await logitsOf(() => loadModelFromUrl(`${base}spa/`))).length).toBeGreaterThan(0);
    expect(requests).toBeGreaterThan(n);
    await expect(loadModelFromUrl(`${base}broken/`)).rejects.toThrow(
      `${base}broken/config.json: HTTP 500 Boom`,
    );
    await expect(loadModelFromUrl(`${base}nothing-here/`)).rejects.toThrow(
      `${base}nothing-here/config.json: not found`,
    );
  });
});

describe('weights too large for wasm', () => {
  it('a Qwen2.5-0.5B-shaped checkpoint is refused on wasm before any tensor is read, with the remedy', async () => {
    // Qwen2.5-0.5B's config.json: 494M parameters, 1.84 GiB as float32
    const config = {
      model_type: 'qwen2',
      vocab_size: 151936,
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      hidden_act: 'silu',
    };
    const shapes = parameterShapes(parseModelConfig(config));
    let at = 0;
    const header: Record<string, unknown> = {};
    for (const [name, shape] of shapes) {
      const n = 4 * shape.reduce((a, b) => a * b, 1);
      header[name] = { dtype: 'F32', shape, data_offsets: [at, at + n] };
      at += n;
    }
    expect(at / 4).toBeGreaterThan(490e6);
    const json = new TextEncoder().encode(JSON.stringify(header));
    const head = new Uint8Array(8 + json.byteLength);
    new DataView(head.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    head.set(json, 8);
    const reads: [number, number][] = [];
    const inner = memorySource({ 'config.json': JSON.stringify(config) }, 'qwen-0.5b');
    const src = {
      ...inner,
      read: async (f: string) => (f === 'model.safetensors' ? head : inner.read(f)),
      size: async (f: string) => (f === 'model.safetensors' ? head.byteLength + at : inner.size(f)),
      readRange: async (f: string, b: number, e: number) => {
        if (f !== 'model.safetensors') return inner.readRange(f, b, e);
        reads.push([b, e]);
        if (e > head.byteLength) throw new Error('read tensor data');
        return head.slice(b, e);
      },
      list: async () => ['config.json', 'model.safetensors'],
    };
    const before = tf.getBackend();
    await initBackend({ backend: 'wasm' });
    try {
      await expect(loadModelFrom(src)).rejects.toThrow(
        /qwen-0\.5b: the weights take 1\.84 GiB as float32, more than the wasm backend can hold.*ALIGNJS_BACKEND=tensorflow/,
      );
      // only the header was read
      expect(reads.every(([, e]) => e <= head.byteLength)).toBe(true);
    } finally {
      await tf.setBackend(before);
    }
  });
});
