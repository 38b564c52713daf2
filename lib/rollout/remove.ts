/**
 * `viking rm STACK`: the stack goes, all of it.
 *
 * In order: its domains (routers stop sending traffic at once), its jobs
 * (dispatch frees /run and /deploy, each slave drains and stops its
 * containers), then, once no container of the stack is left on any host,
 * its images (on every host and in the cluster registry), volume pins,
 * failure counters and the stack record. Docker volumes are kept unless
 * `--volumes` asks (data is never deleted by a command that cannot undo it
 * without being told), and rm says which it kept and where. The stack's
 * incarnation goes with its record, so a stack pushed later under the same
 * name never mounts them.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, domainKey, fixedStackPrefix, imagesStackPrefix, portsStackPrefix, procStackPrefix, stackKey, cronRunsStackPrefix, secretsKey } from '../store/keys.js';
import { readPlacementKeys } from '../store/placements.js';
import type { DomainRecord, StackRecord } from '../store/records.js';
import type { CleanupRequest, HostCleanup } from '../api/cleanup.js';
import { fencedDelete, withStackLock } from './lock.js';
import type { ReleaseOpContext } from './releases.js';

export interface RemoveContext extends ReleaseOpContext {
  /** Containers of the stack still on any live host (asked through each host's API). */
  countContainers: (stack: string) => Promise<number>;
  /** Where this host keeps pushed sources; its copy of the stack's is deleted. */
  dataDir?: string;
  /** Each live host removes the stack's images and reports (or, when asked, removes) its volumes. */
  cleanup?: (req: CleanupRequest) => Promise<HostCleanup[]>;
  /** Deletes the stack's images from the cluster registry. */
  cleanRegistry?: (refs: string[]) => Promise<{ removed: number; failed: number }>;
  /** `viking rm --volumes`: the stack's Docker volumes go too. */
  removeVolumes?: boolean;
}

/** A Docker volume of the stack, where it is, and whether rm removed it. */
export interface RemovedVolume {
  host: string;
  name: string;
  node: string;
  path: string;
  removed: boolean;
}

export interface RemoveResult {
  stack: string;
  domains: string[];
  jobs: number;
  keys: number;
  /** Images removed, counted over every host. */
  images: number;
  volumes: RemovedVolume[];
}

/** Deletes every key under a prefix, returning how many went. */
async function deletePrefix(client: Etcd3, prefix: string): Promise<number> {
  return fencedDelete(client, client.delete().prefix(prefix));
}

