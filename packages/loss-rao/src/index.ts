export * from './rao.js';
