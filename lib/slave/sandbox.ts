/**
 * The one container policy: what every container viking starts for a job
 * gets, whether it is a replica (lib/slave/containers.ts), a cron run
 * (lib/cron/runner.ts) or a one-off (lib/ops/oneoff.ts). Its environment
 * (PORT, the node's env, its opened secrets, VIKING_*) and its confinement
 * (an init, the memory/pids/cpu limits, a capped json-file log, dropped
 * capabilities, no-new-privileges) are written here once, so a change to the
 * limits confines all three kinds alike.
 */
import type { ContainerLimits, JobSpec } from '../store/records.js';
import { openJobSecrets } from '../secrets/open.js';

/** Capabilities taken from Docker's default set for every app container (see docs/security.md). */
export const CONTAINER_CAP_DROP = ['NET_RAW'];

/**
 * What a container gets when the host says nothing: a memory limit for nodes
 * without `memory:` and a pids limit for every container, so one stack's
 * leak or fork bomb cannot take the host (and the other stacks) down.
 */
export const DEFAULT_LIMITS: ContainerLimits = { defaultMemory: 512 * 1024 ** 2, pidsLimit: 512 };

export interface JobEnvOptions {
  /** The host that starts it (VIKING_HOST). */
  host: string;
  /** Whether PORT names the node's first exposed port (not for cron runs, which serve nothing). */
  port: boolean;
  /** VIKING_* variables of this kind of container (VIKING_INSTANCE, VIKING_CRON_TICK, VIKING_ONEOFF). */
  extra?: Record<string, string>;
}

/**
 * The environment of a job's container: PORT, then the node's env, then its
 * secrets, opened here on the host that starts it with this host's copy of
 * the cluster key (lib/secrets), then the VIKING_* names nobody may override.
 */
export function jobEnv(spec: JobSpec, o: JobEnvOptions): Record<string, string> {
  return {
    ...(o.port && spec.expose[0] !== undefined ? { PORT: String(spec.expose[0]) } : {}),
    ...spec.env,
    ...openJobSecrets(spec),
    VIKING_STACK: spec.stack,
    VIKING_TAG: spec.tag,
    VIKING_NODE: spec.node,
    ...o.extra,
    VIKING_HOST: o.host,
  };
}

/** Docker's `Env` form of an environment. */
export function dockerEnv(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** The node's `run:` as Docker's Cmd: a string runs under /bin/sh -c, a list as it is. */
export function jobCommand(run: JobSpec['run']): string[] | undefined {
  if (run === undefined) return undefined;
  return typeof run === 'string' ? ['/bin/sh', '-c', run] : run;
}

/** The HostConfig fields of the sandbox, as sandboxHostConfig returns them. */
export interface SandboxHostConfig {
  Init: true;
  RestartPolicy: { Name: 'no' };
  Memory?: number;
  PidsLimit?: number;
  NanoCpus?: number;
  LogConfig: { Type: 'json-file'; Config: { 'max-size': string; 'max-file': string } };
  CapDrop: string[];
  SecurityOpt: string[];
}

/**
 * The confinement of a job's container. `logFiles` is how many 10 MB
 * json-file logs Docker keeps: 3 for a long-lived replica, 1 for a cron run
 * or one-off, whose output is read once.
 */
export function sandboxHostConfig(spec: JobSpec, limits: ContainerLimits, logFiles: number): SandboxHostConfig {
  // The node's `memory:` wins, else the host's default; 0 (a host's --default-memory 0) means none.
  const memory = spec.memory > 0 ? spec.memory : limits.defaultMemory;
  return {
    // An init as PID 1 forwards SIGTERM, so stop takes ~0.2 s instead of the grace period.
    Init: true,
    RestartPolicy: { Name: 'no' },
    ...(memory > 0 ? { Memory: memory } : {}),
    ...(limits.pidsLimit > 0 ? { PidsLimit: limits.pidsLimit } : {}),
    ...(spec.cpu > 0 ? { NanoCpus: Math.round(spec.cpu * 1e9) } : {}),
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': String(logFiles) } },
    // Stacks share a host's bridge: without NET_RAW a container cannot forge
    // packets or spoof ARP to read another stack's traffic, and no setuid
    // binary in a pushed image can gain privileges (docs/security.md).
    CapDrop: CONTAINER_CAP_DROP,
    SecurityOpt: ['no-new-privileges'],
  };
}
