/**
 * The browser demo: loads the built-in tiny model over HTTP, trains it with DPO (or RAO:
 * `?objective=rao`) on the demo task in the tab, draws the loss as it goes and shows greedy
 * answers before and after. `window.__alignjs` holds the result for the browser test.
 */
import { initBackend } from '@alignjs/core-logprob';
import { HfTokenizer, loadModelFromUrl, urlSource } from '@alignjs/models';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { OBJECTIVES, type ObjectiveName, sample, train } from './train.js';

declare global {
  interface Window {
    __alignjs?: {
      status: 'running' | 'done' | 'error';
      backend?: string;
      losses: number[];
      before?: string[];
      after?: string[];
      error?: string;
    };
  }
}

const $ = (id: string) => document.getElementById(id)!;
const params = new URLSearchParams(location.search);
const steps = Number(params.get('steps') ?? 40);
const objective = (params.get('objective') ?? 'dpo') as ObjectiveName;
const PROMPTS = ['Tell me about the cat.', 'Describe the river.', 'What is the city like?'];

function chart(losses: number[]): void {
  const w = 480;
  const h = 180;
  const max = Math.max(...losses, 0.7);
  const min = Math.min(...losses) - 0.01;
  const x = (i: number) => 30 + (i / Math.max(1, steps - 1)) * (w - 40);
  const y = (v: number) => 10 + ((max - v) / (max - min || 1)) * (h - 30);
  const pts = losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  $('chart').innerHTML =
    `<svg width="${w}" height="${h}" role="img" aria-label="training loss">` +
    `<line x1="30" y1="${h - 20}" x2="${w - 10}" y2="${h - 20}" stroke="#999"/>` +
    `<line x1="30" y1="10" x2="30" y2="${h - 20}" stroke="#999"/>` +
    `<text x="2" y="${y(max) + 4}" font-size="10">${max.toFixed(2)}</text>` +
    `<text x="2" y="${y(min) + 4}" font-size="10">${min.toFixed(2)}</text>` +
    `<polyline fill="none" stroke="#2563eb" stroke-width="2" points="${pts}"/></svg>`;
}

function answers(id: string, texts: string[]): void {
  $(id).innerHTML = PROMPTS.map((p, i) => `<li><b>${p}</b> ${texts[i] ?? ''}</li>`).join('');
}

async function run(): Promise<void> {
  const result: NonNullable<Window['__alignjs']> = { status: 'running', losses: [] };
  window.__alignjs = result;
  if (!(objective in OBJECTIVES)) throw new Error(`objective '${objective}': use dpo or rao`);
  const info = await initBackend({
    backend: 'wasm',
    modules: { '@tensorflow/tfjs-backend-wasm': wasm },
    wasmPath: new URL('wasm/', location.href).href,
  });
  result.backend = info.backend;
  $('status').textContent =
    `backend ${info.backend} (SIMD ${info.wasm?.simd}); loading the tiny model…`;
  const base = new URL('tiny/', location.href);
  const model = await loadModelFromUrl(base);
  const tok = await HfTokenizer.fromSource(urlSource(base));
  result.before = sample(model, tok, PROMPTS);
  answers('before', result.before);
  $('status').textContent = `training ${objective.toUpperCase()} for ${steps} steps…`;
  await train(model, tok, {
    objective,
    steps,
    onStep: (r) => {
      result.losses.push(r.loss);
      $('status').textContent = `step ${r.step}/${steps}: loss ${r.loss.toFixed(4)}`;
      chart(result.losses);
    },
  });
  result.after = sample(model, tok, PROMPTS);
  answers('after', result.after);
  $('status').textContent =
    `done: ${steps} steps of ${objective.toUpperCase()}, final loss ${result.losses.at(-1)?.toFixed(4)}`;
  model.dispose();
  result.status = 'done';
}

run().catch((err: Error) => {
  window.__alignjs = {
    ...(window.__alignjs ?? { losses: [] }),
    status: 'error',
    error: err.message,
  };
  $('status').textContent = `error: ${err.message}`;
});
