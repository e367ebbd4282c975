export * from './var.js';
