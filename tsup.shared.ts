import type { Options } from 'tsup';

/** The build every library package shares: ESM + declarations from src/index.ts. */
export const libraryBuild: Options = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
};
