/**
 * One `viking push`, server side: source in, release out.
 *
 *   Vikingfile -> lock the stack -> release number -> build images ->
 *   the rollout (lib/rollout/rollout.ts): write /proc, wait until every new
 *   job is healthy, claim domains, switch the stack, retire the old jobs.
 *
 * Until the switch the old release keeps all traffic; if anything fails
 * before it, the new jobs are withdrawn and the old release is untouched.
 * Nodes with `service: true` keep running from the release that started them.
 * The release record keeps every node's spec, so rollback and env changes
 * can deploy it again without the source.
 */
import { rename, rm, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { loadVikingfile } from '../vikingfile/index.js';
import type { Vikingfile } from '../vikingfile/types.js';
import { buildImages } from '../builder/builder.js';
import { REGISTRY_KEY, imageKey } from '../store/keys.js';
import { readSettings } from '../store/settings.js';
import type { JobSpec, NodeTemplate, ReleaseRecord, ScaleOverride, StackRecord } from '../store/records.js';
import { allocateRelease, currentImageOf, readStack } from './stacks.js';
import { containerNodes, effectiveScale, foreignImages, jobsFromTemplate, nodeTemplate, resolveImage } from './jobs.js';
import { nodesWithJobs, rollOut, type RolloutEvent } from './rollout.js';
import { reserveDomains } from './domain-claims.js';
import { fencedWrite, withStackLock } from './lock.js';
import { dict, own } from '../store/dict.js';

export type PushEvent = RolloutEvent;

export interface PushRequest {
  client: Etcd3;
  docker: Docker;
  /** Directory holding the extracted upload; moved under dataDir on success. */
  uploadDir: string;
  dataDir: string;
  hostName: string;
  by: string;
  /** The cluster's id, for the images' labels. */
  cluster?: string;
  timeoutMs?: number;
  onEvent?: (e: PushEvent) => void;
  /**
   * Called once the Vikingfile is read, before any lock, build or event:
   * throws when the caller may not push this stack or claim these domains.
   */
  authorize?: (stack: string, domains: string[]) => Promise<void>;
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
  const { maxScale } = await readSettings(req.client);
  const { vikingfile: vf } = await loadVikingfile(req.uploadDir, { maxScale });
  await req.authorize?.(vf.stack, vf.nodes.flatMap((n) => n.domains));
  emit('vikingfile', `stack ${vf.stack}: ${vf.images.length} image(s), ${vf.nodes.length} node(s)`);
  return withStackLock(req.client, vf.stack, { what: 'push', by: req.by, host: req.hostName }, ({ settled }) => {
    if (settled.removed > 0) {
      emit('schedule', `an earlier change of ${vf.stack} ended without finishing (its API host died): ${settled.removed} job(s) of ${settled.tags.join(', ')} withdrawn`);
    }
    return pushLocked(req, vf, emit);
  });
}

async function pushLocked(req: PushRequest, vf: Vikingfile, emit: (stage: PushEvent['stage'], message: string) => void): Promise<PushResult> {
  const domains = dict<string[]>();
  const websites = dict<string>();
  for (const node of vf.nodes) {
    domains[node.name] = node.domains;
    if (node.kind === 'website') websites[node.name] = node.documentRoot;
  }
  // Refused here, before a release number or a build, when another stack has or is taking a domain.
  const endClaims = await reserveDomains(req.client, vf.stack, domains);
  try {
    return await pushReserved(req, vf, emit, domains, websites);
  } finally {
    await endClaims();
  }
}

async function pushReserved(
  req: PushRequest,
  vf: Vikingfile,
  emit: (stage: PushEvent['stage'], message: string) => void,
  domains: Record<string, string[]>,
  websites: Record<string, string>,
): Promise<PushResult> {
  const { tag, number, incarnation } = await allocateRelease(req.client, vf.stack);
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
    ...(req.cluster ? { cluster: req.cluster } : {}),
  });
  await fencedWrite(req.client, Object.entries(images).map(([image, ref]) => req.client.put(imageKey(vf.stack, tag, image)).value(ref)));

  const stack = await readStack(req.client, vf.stack);
  const templates = await nodeTemplates(req.client, vf, images, incarnation);
  const { jobs, scale } = await newJobs(req.client, vf, tag, templates, stack, emit);
  const release: ReleaseRecord = {
    tag,
    number,
    at: new Date().toISOString(),
    by: req.by,
    images,
    source: sourceDir,
    builtOn: req.hostName,
    origin: { kind: 'push' },
    nodes: templates,
    domains,
    websites,
    ...hstsOf(vf),
    ...accessLogOf(vf),
    env: stack?.env ?? {},
  };
  await rollOut(
    req.client,
    {
      stack: vf.stack,
      release,
      jobs,
      declared: vf.nodes.map((n) => n.name),
      scale,
      ...(vf.comment !== undefined ? { comment: vf.comment } : {}),
    },
    { timeoutMs: req.timeoutMs ?? 120_000, emit },
  );
  const allDomains = vf.nodes.flatMap((n) => n.domains);
  emit('done', `${vf.stack} ${tag} is live${allDomains.length ? `: ${allDomains.join(', ')}` : ''}`);
  return { stack: vf.stack, tag, release: number, domains: allDomains, images };
}

