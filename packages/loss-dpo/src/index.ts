export * from './kto.js';
export * from './objectives.js';
export * from './pairwise.js';
export {
  type ModifierSupport,
  type PairRatios,
  pairRatios,
  type RatioModifiers,
} from './pairwise-objective.js';
export * from './trl-losses.js';
export * from './trl-objectives.js';
