export * from './kto.js';
export * from './objectives.js';
export * from './pairwise.js';
