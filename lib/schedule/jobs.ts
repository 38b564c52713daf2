/**
 * From a parsed Vikingfile and the images of a release to the job specs
 * written under /proc: one per replica of every container node.
 */
import { VikingError } from '../errors.js';
import type { ContainerNodeSpec, ImageRef, Vikingfile } from '../vikingfile/types.js';
import type { JobSpec } from '../store/records.js';

/** Resolves a node's image: built by this release, by another stack, or any Docker reference. */
export function resolveImage(ref: ImageRef, stack: string, built: Record<string, string>, others: Map<string, string>): string {
  if (ref.kind === 'external') return ref.ref;
  if (ref.stack === stack) {
    const r = built[ref.image];
    if (!r) throw new VikingError('VIKING_E_IMAGE_MISSING', `image viking:${ref.stack}/${ref.image} is not in the build: section of ${stack}`);
    return r;
  }
  const r = others.get(`${ref.stack}/${ref.image}`);
  if (!r) throw new VikingError('VIKING_E_IMAGE_MISSING', `image viking:${ref.stack}/${ref.image}: stack ${ref.stack} has no released image ${ref.image}; push ${ref.stack} first`);
  return r;
}

export function jobSpecsForNode(node: ContainerNodeSpec, stack: string, tag: string, image: string): JobSpec[] {
  const jobs: JobSpec[] = [];
  for (let instance = 1; instance <= node.scale; instance++) {
    const spec: JobSpec = {
      stack,
      tag,
      node: node.name,
      instance,
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
    if (node.run !== undefined) spec.run = node.run;
    if (node.cwd !== undefined) spec.cwd = node.cwd;
    if (node.health !== undefined) spec.health = node.health;
    jobs.push(spec);
  }
  return jobs;
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
