export * from './pro.js';
