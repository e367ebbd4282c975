/**
 * `@alignjs/trainer`, browser-safe: config parsing, data parsing, TRL 1.13 tokenization, the
 * optimizer loop, optimizers and rewards. The `Trainer` and everything that touches files is
 * in `@alignjs/trainer/node`.
 */
export * from './config.js';
export * from './data.js';
export { FusedAdamW } from './fused-adamw.js';
export type { Logger, StepRecord } from './log.js';
export * from './loop.js';
export * from './optim.js';
export * from './report.js';
export * from './rewards.js';
export * from './tokenize.js';
