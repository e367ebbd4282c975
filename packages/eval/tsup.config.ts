import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.shared.js';

// `index` is browser-safe; `node` adds files, servers and processes (Node only).
export default defineConfig({ ...libraryBuild, entry: ['src/index.ts', 'src/node.ts'] });
