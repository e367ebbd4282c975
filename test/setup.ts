import { initBackend } from '@alignjs/core-logprob';

// Every package's tests run on wasm unless ALIGNJS_BACKEND names another (CI runs the whole
// suite a second time with ALIGNJS_BACKEND=tensorflow): pinned, so an installed tfjs-node does
// not silently move the default run onto it. Code under test that calls initBackend() sees
// the same choice through the environment.
process.env.ALIGNJS_BACKEND ||= 'wasm';
await initBackend();
