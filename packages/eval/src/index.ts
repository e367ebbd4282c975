export * from './alpaca.js';
export * from './annotate.js';
export * from './files.js';
export * from './harness.js';
export * from './judge.js';
export * from './judges.js';
export * from './stats.js';
export * from './switch.js';
