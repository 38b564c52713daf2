/**
 * Where each website's files are on this host, so every router can serve
 * every website, not only the one on the host that received the push.
 *
 * The host that built a release serves its document root straight from the
 * pushed source. Any other host fetches the document root once, as a tar,
 * from the API of the builder (or, if that host is gone, of any host that
 * already has it: every host's API hands out what it caches), unpacks it
 * with the same checks as an upload, and keeps it under
 * `<dataDir>/websites/<stack>/<node>/<tag>`. Until a new release's files are
 * here the previous release's keep being served, so a website deploy has no
 * gap either.
 */
import { existsSync, realpathSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import type { HostRecord } from '../store/records.js';
import { extractUpload } from '../upload/extract.js';
import { isInside } from './static-site.js';
import type { SiteRoot, WantedSite } from './snapshot.js';

/** The directory a fetched release of a website node lives in. */
export function siteCacheDir(dataDir: string, stack: string, node: string, tag: string): string {
  return path.join(dataDir, 'websites', stack, node, tag);
}

/** The document root of a release built on this host, when its source is here (not yet checked). */
export function localDocumentRoot(source: string, documentRoot: string): string {
  return path.join(source, documentRoot);
}

/**
 * The real directory to serve a release's document root from, or why not.
 * The document root is itself a path inside the pushed tree and may be (or
 * pass through) a link: its realpath must stay inside the release's own
 * realpath, or nothing of it is served (a document root linked to a folder
 * of the host would serve that folder).
 */
export function checkedDocumentRoot(source: string, documentRoot: string): { root: string } | { problem: string } {
  let real: string;
  let base: string;
  try {
    base = realpathSync(source);
    real = realpathSync(localDocumentRoot(source, documentRoot));
  } catch {
    return { problem: `release has no directory ${documentRoot}` };
  }
  if (!isInside(real, base)) return { problem: `the document root ${documentRoot} leads out of the release; it is not served` };
  return { root: real };
}

export interface SiteCacheOptions {
  client: Etcd3;
  hostName: string;
  dataDir: string;
  /** Largest website accepted, in bytes. */
  maxBytes?: number;
  log?: (msg: string) => void;
  /** Called when a fetch finished (or may be retried): the routes should be rebuilt. */
  onChange: () => void;
}

interface Failure {
  message: string;
  count: number;
  retryAt: number;
}

export class SiteCache {
  /** `stack/node/tag` -> directory with its files. */
  private readonly ready = new Map<string, string>();
  /** `stack/node` -> the last release whose files were served. */
  private readonly lastGood = new Map<string, { tag: string; root: string }>();
  private readonly fetching = new Set<string>();
  private readonly failures = new Map<string, Failure>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly o: SiteCacheOptions) {}

  /** Where to serve a website from right now; starts fetching its files if this host lacks them. */
  resolve(want: WantedSite): SiteRoot {
    const site = `${want.stack}/${want.node}`;
    const key = `${site}/${want.tag}`;
    const root = this.ready.get(key) ?? this.findLocal(want);
    if (root) {
      this.ready.set(key, root);
      this.lastGood.set(site, { tag: want.tag, root });
      return { stack: want.stack, node: want.node, tag: want.tag, root };
    }
    let problem: string;
    if (want.builtOn === this.o.hostName && existsSync(want.source)) {
      const checked = checkedDocumentRoot(want.source, want.documentRoot);
      problem = 'problem' in checked ? `release ${want.tag}: ${checked.problem}` : `release ${want.tag} has no directory ${want.documentRoot}`;
    } else {
      this.ensureFetch(want, key);
      const failure = this.failures.get(key);
      problem = failure
        ? `the files of release ${want.tag} could not be fetched (${failure.message}); retrying`
        : `the files of release ${want.tag} are being fetched from ${want.builtOn}`;
    }
    const prev = this.lastGood.get(site);
    return prev ? { stack: want.stack, node: want.node, tag: prev.tag, root: prev.root, problem } : { stack: want.stack, node: want.node, tag: null, root: null, problem };
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private findLocal(want: WantedSite): string | undefined {
    if (want.builtOn === this.o.hostName && existsSync(want.source)) {
      const checked = checkedDocumentRoot(want.source, want.documentRoot);
      if ('root' in checked) return checked.root;
    }
    const cached = siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag);
    return existsSync(cached) ? cached : undefined;
  }

  private ensureFetch(want: WantedSite, key: string): void {
    if (this.stopped || this.fetching.has(key)) return;
    const failure = this.failures.get(key);
    if (failure && Date.now() < failure.retryAt) return;
    this.fetching.add(key);
    const started = Date.now();
    this.fetch(want)
      .then(
        (from) => {
          this.failures.delete(key);
          this.o.log?.(`router: fetched website ${key} from ${from} in ${Date.now() - started} ms`);
        },
        (err: Error) => {
          const count = (failure?.count ?? 0) + 1;
          const wait = Math.min(1000 * 2 ** (count - 1), 30_000);
          this.failures.set(key, { message: err.message, count, retryAt: Date.now() + wait });
          this.o.log?.(`router: website ${key}: ${err.message}; retrying in ${wait} ms`);
          this.later(wait + 10);
        },
      )
      .finally(() => {
        this.fetching.delete(key);
        if (!this.stopped) this.o.onChange();
      });
  }

  private later(ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) this.o.onChange();
    }, ms);
    this.timers.add(t);
  }

  /** Downloads the release's document root from the first host that has it; returns that host. */
  private async fetch(want: WantedSite): Promise<string> {
    const hosts = await readPrefix<HostRecord>(this.o.client, PREFIX.host);
    const all = hosts.entries.map((e) => e.value).filter((h): h is HostRecord => h !== undefined && h.name !== this.o.hostName);
    const ordered = [...all.filter((h) => h.name === want.builtOn), ...all.filter((h) => h.name !== want.builtOn)];
    if (ordered.length === 0) throw new Error(`host ${want.builtOn}, which built it, is not in the cluster`);
    const final = siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag);
    const errors: string[] = [];
    for (const host of ordered) {
      const tmp = `${final}.tmp-${process.pid}-${Date.now()}`;
      let res: Awaited<ReturnType<typeof request>> | undefined;
      try {
        const url = `${host.api}/v1/source/${want.stack}/${want.tag}/website/${want.node}`;
        res = await request(url, { headersTimeout: 10_000, bodyTimeout: 60_000 });
        if (res.statusCode !== 200) {
          const body = (await res.body.json().catch(() => ({}))) as { message?: string };
          throw new Error(`HTTP ${res.statusCode}${body.message ? `: ${body.message}` : ''}`);
        }
        await extractUpload(res.body, tmp, { maxBytes: this.o.maxBytes ?? 1024 * 1024 * 1024 });
        await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
          // Another fetch got there first: its copy is as good as ours.
          if (!existsSync(final)) throw err;
          await rm(tmp, { recursive: true, force: true });
        });
        await this.prune(want);
        return host.name;
      } catch (err) {
        res?.body.destroy();
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        errors.push(`${host.name}: ${(err as Error).message}`);
      }
    }
    throw new Error(errors.join('; '));
  }

  /** Keeps the fetched release and the one served before it; older copies go. */
  private async prune(want: WantedSite): Promise<void> {
    const dir = path.dirname(siteCacheDir(this.o.dataDir, want.stack, want.node, want.tag));
    const keep = new Set([want.tag, this.lastGood.get(`${want.stack}/${want.node}`)?.tag]);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (keep.has(name) || name.includes('.tmp-')) continue;
      this.ready.delete(`${want.stack}/${want.node}/${name}`);
      await rm(path.join(dir, name), { recursive: true, force: true }).catch(() => {});
    }
  }
}
