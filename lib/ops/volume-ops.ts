/**
 * The Docker side of `viking volumes`, `viking volume backup` and
 * `viking volume restore`, on the host that holds a node's volume.
 *
 * Backup and restore go through Docker's archive API on a helper container
 * of the node's own image that mounts the volume and is never started: Docker
 * reads and writes the files (a restore is unpacked by Docker inside the
 * helper's file system, so a hostile archive cannot write outside it). The
 * archive holds the volume's folder by its name, as `docker cp` makes it:
 * a backup of /data has entries `data/...`.
 *
 * A restore replaces the volume's content while the node is stopped: the
 * host's slave is told to leave the node alone (Slave.hold), its containers
 * here are stopped and removed, the volume is removed and made again empty,
 * the archive is unpacked into it, and the slave is let go, which starts the
 * node's replicas again from its job specs (health check, then routing).
 */
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { VikingError } from '../errors.js';
import type { JobSpec } from '../store/records.js';
import { LABEL, ensureImage, listOwned, removeContainer, type Owner } from '../slave/containers.js';
import { VOLUME_LABEL, ensureVolume, volumeName } from '../slave/volumes.js';

export const VOLUME_HELPER_LABEL = 'viking.volume.helper';

export interface VolumeRow {
  host: string;
  stack: string;
  node: string;
  path: string;
  volume: string;
  /** Bytes, as Docker counts them (null when Docker could not say). */
  size: number | null;
}

/** The declared volume path of a node that `given` names (a trailing slash is allowed), or VIKING_E_NO_VOLUME. */
export function volumePathOf(spec: Pick<JobSpec, 'stack' | 'node' | 'volumes'>, given: string): string {
  const want = given.length > 1 ? given.replace(/\/+$/, '') : given;
  const found = spec.volumes.find((v) => (v.length > 1 ? v.replace(/\/+$/, '') : v) === want);
  if (found !== undefined) return found;
  throw new VikingError(
    'VIKING_E_NO_VOLUME',
    spec.volumes.length === 0
      ? `${spec.stack}/${spec.node} declares no volume; give it volume: [${given}] in the Vikingfile`
      : `${spec.stack}/${spec.node} has no volume at ${given}; its volumes: ${spec.volumes.join(', ')}`,
  );
}

/** Volumes of the given stacks (stack -> incarnation) on this Docker Engine, with their sizes. */
export async function volumesHere(docker: Docker, host: string, stacks: Map<string, string | undefined>): Promise<VolumeRow[]> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [VOLUME_LABEL.stack] } });
  const mine = (Volumes ?? []).filter((v) => {
    const stack = v.Labels?.[VOLUME_LABEL.stack];
    if (stack === undefined || !stacks.has(stack)) return false;
    const inc = stacks.get(stack);
    return inc === undefined ? v.Labels?.[VOLUME_LABEL.incarnation] === undefined : v.Labels?.[VOLUME_LABEL.incarnation] === inc;
  });
  if (mine.length === 0) return [];
  const sizes = new Map<string, number>();
  // Docker runs one disk-usage count at a time and refuses a second meanwhile (hosts sharing an engine ask together): try again.
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const df = (await docker.df()) as { Volumes?: Array<{ Name: string; UsageData?: { Size?: number } | null }> };
      for (const v of df.Volumes ?? []) if (typeof v.UsageData?.Size === 'number' && v.UsageData.Size >= 0) sizes.set(v.Name, v.UsageData.Size);
      break;
    } catch (err) {
      if (!/already running/i.test((err as Error).message)) break;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  return mine
    .map((v) => ({
      host,
      stack: v.Labels?.[VOLUME_LABEL.stack] ?? '',
      node: v.Labels?.[VOLUME_LABEL.node] ?? '',
      path: v.Labels?.[VOLUME_LABEL.path] ?? '',
      volume: v.Name,
      size: sizes.get(v.Name) ?? null,
    }))
    .sort((a, b) => `${a.stack}/${a.node}/${a.path}`.localeCompare(`${b.stack}/${b.node}/${b.path}`));
}

