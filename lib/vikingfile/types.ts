/**
 * The typed form of a Vikingfile, as the rest of viking consumes it.
 *
 * The YAML is user input; these objects are what survived validation, so
 * every name here is already a safe etcd key segment (`[a-z0-9-]`).
 */
import type { CronSchedule } from '../cron/schedule.js';

/** A reference to an image: one built by a stack, or any other image. */
export type ImageRef =
  | { kind: 'stack'; stack: string; image: string }
  | { kind: 'external'; ref: string };

/** One entry of `build:`: an inline Dockerfile. */
export interface ImageSpec {
  name: string;
  /** The Dockerfile text exactly as written. */
  dockerfile: string;
  /** What its (last) FROM line names. */
  from: ImageRef;
}

export interface HealthSpec {
  /** HTTP path to GET; absent means a TCP connect to the first exposed port. */
  path?: string;
}

/** A long-running container node (the default `type`). */
export interface ContainerNodeSpec {
  kind: 'container';
  name: string;
  image: ImageRef;
  expose: number[];
  /** Container paths kept across releases; a node with volumes is pinned to its host. */
  volumes: string[];
  /** Command: a string runs through `/bin/sh -c`, a list is exec form. */
  run?: string | string[];
  cwd?: string;
  env: Record<string, string>;
  scale: number;
  domains: string[];
  /** `service: true`: not restarted by pushes. */
  service: boolean;
  health?: HealthSpec;
  /** Host tags the node requires (hard filter). */
  tags: string[];
  /** Host tags the node prefers (soft, only scores). */
  prefer: string[];
  /** Memory reserved per replica, in bytes (0 = not declared). */
  memory: number;
  /** CPUs reserved per replica (0 = not declared). */
  cpu: number;
  /** `hsts:` max-age in seconds for HTTPS answers of the node's domains; absent: no HSTS. */
  hsts?: number;
  /** `access_log: true`: the routers log every request to the node's domains (absent: off). */
  accessLog?: true;
  /** `schedule:`: a cron job, run to completion once per tick (lib/cron), not a long-running replica. */
  cron?: CronSchedule;
}

/** `type: website`: static files served by every router. */
export interface WebsiteNodeSpec {
  kind: 'website';
  name: string;
  /** Path inside the pushed source, normalised, never escaping it. */
  documentRoot: string;
  domains: string[];
  /** `hsts:` max-age in seconds; absent: no HSTS. */
  hsts?: number;
}

export type NodeSpec = ContainerNodeSpec | WebsiteNodeSpec;

export interface Vikingfile {
  /** `viking.name`: the stack name. */
  stack: string;
  comment?: string;
  /** `build:` in file order. */
  images: ImageSpec[];
  /** `deploy:` in file order. */
  nodes: NodeSpec[];
}

/** One problem found in a Vikingfile, with where it is. */
export interface VikingfileProblem {
  /** Stable sub-code, e.g. `unknown-key`, `wrong-type`, `bad-scale`. */
  kind: string;
  line: number;
  column: number;
  message: string;
}
