import { initBackend } from '@alignjs/core-logprob';

// Every package's tests run on the backend alignjs would pick (wasm here; ALIGNJS_BACKEND overrides).
await initBackend();
