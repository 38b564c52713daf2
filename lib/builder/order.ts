/**
 * Build order: an image is built after the stack image it inherits from
 * (`FROM viking:<stack>/<image>`). The parser already rejected cycles and
 * missing parents with line numbers; this only sorts, and still refuses a
 * cycle rather than loop.
 */
import type { ImageSpec } from '../vikingfile/types.js';
import { VikingError } from '../errors.js';

export function buildOrder(images: ImageSpec[], stack: string): ImageSpec[] {
  const byName = new Map(images.map((i) => [i.name, i]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const order: ImageSpec[] = [];
  const visit = (img: ImageSpec, chain: string[]): void => {
    if (done.has(img.name)) return;
    if (visiting.has(img.name)) {
      throw new VikingError('VIKING_E_VIKINGFILE_INVALID', `build images inherit in a cycle: ${[...chain, img.name].join(' -> ')}`);
    }
    visiting.add(img.name);
    for (const parent of parentsOf(img, stack)) {
      const p = byName.get(parent);
      if (p) visit(p, [...chain, img.name]);
    }
    visiting.delete(img.name);
    done.add(img.name);
    order.push(img);
  };
  for (const img of images) visit(img, []);
  return order;
}

const FROM_VIKING = /^(\s*FROM\s+(?:--\S+\s+)*)viking:([a-z0-9-]+)\/([a-z0-9-]+)/gim;

/** Stack images named by any FROM line (multi-stage builds may have several). */
export function parentsOf(img: ImageSpec, stack: string): string[] {
  const out: string[] = [];
  for (const m of img.dockerfile.matchAll(FROM_VIKING)) if (m[2] === stack && m[3]) out.push(m[3]);
  return out;
}

/** Rewrites every `FROM viking:<stack>/<image>` to the Docker reference it resolves to. */
export function resolveFromLines(dockerfile: string, resolve: (stack: string, image: string) => string): string {
  return dockerfile.replace(FROM_VIKING, (_all, head: string, stack: string, image: string) => `${head}${resolve(stack, image)}`);
}
