/**
 * `@alignjs/trainer/node`: everything in `@alignjs/trainer`, plus what reads and writes files:
 * the `Trainer`, the reward-model trainer, checkpoints, the reference cache, logs, and the
 * dataset loaders. The root entry (config, data parsing, tokenization, the loop, optimizers,
 * rewards) stays browser-safe.
 */

export * from './checkpoint.js';
export * from './data-files.js';
export * from './index.js';
export * from './log.js';
export * from './reference.js';
export * from './reward-model.js';
export * from './trainer.js';
