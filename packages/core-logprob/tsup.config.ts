import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/cache.ts', 'src/testing.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'neutral',
  // Bundle tfjs-core's gradient registrations (ES-module source Node cannot load from the
  // CommonJS package); keep the public tfjs-core entry and every backend external.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\//],
  external: ['@tensorflow/tfjs-core', /^@tensorflow\/tfjs-(backend|node)/, /^node:/],
});
