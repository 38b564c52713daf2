/**
 * The slave's hands on the Docker Engine: the containers it owns, how one is
 * created from a job spec, and how one is taken down.
 *
 * Ownership is by label. A container is the slave's only if it carries both
 * `viking.cluster=<this cluster's id>` and `viking.host=<this host>`; nothing
 * else on the daemon is ever touched, so several viking hosts, and several
 * clusters whose hosts have the same name, can share one daemon without
 * stepping on each other. Containers of an older viking, without a cluster
 * label, are left alone (see foreignContainers).
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { ContainerLimits, JobId, JobSpec } from '../store/records.js';
import { followProgress } from '../docker/client.js';
import { VikingError } from '../errors.js';
import { ensureVolume } from './volumes.js';
import { DEFAULT_LIMITS, dockerEnv, jobCommand, jobEnv, sandboxHostConfig } from './sandbox.js';

export const LABEL = {
  stack: 'viking.stack',
  tag: 'viking.tag',
  node: 'viking.node',
  instance: 'viking.instance',
  host: 'viking.host',
  spec: 'viking.spec',
  cluster: 'viking.cluster',
} as const;

/** Whose containers these are: one host of one cluster. */
export interface Owner {
  cluster: string;
  host: string;
}

/** Docker label filters that select exactly the containers of `owner`. */
export function ownerLabels(owner: Owner): string[] {
  return [`${LABEL.cluster}=${owner.cluster}`, `${LABEL.host}=${owner.host}`];
}

/** A container this host owns, as the reconciler needs it. */
export interface OwnedContainer {
  id: string;
  name: string;
  job: JobId;
  /** Hash of the job spec it was started from; a different hash means replace. */
  specHash: string;
  running: boolean;
  /** Private port -> host port, for running containers. */
  ports: Map<number, number>;
}

/** Stable hash of everything that changes what a container runs. */
export function specHash(spec: JobSpec): string {
  const { image, expose, volumes, run, cwd, env, health, memory, cpu } = spec;
  // The incarnation names the volumes, so it counts only where there are some (undefined drops out of the JSON).
  const incarnation = volumes.length > 0 ? spec.incarnation : undefined;
  // Sealed secrets count by their ciphertext (absent when the stack has none, so older hashes stay as they were).
  const secrets = spec.secrets?.length ? spec.secrets.map((s) => [s.name, s.data, s.iv]) : undefined;
  const canonical = JSON.stringify({ image, expose, volumes, run, cwd, env: Object.entries(env).sort(), health, memory, cpu, incarnation, secrets });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * Deterministic name per cluster, host, job and spec: a changed spec gets a
 * new container beside the old one. The cluster id is in it because a start
 * first removes a container of the same name: without it, a second cluster
 * with the same host and stack names would remove the first one's.
 */
export function containerName(owner: Owner, job: JobId, hash: string): string {
  return `viking-${owner.cluster.slice(0, 8)}-${owner.host}-${job.stack}-${job.tag}-${job.node}-${job.instance}-${hash.slice(0, 8)}`;
}

export { volumeName } from './volumes.js';

export async function listOwned(docker: Docker, owner: Owner): Promise<OwnedContainer[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ownerLabels(owner) } });
  const owned: OwnedContainer[] = [];
  for (const c of list) {
    const l = c.Labels;
    const instance = Number(l[LABEL.instance]);
    const stack = l[LABEL.stack];
    const tag = l[LABEL.tag];
    const node = l[LABEL.node];
    if (!stack || !tag || !node || !Number.isInteger(instance)) continue;
    const ports = new Map<number, number>();
    for (const p of c.Ports ?? []) if (p.PublicPort) ports.set(p.PrivatePort, p.PublicPort);
    owned.push({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      job: { stack, tag, node, instance },
      specHash: l[LABEL.spec] ?? '',
      running: c.State === 'running',
      ports,
    });
  }
  return owned;
}

/**
 * Containers labelled with this host's name that are not this cluster's:
 * another cluster's host of the same name, or an older viking that put no
 * cluster label on. They are never adopted, stopped or removed; the host
 * logs them at start so an operator can clean up by hand.
 */
