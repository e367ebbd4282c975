export * from './normalize.js';
export * from './una.js';
