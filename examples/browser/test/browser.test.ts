/**
 * The browser example in a real browser: Debian's Chromium (`/usr/bin/chromium`, installed by
 * `.ci/run`) driven by playwright-core opens the built page served on 127.0.0.1, which trains
 * the tiny model in the tab; its per-step losses must equal the same training run in Node
 * (the same `train()` on the wasm backend) within 1e-5. Without Chromium the test is skipped
 * saying why, except under CI, where it fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@alignjs/core-logprob';
import { loadModel, loadTokenizer, tinyModelDir } from '@alignjs/models/node';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { train } from '../src/train.js';

const here = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.ALIGNJS_CHROMIUM ?? '/usr/bin/chromium';
const ready = existsSync(CHROMIUM);
if (!ready && process.env.CI)
  throw new Error(`browser test: no Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium)`);
const suite = ready ? describe : describe.skip;
const STEPS = 6;
const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

let server: Server;
let url = '';

beforeAll(async () => {
  if (!ready) return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: here, stdio: 'inherit' });
  const dist = join(here, 'dist');
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/`;
}, 120_000);
afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
});

async function inBrowser(query: string) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}${query}`, { timeout: 30_000 });
    await page.waitForFunction(
      () => window.__alignjs && window.__alignjs.status !== 'running',
      null,
      {
        timeout: 120_000,
      },
    );
    const r = await page.evaluate(() => window.__alignjs!);
    const chart = await page.locator('#chart svg polyline').count();
    return { ...r, errors, chart };
  } finally {
    await browser.close();
  }
}

async function inNode(objective: 'dpo' | 'rao') {
  await initBackend({ backend: 'wasm' });
  const model = await loadModel(tinyModelDir());
  const tok = await loadTokenizer(tinyModelDir());
  const h = await train(model, tok, { objective, steps: STEPS });
  model.dispose();
  return h.map((r) => r.loss);
}

suite('the browser example in Chromium', () => {
  it.each(['dpo', 'rao'] as const)(
    '%s: trains in the tab with the same losses as Node (1e-5), chart and answers shown',
    async (objective) => {
      const page = await inBrowser(`?steps=${STEPS}&objective=${objective}`);
      expect(page.error, page.errors.join('\n')).toBeUndefined();
      expect(page.status).toBe('done');
      expect(page.backend).toBe('wasm');
      expect(page.chart).toBe(1);
      expect(page.before?.length).toBe(3);
      expect(page.after?.length).toBe(3);
      const node = await inNode(objective);
      expect(page.losses.length).toBe(STEPS);
      const worst = Math.max(...node.map((v, i) => Math.abs(v - page.losses[i]!)));
      console.log(
        `${objective}: browser ${page.losses.map((v) => v.toFixed(5))}; max |browser − node| ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-5);
      expect(page.losses.at(-1)!).toBeLessThan(page.losses[0]!);
    },
    240_000,
  );
});