export async function foreignContainers(docker: Docker, owner: Owner): Promise<Array<{ id: string; name: string; cluster: string | null }>> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.host}=${owner.host}`] } });
  return list
    .filter((c) => c.Labels[LABEL.cluster] !== owner.cluster)
    .map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, ''), cluster: c.Labels[LABEL.cluster] ?? null }));
}

/**
 * Makes sure the image is on this host's daemon. Only images of the cluster
 * registry are pulled: nothing is fetched from anywhere else, so a host never
 * reaches out of the cluster for an image.
 */
export async function ensureImage(docker: Docker, image: string, registry: string | undefined): Promise<'present' | 'pulled'> {
  try {
    await docker.getImage(image).inspect();
    return 'present';
  } catch {
    /* not here: pull it if the cluster registry has it */
  }
  if (!registry || !image.startsWith(`${registry}/`)) {
    throw new VikingError('VIKING_E_IMAGE_MISSING', `image ${image} is not on this host and is not in the cluster registry${registry ? ` (${registry})` : ''}; build it in the Vikingfile or load it on every host`);
  }
  const stream = await docker.pull(image, { authconfig: {} } as object);
  await followProgress(docker, stream);
  return 'pulled';
}

export interface StartedContainer {
  id: string;
  ports: Map<number, number>;
}

/**
 * Creates and starts the container for a job, publishing every exposed port
 * on the host's own address with a port Docker picks. An old container of the
 * same name (a failed earlier attempt) is removed first.
 */
export async function startJob(
  docker: Docker,
  spec: JobSpec,
  owner: Owner,
  ip: string,
  registry?: string,
  limits: ContainerLimits = DEFAULT_LIMITS,
): Promise<StartedContainer> {
  const host = owner.host;
  await ensureImage(docker, spec.image, registry);
  const hash = specHash(spec);
  const name = containerName(owner, spec, hash);
  await docker.getContainer(name).remove({ force: true }).catch(() => {});
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const port of spec.expose) {
    exposed[`${port}/tcp`] = {};
    bindings[`${port}/tcp`] = [{ HostIp: ip, HostPort: '' }];
  }
  const binds: string[] = [];
  for (const path of spec.volumes) binds.push(`${await ensureVolume(docker, spec, path)}:${path}`);
  const env = jobEnv(spec, { host, port: true, extra: { VIKING_INSTANCE: String(spec.instance) } });
  const cmd = jobCommand(spec.run);
  const container = await docker.createContainer({
    name,
    Image: spec.image,
    ...(cmd ? { Cmd: cmd } : {}),
    ...(spec.cwd ? { WorkingDir: spec.cwd } : {}),
    Hostname: `${spec.node}-${spec.instance}-${spec.tag}`,
    Env: dockerEnv(env),
    ExposedPorts: exposed,
    Labels: {
      [LABEL.stack]: spec.stack,
      [LABEL.tag]: spec.tag,
      [LABEL.node]: spec.node,
      [LABEL.instance]: String(spec.instance),
      [LABEL.host]: host,
      [LABEL.cluster]: owner.cluster,
      [LABEL.spec]: hash,
    },
    HostConfig: {
      PortBindings: bindings,
      Binds: binds,
      ...sandboxHostConfig(spec, limits, 3),
    },
  });
  await container.start();
  const info = await container.inspect();
  const ports = new Map<number, number>();
  for (const [key, list] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    const hostPort = list?.[0]?.HostPort;
    if (hostPort) ports.set(Number(key.split('/')[0]), Number(hostPort));
  }
  return { id: container.id, ports };
}

/** Stops (SIGTERM, then SIGKILL after the grace period) and removes a container. */
export async function removeContainer(docker: Docker, id: string, graceSeconds = 10): Promise<void> {
  const c = docker.getContainer(id);
  await c.stop({ t: graceSeconds }).catch(() => {});
  await c.remove({ force: true, v: false }).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 404) throw err;
  });
}

/** The last lines a container wrote, to explain why it died. */
export async function lastLogLines(docker: Docker, id: string, lines = 20): Promise<string[]> {
  try {
    const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
    return demuxLogs(buf).split('\n').filter((l) => l.length > 0).slice(-lines);
  } catch {
    return [];
  }
}

/** Docker multiplexes stdout/stderr with 8-byte frame headers when there is no TTY; plain text otherwise. */
export function demuxLogs(buf: Buffer): string {
  const out: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const stream = buf[i];
    const framed = i + 8 <= buf.length && stream !== undefined && stream <= 2 && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0;
    const size = framed ? buf.readUInt32BE(i + 4) : 0;
    if (!framed || i + 8 + size > buf.length) {
      // Not (or no longer) framed: the rest is plain text.
      out.push(buf.subarray(i).toString('utf8'));
      break;
    }
    out.push(buf.subarray(i + 8, i + 8 + size).toString('utf8'));
    i += 8 + size;
  }
  return out.join('');
}

export async function exitInfo(docker: Docker, id: string): Promise<string> {
  try {
    const info = await docker.getContainer(id).inspect();
    const s = info.State;
    return s.OOMKilled ? 'killed: out of memory' : `exited with code ${s.ExitCode}${s.Error ? ` (${s.Error})` : ''}`;
  } catch {
    return 'container vanished';
  }
}
