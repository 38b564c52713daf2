/**
 * One-off containers (`viking run`): a command in a fresh container of a
 * node's live release image, with the node's env, secrets and volumes, on a
 * host dowding chose (the node's volume host when it has volumes). Nothing
 * routes to it: it publishes no port and no endpoint is ever written for it.
 *
 * Labels keep it apart from replicas: it carries the cluster id and
 * `viking.oneoff.host`, never the slave's `viking.host` or
 * `viking.instance`, so no slave reconcile adopts or removes it and no
 * cron runner takes it for a run; `viking ps --all` finds it by
 * `viking.oneoff.host`. Attached runs are removed when they end (or when
 * the CLI hangs up); detached ones are started with Docker's AutoRemove, so
 * they vanish once their command exits.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { ContainerLimits, JobSpec } from '../store/records.js';
import { LABEL, ensureImage, type Owner } from '../slave/containers.js';
import { DEFAULT_LIMITS, dockerEnv, jobEnv, sandboxHostConfig } from '../slave/sandbox.js';
import { ensureVolume } from '../slave/volumes.js';
import type { DockerSession } from './session.js';

export const ONEOFF_LABEL = { host: 'viking.oneoff.host', id: 'viking.oneoff.id', cmd: 'viking.oneoff.command', by: 'viking.oneoff.by', detached: 'viking.oneoff.detached' } as const;

export interface OneOffOptions {
  docker: Docker;
  owner: Owner;
  spec: JobSpec;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  detach: boolean;
  /** Who asked (the token's name), kept in a label for `viking ps --all`. */
  by: string;
  registry?: string | undefined;
  limits?: ContainerLimits | undefined;
}

export interface OneOff {
  id: string;
  name: string;
  /** Absent for a detached run. */
  session?: DockerSession;
}

/** One-off containers on this host of this cluster, as `viking ps --all` shows them. */
export interface OneOffRow {
  host: string;
  stack: string;
  node: string;
  tag: string;
  container: string;
  name: string;
  command: string;
  by: string;
  detached: boolean;
  state: string;
  status: string;
  created: string;
}

export async function listOneOffs(docker: Docker, owner: Owner): Promise<OneOffRow[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.cluster}=${owner.cluster}`, `${ONEOFF_LABEL.host}=${owner.host}`] } });
  return list.map((c) => ({
    host: owner.host,
    stack: c.Labels[LABEL.stack] ?? '',
    node: c.Labels[LABEL.node] ?? '',
    tag: c.Labels[LABEL.tag] ?? '',
    container: c.Id.slice(0, 12),
    name: (c.Names?.[0] ?? '').replace(/^\//, ''),
    command: c.Labels[ONEOFF_LABEL.cmd] ?? '',
    by: c.Labels[ONEOFF_LABEL.by] ?? '',
    detached: c.Labels[ONEOFF_LABEL.detached] === '1',
    state: c.State,
    status: c.Status,
    created: new Date(c.Created * 1000).toISOString(),
  }));
}

export async function startOneOff(o: OneOffOptions): Promise<OneOff> {
  const { docker, spec, owner } = o;
  const limits = o.limits ?? DEFAULT_LIMITS;
  await ensureImage(docker, spec.image, o.registry);
  const binds: string[] = [];
  for (const path of spec.volumes) binds.push(`${await ensureVolume(docker, spec, path)}:${path}`);
  const runId = randomBytes(4).toString('hex');
  const env = jobEnv(spec, { host: owner.host, port: true, extra: { VIKING_ONEOFF: runId } });
  const name = `viking-${owner.cluster.slice(0, 8)}-${owner.host}-run-${spec.stack}-${spec.node}-${runId}`;
  const attachIn = o.stdin && !o.detach;
  const c = await docker.createContainer({
    name,
    Image: spec.image,
    Cmd: o.cmd,
    ...(spec.cwd ? { WorkingDir: spec.cwd } : {}),
    Hostname: `${spec.node}-run-${runId}`,
    Env: dockerEnv(env),
    Tty: o.tty && !o.detach,
    OpenStdin: attachIn,
    StdinOnce: attachIn,
    AttachStdin: attachIn,
    AttachStdout: !o.detach,
    AttachStderr: !o.detach,
    Labels: {
      [LABEL.cluster]: owner.cluster,
      [LABEL.stack]: spec.stack,
      [LABEL.node]: spec.node,
      [LABEL.tag]: spec.tag,
      [ONEOFF_LABEL.host]: owner.host,
      [ONEOFF_LABEL.id]: runId,
      [ONEOFF_LABEL.cmd]: o.cmd.join(' ').slice(0, 200),
      [ONEOFF_LABEL.by]: o.by.slice(0, 100),
      [ONEOFF_LABEL.detached]: o.detach ? '1' : '0',
    },
    HostConfig: {
      Binds: binds,
      ...sandboxHostConfig(spec, limits, 1),
      AutoRemove: o.detach,
    },
  });
  if (o.detach) {
    await c.start();
    return { id: c.id, name };
  }
  const remove = async (): Promise<void> => {
    await c.remove({ force: true }).catch(() => {});
  };
  let stream: Duplex;
  try {
    // Attached before it starts, so not a byte of its output is missed.
    stream = (await c.attach({ stream: true, stdin: attachIn, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    await c.start();
  } catch (err) {
    await remove();
    throw err;
  }
  const waited = c.wait() as Promise<{ StatusCode?: number }>;
  return {
    id: c.id,
    name,
    session: {
      stream,
      tty: o.tty,
      stdin: attachIn,
      resize: async (cols, rows) => {
        await c.resize({ h: rows, w: cols });
      },
      async exitCode() {
        const code = (await waited).StatusCode ?? -1;
        await remove();
        return code;
      },
      abandon: async () => {
        stream.destroy();
        await remove();
      },
    },
  };
}