/** Every container node of the Vikingfile with its image resolved: what the release record keeps. */
async function nodeTemplates(client: Etcd3, vf: Vikingfile, built: Record<string, string>, incarnation: string | undefined): Promise<Record<string, NodeTemplate>> {
  const others = new Map<string, string>();
  for (const f of foreignImages(vf)) {
    const ref = await currentImageOf(client, f.stack, f.image);
    if (ref) others.set(`${f.stack}/${f.image}`, ref);
  }
  const out = dict<NodeTemplate>();
  for (const node of containerNodes(vf)) {
    const t = nodeTemplate(node, resolveImage(node.image, vf.stack, built, others));
    // Only volumes need it (their names carry it), so stateless specs stay as they were.
    if (incarnation !== undefined && t.volumes.length > 0) t.incarnation = incarnation;
    out[node.name] = t;
  }
  return out;
}

/**
 * The jobs this push starts: every container node but services already
 * running, with the stack's env overrides and the `viking scale` overrides
 * that still apply. A node whose Vikingfile scale changed drops its override.
 */
async function newJobs(
  client: Etcd3,
  vf: Vikingfile,
  tag: string,
  templates: Record<string, NodeTemplate>,
  stack: StackRecord | undefined,
  emit: (stage: PushEvent['stage'], message: string) => void,
): Promise<{ jobs: JobSpec[]; scale: Record<string, ScaleOverride> }> {
  const running = await nodesWithJobs(client, vf.stack);
  const jobs: JobSpec[] = [];
  const scale = dict<ScaleOverride>();
  for (const node of containerNodes(vf)) {
    const t = own(templates, node.name)!;
    const override = own(stack?.scale, node.name);
    const replicas = effectiveScale(t, override);
    if (override && replicas === override.replicas) scale[node.name] = override;
    else if (override) emit('schedule', `${node.name}: scale ${t.scale} from the Vikingfile replaces viking scale ${override.replicas}`);
    // A service already running is not restarted by a push.
    if (node.service && running.has(node.name)) continue;
    jobs.push(...jobsFromTemplate(t, vf.stack, tag, replicas, stack?.env ?? {}));
  }
  return { jobs, scale };
}

/** `hsts:` of the nodes that set it, for the release record (nothing when none does). */
function hstsOf(vf: Vikingfile): { hsts?: Record<string, number> } {
  const out = dict<number>();
  for (const node of vf.nodes) if (node.hsts !== undefined) out[node.name] = node.hsts;
  return Object.keys(out).length > 0 ? { hsts: out } : {};
}

/** Nodes with `access_log: true`, for the release record (nothing when none has it). */
function accessLogOf(vf: Vikingfile): { accessLog?: string[] } {
  const out = vf.nodes.flatMap((n) => (n.kind === 'container' && n.accessLog ? [n.name] : []));
  return out.length > 0 ? { accessLog: out } : {};
}
