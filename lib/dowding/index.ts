export { explainHost, placeJobs, summariseReasons, type HostExplanation, type PlannerOptions } from './plan.js';
export type { Plan, PlanHost, PlanJob, Placement, Resources, Snapshot, Unplaced } from './types.js';
export { FILTERS, type HostFilter } from './filters.js';
export { SCORERS, loadScore, type HostScorer } from './scorers.js';
export { planRebalance, applyMoves, colocatedPairs, movable, type BalanceHost, type BalanceJob, type Move, type RebalanceOptions } from './rebalance.js';
