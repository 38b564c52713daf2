/**
 * The builder: turns the `build:` section of a Vikingfile into Docker images.
 *
 * Images are built in inheritance order on the local daemon, each with the
 * pushed source as context and its inline Dockerfile added to that context.
 * Every build line is streamed to the caller as it happens; a failed step
 * fails the whole push with that step's output, before anything deploys.
 */
import type Docker from 'dockerode';
import { pack as packDir } from 'tar-fs';
import { VikingError } from '../errors.js';
import { followProgress, type ProgressEvent } from '../docker/client.js';
import type { ImageSpec } from '../vikingfile/types.js';
import { buildOrder, resolveFromLines } from './order.js';
import { dict, own } from '../store/dict.js';

/** Where the inline Dockerfile is placed inside the build context. */
const DOCKERFILE_NAME = '.viking.Dockerfile';

export interface BuildRequest {
  docker: Docker;
  stack: string;
  tag: string;
  images: ImageSpec[];
  /** Directory of the pushed source: the build context. */
  contextDir: string;
  /** References of images of other stacks (`FROM viking:<other>/<image>`). */
  resolveOther: (stack: string, image: string) => Promise<string>;
  onLine?: (image: string, line: string) => void;
  /** `host:port` of the cluster registry: images are named after it and pushed there. */
  registry?: string;
  /** Registry push progress, one line per layer state change. */
  onPush?: (image: string, line: string) => void;
  /** The cluster's id, put on every image as `viking.cluster` so clean-ups can tell two clusters' images apart. */
  cluster?: string;
}

/**
 * The Docker reference viking gives a stack image of a release: in the
 * cluster registry when there is one (so every host can pull it), else a
 * local name. A local name carries the cluster's id: two clusters on one
 * Docker Engine with a stack of the same name would otherwise retag each
 * other's images, and a restarted container would run the other's code.
 */
export function stackImageRef(stack: string, image: string, tag: string, registry?: string, cluster?: string): string {
  if (registry) return `${registry}/${stack}/${image}:${tag}`;
  return cluster ? `viking-${cluster.slice(0, 8)}-${stack}/${image}:${tag}` : `viking-${stack}/${image}:${tag}`;
}

function contextStream(dir: string, dockerfile: string): NodeJS.ReadableStream {
  return packDir(dir, {
    finalize: false,
    finish: (p) => {
      p.entry({ name: DOCKERFILE_NAME, mode: 0o644 }, dockerfile);
      p.finalize();
    },
  }) as unknown as NodeJS.ReadableStream;
}

/** Builds every image; returns image name -> Docker reference. */
export async function buildImages(req: BuildRequest): Promise<Record<string, string>> {
  const refs = dict<string>();
  const others = new Map<string, string>();
  for (const img of req.images) {
    for (const m of img.dockerfile.matchAll(/^\s*FROM\s+(?:--\S+\s+)*viking:([a-z0-9-]+)\/([a-z0-9-]+)/gim)) {
      if (m[1] !== req.stack && m[1] && m[2]) others.set(`${m[1]}/${m[2]}`, await req.resolveOther(m[1], m[2]));
    }
  }
  for (const img of buildOrder(req.images, req.stack)) {
    const dockerfile = resolveFromLines(img.dockerfile, (stack, image) =>
      stack === req.stack ? own(refs, image) ?? stackImageRef(stack, image, req.tag, req.registry, req.cluster) : others.get(`${stack}/${image}`) ?? `viking:${stack}/${image}`,
    );
    const ref = stackImageRef(req.stack, img.name, req.tag, req.registry, req.cluster);
    await buildOne(req, img.name, ref, dockerfile);
    refs[img.name] = ref;
  }
  if (req.registry) for (const [name, ref] of Object.entries(refs)) await pushImage(req, name, ref);
  return refs;
}

/** Pushes one image to the cluster registry; a failed push fails the release before anything deploys. */
async function pushImage(req: BuildRequest, name: string, ref: string): Promise<void> {
  const seen = new Map<string, string>();
  try {
    const stream = await req.docker.getImage(ref).push({ authconfig: {} } as object);
    await followProgress(req.docker, stream, (e) => {
      if (e.progress !== undefined || !e.status) return;
      const key = e.id ?? e.status;
      if (seen.get(key) === e.status) return;
      seen.set(key, e.status);
      req.onPush?.(name, e.id ? `${e.id}: ${e.status}` : e.status);
    });
  } catch (err) {
    throw new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `pushing ${ref} to the cluster registry failed: ${(err as Error).message}`, { image: name });
  }
}

async function buildOne(req: BuildRequest, name: string, ref: string, dockerfile: string): Promise<void> {
  const output: string[] = [];
  const emit = (line: string): void => {
    output.push(line);
    if (output.length > 200) output.shift();
    req.onLine?.(name, line);
  };
  const onEvent = (e: ProgressEvent): void => {
    const text = e.stream ?? (e.status ? `${e.status}${e.progress ? ` ${e.progress}` : ''}` : undefined);
    if (text === undefined) return;
    for (const line of text.split('\n')) if (line.trim() !== '') emit(line.replace(/\s+$/, ''));
  };
  try {
    const stream = await req.docker.buildImage(contextStream(req.contextDir, dockerfile), {
      t: ref,
      dockerfile: DOCKERFILE_NAME,
      rm: true,
      forcerm: true,
      // No release tag in the labels: it would change every push and defeat the layer cache.
      labels: { 'viking.stack': req.stack, 'viking.image': name, ...(req.cluster ? { 'viking.cluster': req.cluster } : {}) },
    });
    await followProgress(req.docker, stream, onEvent);
  } catch (err) {
    const message = (err as Error).message;
    emit(message);
    throw new VikingError('VIKING_E_BUILD_FAILED', `image ${name} failed to build: ${message}`, {
      image: name,
      output: output.slice(-40),
    });
  }
}