async function volumeExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getVolume(name).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** A never-started container of the node's image with the volume mounted at its path. */
async function helperContainer(docker: Docker, owner: Owner, spec: JobSpec, volume: string, mountPath: string, registry: string | undefined): Promise<Docker.Container> {
  await ensureImage(docker, spec.image, registry);
  return docker.createContainer({
    Image: spec.image,
    // Never started: the command only satisfies images that declare none.
    Cmd: ['/viking-volume-helper-never-started'],
    Labels: { [LABEL.cluster]: owner.cluster, [VOLUME_HELPER_LABEL]: owner.host, [LABEL.stack]: spec.stack, [LABEL.node]: spec.node },
    HostConfig: { Binds: [`${volume}:${mountPath}`], NetworkMode: 'none' },
  });
}

export interface BackupStream {
  stream: Readable;
  volume: string;
  /** Removes the helper; call when the stream ended or was abandoned. */
  done(): Promise<void>;
}

export async function backupHere(docker: Docker, owner: Owner, spec: JobSpec, given: string, registry: string | undefined): Promise<BackupStream> {
  const mountPath = volumePathOf(spec, given);
  const volume = volumeName(spec, mountPath);
  if (!(await volumeExists(docker, volume))) {
    throw new VikingError('VIKING_E_VOLUME_NOT_PLACED', `${spec.stack}/${spec.node}:${mountPath} has no volume on ${owner.host} (${volume}); it is made when the node first starts`);
  }
  const helper = await helperContainer(docker, owner, spec, volume, mountPath, registry);
  const remove = async (): Promise<void> => {
    await helper.remove({ force: true }).catch(() => {});
  };
  try {
    const stream = (await helper.getArchive({ path: mountPath })) as unknown as Readable;
    return { stream, volume, done: remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

export interface RestoreResult {
  host: string;
  stack: string;
  node: string;
  path: string;
  volume: string;
  bytes: number;
  /** Containers of the node stopped (and removed) on this host for the restore; the slave starts the replicas again. */
  stopped: number;
}

export async function restoreHere(
  docker: Docker,
  owner: Owner,
  spec: JobSpec,
  given: string,
  archive: Readable,
  o: { registry: string | undefined; hold?: ((stack: string, node: string) => Promise<() => void>) | undefined },
): Promise<RestoreResult> {
  const mountPath = volumePathOf(spec, given);
  const volume = volumeName(spec, mountPath);
  const release = o.hold ? await o.hold(spec.stack, spec.node) : undefined;
  let bytes = 0;
  let stopped = 0;
  try {
    const replicas = (await listOwned(docker, owner)).filter((c) => c.job.stack === spec.stack && c.job.node === spec.node);
    for (const c of replicas) await removeContainer(docker, c.id, 10);
    stopped = replicas.length;
    try {
      await docker.getVolume(volume).remove();
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 409) {
        throw new VikingError('VIKING_E_VOLUME_BUSY', `${volume} (${spec.stack}/${spec.node}:${mountPath}) is still used by a container that is not a replica of the node (a viking run or a cron run?); nothing was restored`);
      }
      if (status !== 404) throw err;
    }
    await ensureVolume(docker, spec, mountPath);
    const helper = await helperContainer(docker, owner, spec, volume, mountPath, o.registry);
    try {
      const counted = archive.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.length;
            cb(null, chunk);
          },
        }),
      );
      archive.once('error', (err) => counted.destroy(err));
      await helper.putArchive(counted, { path: path.posix.dirname(mountPath) });
    } finally {
      await helper.remove({ force: true }).catch(() => {});
    }
  } finally {
    release?.();
  }
  return { host: owner.host, stack: spec.stack, node: spec.node, path: mountPath, volume, bytes, stopped };
}
