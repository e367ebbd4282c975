import { fileURLToPath } from 'node:url';

/** Test settings shared by every package except core-logprob (which tests its own sources). */
export const sharedTest = {
  testTimeout: 120_000,
  setupFiles: [fileURLToPath(new URL('./test/setup.ts', import.meta.url))],
};