export async function removeStack(ctx: RemoveContext, name: string): Promise<RemoveResult> {
  const emit = ctx.emit ?? (() => {});
  const exists = (await ctx.client.get(stackKey(name)).exists()) || (await ctx.client.getAll().prefix(procStackPrefix(name)).count()) > 0;
  if (!exists) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${name}; viking stacks lists them`);
  return withStackLock(ctx.client, name, { what: 'rm', by: ctx.by, host: ctx.hostName }, async () => {
    const domains = await readPrefix<DomainRecord>(ctx.client, PREFIX.domains);
    const owned = domains.entries.filter((e) => e.value?.stack === name).map((e) => e.key.slice(PREFIX.domains.length));
    for (const d of owned) await fencedDelete(ctx.client, ctx.client.delete().key(domainKey(d)));
    emit('switch', owned.length ? `routes for ${owned.join(', ')} removed` : 'no domains to remove');

    const jobs = await deletePrefix(ctx.client, procStackPrefix(name));
    emit('cleanup', `${jobs} container(s) withdrawn`);
    const timeoutMs = ctx.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const [placed, serving, containers] = await Promise.all([
        readPlacementKeys(ctx.client, { stack: name }).then((r) => r.placed.size + r.extra.length + r.copies.size),
        ctx.client.getAll().prefix(portsStackPrefix(name)).count(),
        ctx.countContainers(name),
      ]);
      const now = `${containers} container(s) left`;
      if (now !== last && containers > 0) emit('cleanup', `waiting: ${now}`);
      last = now;
      if (placed === 0 && serving === 0 && containers === 0) break;
      if (Date.now() > deadline) {
        throw new VikingError(
          'VIKING_E_REMOVE_TIMEOUT',
          `${name}: ${placed} job(s) still placed, ${serving} endpoint(s) and ${containers} container(s) left after ${Math.round(timeoutMs / 1000)}s; they are being stopped, run viking rm ${name} again to finish`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    emit('cleanup', 'every container stopped and removed');

    const record = await readJson<StackRecord>(ctx.client, stackKey(name));
    const imageRefs = Object.values(await ctx.client.getAll().prefix(imagesStackPrefix(name)).strings());
    const { images, volumes } = await cleanUp(ctx, { stack: name, ...(record?.incarnation ? { incarnation: record.incarnation } : {}), images: imageRefs, removeVolumes: ctx.removeVolumes ?? false });

    let keys = 0;
    keys += await deletePrefix(ctx.client, imagesStackPrefix(name));
    keys += await deletePrefix(ctx.client, fixedStackPrefix(name));
    // Cron history (runs in flight finish and find no record to report to) and the sealed secrets.
    keys += await deletePrefix(ctx.client, cronRunsStackPrefix(name));
    keys += await fencedDelete(ctx.client, ctx.client.delete().key(secretsKey(name)));
    const counters = await ctx.client.getAll().prefix(PREFIX.counter).keys();
    for (const k of counters) {
      if (k.slice(PREFIX.counter.length).split('/')[1] === name) {
        keys += await fencedDelete(ctx.client, ctx.client.delete().key(k));
      }
    }
    keys += await fencedDelete(ctx.client, ctx.client.delete().key(stackKey(name)));
    if (ctx.dataDir) await rm(path.join(ctx.dataDir, 'stacks', name), { recursive: true, force: true }).catch(() => {});
    const kept = volumes.filter((v) => !v.removed);
    const volumeNote = kept.length > 0 ? `${kept.length} Docker volume(s) kept (no later stack mounts them; docker volume rm on their host deletes them)` : volumes.length > 0 ? `${volumes.length} Docker volume(s) removed` : 'no Docker volumes';
    emit('done', `${name} removed: ${owned.length} domain(s), ${jobs} container(s), ${images} image(s), ${keys} key(s); ${volumeNote}`);
    return { stack: name, domains: owned, jobs, keys, images, volumes };
  });
}

async function readJson<T>(client: Etcd3, key: string): Promise<T | undefined> {
  const text = await client.get(key).string();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Asks every host to remove the stack's images (and volumes if asked), says what each did, and cleans the registry. */
async function cleanUp(ctx: RemoveContext, req: CleanupRequest): Promise<{ images: number; volumes: RemovedVolume[] }> {
  const emit = ctx.emit ?? (() => {});
  let images = 0;
  const volumes: RemovedVolume[] = [];
  for (const h of (await ctx.cleanup?.(req)) ?? []) {
    if (h.error !== undefined) {
      emit('cleanup', `host ${h.host} could not clean up: ${h.error}; its images and volumes of ${req.stack} are left`);
      continue;
    }
    images += h.images.removed.length;
    if (h.images.removed.length > 0) emit('cleanup', `${h.host}: ${h.images.removed.length} image(s) removed`);
    for (const k of h.images.kept) emit('cleanup', `${h.host}: image ${k.ref} kept: ${k.reason}`);
    for (const v of h.volumes.removed) {
      volumes.push({ host: h.host, ...v, removed: true });
      emit('cleanup', `${h.host}: volume ${v.name} (${v.node}:${v.path}) removed`);
    }
    for (const v of h.volumes.kept) {
      volumes.push({ host: h.host, ...v, removed: false });
      emit('cleanup', `${h.host}: volume ${v.name} (${v.node}:${v.path}) kept`);
    }
  }
  if (ctx.cleanRegistry && req.images.length > 0) {
    const r = await ctx.cleanRegistry(req.images);
    if (r.removed > 0 || r.failed > 0) emit('cleanup', `registry: ${r.removed} image(s) deleted${r.failed ? `, ${r.failed} left` : ''}`);
  }
  return { images, volumes };
}
