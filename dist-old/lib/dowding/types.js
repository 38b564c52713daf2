/**
 * The planner's plain-data world: no etcd, no Docker. dispatch builds these
 * from one etcd snapshot; tests and benchmarks build them by hand.
 */
export {};
//# sourceMappingURL=types.js.map