/**
 * From a parsed Vikingfile and the images of a release to the job specs
 * written under /proc: one per replica of every container node.
 */
import { VikingError } from '../errors.js';
import type { ContainerNodeSpec, ImageRef, Vikingfile } from '../vikingfile/types.js';
import type { JobSpec, NodeTemplate, ScaleOverride } from '../store/records.js';
import { own } from '../store/dict.js';

/** Resolves a node's image: built by this release, by another stack, or any Docker reference. */
export function resolveImage(ref: ImageRef, stack: string, built: Record<string, string>, others: Map<string, string>): string {
  if (ref.kind === 'external') return ref.ref;
  if (ref.stack === stack) {
    const r = own(built, ref.image);
    if (!r) throw new VikingError('VIKING_E_IMAGE_MISSING', `image viking:${ref.stack}/${ref.image} is not in the build: section of ${stack}`);
    return r;
  }
  const r = others.get(`${ref.stack}/${ref.image}`);
  if (!r) throw new VikingError('VIKING_E_IMAGE_MISSING', `image viking:${ref.stack}/${ref.image}: stack ${ref.stack} has no released image ${ref.image}; push ${ref.stack} first`);
  return r;
}

/** A container node as a release keeps it: everything a replica needs but its identity. */
export function nodeTemplate(node: ContainerNodeSpec, image: string): NodeTemplate {
  const t: NodeTemplate = {
    node: node.name,
    image,
    expose: node.expose,
    volumes: node.volumes,
    env: node.env,
    service: node.service,
    tags: node.tags,
    prefer: node.prefer,
    memory: node.memory,
    cpu: node.cpu,
    scale: node.scale,
  };
  if (node.run !== undefined) t.run = node.run;
  if (node.cwd !== undefined) t.cwd = node.cwd;
  if (node.health !== undefined) t.health = node.health;
  if (node.cron !== undefined) t.cron = node.cron;
  return t;
}

/**
 * The replicas of a node in a release: `replicas` of them (the Vikingfile's
 * scale unless `viking scale` said otherwise), with the stack's env
 * overrides laid over the node's own env.
 */
export function jobsFromTemplate(
  t: NodeTemplate,
  stack: string,
  tag: string,
  replicas: number = t.scale,
  envOverrides: Record<string, string> = {},
): JobSpec[] {
  const jobs: JobSpec[] = [];
  // A cron node has no replicas: the leader runs it once per tick (lib/cron/scheduler.ts).
  if (t.cron !== undefined) return jobs;
  for (let instance = 1; instance <= replicas; instance++) {
    jobs.push({ ...structuredClone(t), env: { ...t.env, ...envOverrides }, stack, tag, instance, scale: replicas });
  }
  return jobs;
}

export function jobSpecsForNode(node: ContainerNodeSpec, stack: string, tag: string, image: string): JobSpec[] {
  return jobsFromTemplate(nodeTemplate(node, image), stack, tag);
}

/** Replicas to run for a node: a `viking scale` override while the declared scale is the one it was made against. */
export function effectiveScale(t: NodeTemplate, override: ScaleOverride | undefined, keepAnyway = false): number {
  if (!override) return t.scale;
  return keepAnyway || override.declared === t.scale ? override.replicas : t.scale;
}

export function containerNodes(vf: Vikingfile): ContainerNodeSpec[] {
  return vf.nodes.filter((n): n is ContainerNodeSpec => n.kind === 'container');
}

/** Other stacks' images this Vikingfile names (nodes and FROM lines), as `stack/image`. */
export function foreignImages(vf: Vikingfile): Array<{ stack: string; image: string }> {
  const out = new Map<string, { stack: string; image: string }>();
  for (const n of containerNodes(vf)) {
    if (n.image.kind === 'stack' && n.image.stack !== vf.stack) out.set(`${n.image.stack}/${n.image.image}`, n.image);
  }
  return [...out.values()];
}
