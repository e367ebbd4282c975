import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    setupFiles: ['./src/test-setup.ts'],
    // Same as the build: transform tfjs-core's ES-module gradient files instead of handing
    // them to Node, which would read them as CommonJS.
    server: { deps: { inline: [/@tensorflow\/tfjs-core\/dist\/(?!tf-core)/] } },
  },
});
