/** Every `alignjs` command: one module each, registered here (flags and help in `flags.ts`). */
import type { Args } from '../args.js';
import * as demo from './demo.js';
import * as generate from './generate.js';
import * as harness from './harness.js';
import * as judge from './judge.js';
import * as precomputeRef from './precompute-ref.js';
import * as serve from './serve.js';
import * as train from './train.js';
import * as trainRm from './train-rm.js';

export const HANDLERS: Readonly<Record<string, (args: Args) => Promise<number>>> = Object.freeze({
  demo: demo.run,
  train: train.run,
  'precompute-ref': precomputeRef.run,
  'train-rm': trainRm.run,
  generate: generate.run,
  serve: serve.run,
  harness: harness.run,
  judge: judge.run,
});
