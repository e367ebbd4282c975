/**
 * `@alignjs/eval`, browser-safe: AlpacaEval win rates and the length-controlled fit, judge
 * prompts and parsers (annotators), MT-Bench-style modes, benchmark task formats and
 * scoring, CPython-exact random numbers, statistics and report tables. Judging with a file
 * cache, position switching (CPython's sha512 seeding), generation, the harness run, the
 * OpenAI-compatible server and external harnesses are in `@alignjs/eval/node`.
 */
export * from './alpaca.js';
export * from './annotators/index.js';
export * from './eval-report.js';
export * from './harness.js';
export * from './judge.js';
export * from './judges.js';
export * from './lc-fit.js';
export * from './modes.js';
export * from './py-random.js';
export * from './stats.js';
export * from './tasks.js';
