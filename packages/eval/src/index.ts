export * from './alpaca.js';
export * from './harness.js';
export * from './judges.js';
export * from './stats.js';
export * from './switch.js';
