import './gradients.js';
import { initBackend } from './backend.js';

// Every test file runs on the backend alignjs would pick (wasm here; ALIGNJS_BACKEND overrides).
await initBackend();
