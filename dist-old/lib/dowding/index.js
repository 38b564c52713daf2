export { placeJobs, summariseReasons } from './plan.js';
export { FILTERS } from './filters.js';
export { SCORERS, loadScore } from './scorers.js';
//# sourceMappingURL=index.js.map