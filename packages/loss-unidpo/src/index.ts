export * from './unidpo.js';
