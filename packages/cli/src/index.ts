export * from './config-file.js';
export * from './demo.js';
export * from './objectives.js';
export * from './reward-module.js';
