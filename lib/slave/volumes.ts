/**
 * The Docker volumes of `volume:` paths: their names, and the only ways the
 * slave and `viking rm` touch them.
 *
 * A name must never be shared by two stacks. Stack and node names are
 * `[a-z0-9-]`, so `_` separates them without ambiguity; the path and the
 * stack's incarnation (a random id made at its first push, new after
 * `viking rm`) go in through a hash. So `rt-g`/`h-web` and `rt-g-h`/`web`
 * get different volumes, and a stack pushed again after `rm` under the same
 * name does not find the old one's data. Labels say whose a volume is, and a
 * volume whose labels do not match is never mounted.
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { VikingError } from '../errors.js';

export const VOLUME_LABEL = {
  stack: 'viking.stack',
  node: 'viking.node',
  path: 'viking.volume',
  incarnation: 'viking.incarnation',
} as const;

export interface VolumeOwner {
  stack: string;
  node: string;
  /** The stack's incarnation id; absent only in jobs of releases made before volumes had one. */
  incarnation?: string;
}

/** The volume of one declared path of a node: `viking_<stack>_<node>_<hash>`. */
export function volumeName(owner: VolumeOwner, containerPath: string): string {
  if (owner.incarnation === undefined) {
    // Releases made before incarnations keep the volume they always had.
    const slug = containerPath.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '') || 'root';
    return `viking-${owner.stack}-${owner.node}-${slug}`;
  }
  const hash = createHash('sha256').update(JSON.stringify([owner.incarnation, owner.stack, owner.node, containerPath])).digest('hex').slice(0, 20);
  return `viking_${owner.stack}_${owner.node}_${hash}`;
}

export function volumeLabels(owner: VolumeOwner, containerPath: string): Record<string, string> {
  return {
    [VOLUME_LABEL.stack]: owner.stack,
    [VOLUME_LABEL.node]: owner.node,
    [VOLUME_LABEL.path]: containerPath,
    ...(owner.incarnation !== undefined ? { [VOLUME_LABEL.incarnation]: owner.incarnation } : {}),
  };
}

/**
 * Makes sure the volume of a path exists and is this stack's: an existing
 * volume of that name whose labels say otherwise is refused, never mounted.
 */
export async function ensureVolume(docker: Docker, owner: VolumeOwner, containerPath: string): Promise<string> {
  const name = volumeName(owner, containerPath);
  const wanted = volumeLabels(owner, containerPath);
  let labels: Record<string, string> | undefined;
  try {
    labels = ((await docker.getVolume(name).inspect()) as { Labels?: Record<string, string> | null }).Labels ?? {};
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  if (labels === undefined) {
    await docker.createVolume({ Name: name, Labels: wanted });
    return name;
  }
  // Legacy volumes were made with stack and node labels only.
  const mismatch = Object.entries(wanted).find(([k, v]) => k !== VOLUME_LABEL.path && labels[k] !== v && !(owner.incarnation === undefined && labels[k] === undefined));
  if (mismatch) {
    throw new VikingError(
      'VIKING_E_VOLUME_CONFLICT',
      `volume ${name} for ${owner.stack}/${owner.node}:${containerPath} exists but is labelled ${mismatch[0]}=${labels[mismatch[0]] ?? '(none)'}; it is not this stack's and is not reused`,
    );
  }
  return name;
}

export interface StackVolume {
  name: string;
  node: string;
  path: string;
}

/** The volumes of one incarnation of a stack on this Docker Engine. */
export async function stackVolumes(docker: Docker, stack: string, incarnation: string): Promise<StackVolume[]> {
  const { Volumes } = await docker.listVolumes({
    filters: { label: [`${VOLUME_LABEL.stack}=${stack}`, `${VOLUME_LABEL.incarnation}=${incarnation}`] },
  });
  return (Volumes ?? [])
    .map((v) => ({ name: v.Name, node: v.Labels?.[VOLUME_LABEL.node] ?? '', path: v.Labels?.[VOLUME_LABEL.path] ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
