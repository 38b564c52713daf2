/**
 * One `viking push`, server side: source in, release out.
 *
 *   Vikingfile -> release number -> build images -> claim domains ->
 *   write /proc -> wait until every new job is healthy -> switch the stack
 *   to the new release -> remove the old release's jobs.
 *
 * Until the switch the old release keeps all traffic; if anything fails
 * before it, the new jobs are withdrawn and the old release is untouched.
 * Nodes with `service: true` keep running from the release that started them.
 */
import { rename, rm, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { VikingError, toVikingError } from '../errors.js';
import { loadVikingfile } from '../vikingfile/index.js';
import type { Vikingfile } from '../vikingfile/types.js';
import { buildImages } from '../builder/builder.js';
import { PREFIX, REGISTRY_KEY, domainKey, imageKey, jobFromKey, procKey, procStackPrefix, procTagPrefix } from '../store/keys.js';
import type { DomainRecord, JobSpec, ReleaseRecord } from '../store/records.js';
import { allocateRelease, currentImageOf, readStack, switchRelease } from './stacks.js';
import { containerNodes, foreignImages, jobSpecsForNode, resolveImage } from './jobs.js';
import { waitForJobs } from './wait.js';

export interface PushEvent {
  stage: 'vikingfile' | 'release' | 'build' | 'registry' | 'schedule' | 'deploy' | 'switch' | 'cleanup' | 'done';
  message: string;
}

export interface PushRequest {
  client: Etcd3;
  docker: Docker;
  /** Directory holding the extracted upload; moved under dataDir on success. */
  uploadDir: string;
  dataDir: string;
  hostName: string;
  by: string;
  timeoutMs?: number;
  onEvent?: (e: PushEvent) => void;
}

export interface PushResult {
  stack: string;
  tag: string;
  release: number;
  domains: string[];
  images: Record<string, string>;
}

export async function pushRelease(req: PushRequest): Promise<PushResult> {
  const emit = (stage: PushEvent['stage'], message: string): void => req.onEvent?.({ stage, message });
  const { vikingfile: vf } = await loadVikingfile(req.uploadDir);
  emit('vikingfile', `stack ${vf.stack}: ${vf.images.length} image(s), ${vf.nodes.length} node(s)`);
  await checkDomains(req.client, vf);

  const { tag, number } = await allocateRelease(req.client, vf.stack);
  const sourceDir = path.join(req.dataDir, 'stacks', vf.stack, tag);
  await mkdir(path.dirname(sourceDir), { recursive: true });
  await rm(sourceDir, { recursive: true, force: true });
  await rename(req.uploadDir, sourceDir);
  emit('release', `release ${tag} of ${vf.stack}`);

  const images = await buildImages({
    docker: req.docker,
    stack: vf.stack,
    tag,
    images: vf.images,
    contextDir: sourceDir,
    resolveOther: async (stack, image) => {
      const ref = await currentImageOf(req.client, stack, image);
      if (!ref) throw new VikingError('VIKING_E_IMAGE_MISSING', `FROM viking:${stack}/${image}: stack ${stack} has no released image ${image}; push ${stack} first`);
      return ref;
    },
    onLine: (image, line) => emit('build', `${image} | ${line}`),
    registry: (await req.client.get(REGISTRY_KEY).string()) ?? undefined,
    onPush: (image, line) => emit('registry', `${image} -> registry: ${line}`),
  });
  for (const [image, ref] of Object.entries(images)) await req.client.put(imageKey(vf.stack, tag, image)).value(ref);

  const jobs = await newJobs(req.client, vf, tag, images);
  await writeJobs(req.client, jobs);
  emit('schedule', `${jobs.length} container(s) scheduled`);
  try {
    await waitForJobs(req.client, jobs, {
      timeoutMs: req.timeoutMs ?? 120_000,
      onChange: (job, what) => emit('deploy', `${job.node}/${job.instance}: ${what}`),
    });
  } catch (err) {
    // Withdraw the new jobs: dispatch removes their containers, the old release never stopped.
    await req.client.delete().prefix(procTagPrefix(vf.stack, tag));
    throw toVikingError(err);
  }

  const domains: Record<string, string[]> = {};
  const websites: Record<string, string> = {};
  for (const node of vf.nodes) {
    domains[node.name] = node.domains;
    if (node.kind === 'website') websites[node.name] = node.documentRoot;
  }
  await claimDomains(req.client, vf);
  const release: ReleaseRecord = { tag, number, at: new Date().toISOString(), by: req.by, images, source: sourceDir, builtOn: req.hostName };
  await switchRelease(req.client, vf.stack, release, { domains, websites, ...(vf.comment !== undefined ? { comment: vf.comment } : {}) });
  emit('switch', `${vf.stack} now serves release ${tag}`);
  const removed = await retireOldJobs(req.client, vf, tag);
  if (removed > 0) emit('cleanup', `${removed} container(s) of older releases retired`);
  const allDomains = vf.nodes.flatMap((n) => n.domains);
  emit('done', `${vf.stack} ${tag} is live${allDomains.length ? `: ${allDomains.join(', ')}` : ''}`);
  return { stack: vf.stack, tag, release: number, domains: allDomains, images };
}

/** Refuses a push whose domains another stack already serves, before anything is built. */
async function checkDomains(client: Etcd3, vf: Vikingfile): Promise<void> {
  for (const node of vf.nodes) {
    for (const domain of node.domains) {
      const text = await client.get(domainKey(domain)).string();
      if (!text) continue;
      const owner = JSON.parse(text) as DomainRecord;
      if (owner.stack !== vf.stack) {
        throw new VikingError('VIKING_E_DOMAIN_TAKEN', `domain ${domain} is already served by ${owner.stack}/${owner.node}; remove it there first`);
      }
    }
  }
}

/** Points each domain at its node and drops the domains the stack no longer declares. */
async function claimDomains(client: Etcd3, vf: Vikingfile): Promise<void> {
  const wanted = new Map<string, DomainRecord>();
  for (const node of vf.nodes) for (const d of node.domains) wanted.set(d, { stack: vf.stack, node: node.name, kind: node.kind });
  const before = await readStack(client, vf.stack);
  for (const d of Object.values(before?.domains ?? {}).flat()) if (!wanted.has(d)) await client.delete().key(domainKey(d));
  for (const [d, rec] of wanted) await client.put(domainKey(d)).value(JSON.stringify(rec));
}

/** Nodes of the stack that already have jobs under /proc, in any release. */
async function nodesWithJobs(client: Etcd3, stack: string): Promise<Set<string>> {
  const keys = await client.getAll().prefix(procStackPrefix(stack)).keys();
  const nodes = new Set<string>();
  for (const key of keys) {
    const job = jobFromKey(key, PREFIX.proc);
    if (job) nodes.add(job.node);
  }
  return nodes;
}

async function newJobs(client: Etcd3, vf: Vikingfile, tag: string, built: Record<string, string>): Promise<JobSpec[]> {
  const others = new Map<string, string>();
  for (const f of foreignImages(vf)) {
    const ref = await currentImageOf(client, f.stack, f.image);
    if (ref) others.set(`${f.stack}/${f.image}`, ref);
  }
  const running = await nodesWithJobs(client, vf.stack);
  const jobs: JobSpec[] = [];
  for (const node of containerNodes(vf)) {
    // A service already running is not restarted by a push.
    if (node.service && running.has(node.name)) continue;
    jobs.push(...jobSpecsForNode(node, vf.stack, tag, resolveImage(node.image, vf.stack, built, others)));
  }
  return jobs;
}

async function writeJobs(client: Etcd3, jobs: JobSpec[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += 100) {
    const batch = jobs.slice(i, i + 100);
    // One transaction per batch: a release's jobs appear together, never half of them.
    await client
      .if(procKey(batch[0]!), 'Version', '>', -1)
      .then(...batch.map((j) => client.put(procKey(j)).value(JSON.stringify(j))))
      .commit();
  }
}

/** Deletes the /proc entries of releases other than `tag`, except service nodes still declared. */
async function retireOldJobs(client: Etcd3, vf: Vikingfile, tag: string): Promise<number> {
  const keep = new Set(containerNodes(vf).filter((n) => n.service).map((n) => n.name));
  const keys = await client.getAll().prefix(procStackPrefix(vf.stack)).keys();
  let removed = 0;
  for (const key of keys) {
    const job = jobFromKey(key, PREFIX.proc);
    if (!job || job.tag === tag || keep.has(job.node)) continue;
    await client.delete().key(key);
    removed++;
  }
  return removed;
}
