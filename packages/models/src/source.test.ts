/**
 * Loading without a file system: a model directory served over HTTP (a server this test
 * starts on 127.0.0.1) and the same files as buffers give the model `loadModel(dir)` gives —
 * equal logits — and the same tokenizer; a dev server's HTML fallback counts as an absent
 * file, and an HTTP error names the URL and status.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HfTokenizer,
  loadModelFrom,
  loadModelFromUrl,
  memorySource,
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
