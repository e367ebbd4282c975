import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/**
 * Serves (dev) and copies (build) what the page fetches at run time: the tiny model's files
 * under `tiny/` and tfjs-backend-wasm's binaries under `wasm/`, from the installed packages.
 */
function staticFiles(): Plugin {
  const wasmDir = join(
    dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
    'dist',
  );
  const tinyDir = join(dirname(require.resolve('@alignjs/models/package.json')), 'tiny');
  const pub = join(here, 'public');
  return {
    name: 'alignjs-static-files',
    buildStart() {
      mkdirSync(join(pub, 'wasm'), { recursive: true });
      for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')))
        cpSync(join(wasmDir, f), join(pub, 'wasm', f));
      mkdirSync(join(pub, 'tiny'), { recursive: true });
      for (const f of [
        'config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
      ])
        cpSync(join(tinyDir, f), join(pub, 'tiny', f));
    },
  };
}

export default defineConfig({
  plugins: [staticFiles()],
  // a missing file is a 404, not index.html (the model loader probes optional files)
  appType: 'mpa',
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
