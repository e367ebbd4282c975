/**
 * Gradient registration, done once for every alignjs package.
 *
 * In Node, `@tensorflow/tfjs-core`'s entry point registers kernels' forward functions only;
 * the gradient functions live in `@tensorflow/tfjs-core/dist/register_all_gradients` (the
 * `@tensorflow/tfjs` union bundle imports it). That file is ES-module source, which Node cannot
 * load from tfjs-core's CommonJS package, so the build of this package bundles it (see
 * tsup.config.ts), exactly as the union bundle does. The registries it writes to are global
 * (tfjs keeps them on `globalThis`), so the registration reaches whichever copy of tfjs-core
 * the user's backends imported. Importing anything from `@alignjs/core-logprob` runs this.
 */
// Load the public tfjs-core entry first: the first copy of tfjs-core to run registers the
// global Tensor class, and it must be the one the backends use.
import '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
