/**
 * The planner's plain-data world: no etcd, no Docker. dispatch builds these
 * from one etcd snapshot; tests and benchmarks build them by hand.
 */

export interface Resources {
  memory: number;
  cpu: number;
  containers: number;
}

/** A job as the planner sees it. */
export interface PlanJob {
  /** `<stack>/<tag>/<node>/<n>`: unique, and the deterministic sort key. */
  id: string;
  stack: string;
  node: string;
  memory: number;
  cpu: number;
  /** Host tags required. */
  tags: string[];
  /** Host tags preferred. */
  prefer: string[];
  /** Host this job must run on (volume pin from /fixed), if any. */
  pinnedTo?: string;
}

export interface PlanHost {
  name: string;
  tags: string[];
  capacity: Resources;
  /** Draining hosts take nothing new. */
  draining: boolean;
  /**
   * Memory limit (bytes) the host gives a container that asks for none
   * (`viking host --default-memory`); such a job counts this much here, so a
   * host's memory capacity bounds what lands on it. 0 or absent: none.
   */
  defaultMemory?: number;
  /** Jobs already placed here. */
  jobs: PlanJob[];
}

export interface Snapshot {
  hosts: PlanHost[];
}

export interface Placement {
  job: PlanJob;
  host: string;
}

export interface Unplaced {
  job: PlanJob;
  /** Why no host fit, grouped: "2 hosts: not enough memory". */
  reasons: string[];
}

export interface Plan {
  placements: Placement[];
  unplaced: Unplaced[];
}
