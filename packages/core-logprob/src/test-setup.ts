import './gradients.js';
import { initBackend } from './backend.js';

// Every test file runs on wasm unless ALIGNJS_BACKEND names another (pinned: an installed
// tfjs-node does not move the default run; CI runs the suite again on tensorflow).
process.env.ALIGNJS_BACKEND ||= 'wasm';
await initBackend();
