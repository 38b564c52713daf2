/**
 * Symbolic links judged against a tree as if the tree were the whole world.
 *
 * The kernel resolves a relative link from wherever the tree happens to sit:
 * a link that dangles in `uploads/<id>/` can land on a real file once the
 * tree moves to `stacks/<stack>/<tag>/`, one level deeper. So a link is never
 * judged by `realpath` at one place and then trusted at another. Instead
 * `resolveInTree` walks the link itself, component by component, with lstat
 * and readlink, treating the tree's root as `/` that cannot be climbed: any
 * `..` above the root, any absolute target, any missing component, any loop
 * is an answer of its own. A link that resolves to an existing entry without
 * ever leaving the root resolves to the same entry wherever the tree is
 * moved, which is what makes the check location-independent.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

/** Links followed while resolving one path before it counts as a loop (the kernel's own limit). */
const MAX_FOLLOW = 40;

export type TreeResolution =
  /** `rel`: the entry it leads to; `hidden`: it passed through a dot-named entry (other than a top `.well-known`). */
  | { kind: 'inside'; rel: string; hidden: boolean }
  /** It would leave the tree: through `..` above the root, or an absolute target. */
  | { kind: 'escape'; via: string }
  /** A component does not exist (or is not a folder where one is needed). */
  | { kind: 'dangling'; missing: string }
  | { kind: 'loop' };

/** True for names the router never serves: dot-names, except `.well-known` at the top. */
export function hiddenSegment(name: string, depth: number): boolean {
  return name.startsWith('.') && !(depth === 0 && name === '.well-known');
}

/** Resolves `rel` (relative to `root`) following every link, never leaving `root`. */
export async function resolveInTree(root: string, rel: string): Promise<TreeResolution> {
  const done: string[] = [];
  let todo = rel.split('/');
  let follows = 0;
  let hidden = false;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (done.length === 0) return { kind: 'escape', via: '..' };
      done.pop();
      continue;
    }
    if (hiddenSegment(c, done.length)) hidden = true;
    const at = path.join(root, ...done, c);
    const st = await lstat(at).catch(() => undefined);
    if (!st) return { kind: 'dangling', missing: [...done, c].join('/') };
    if (st.isSymbolicLink()) {
      if (++follows > MAX_FOLLOW) return { kind: 'loop' };
      const target = await readlink(at);
      if (path.posix.isAbsolute(target)) return { kind: 'escape', via: target };
      todo = [...target.split('/'), ...todo];
      continue;
    }
    if (todo.some((t) => t !== '' && t !== '.') && !st.isDirectory()) return { kind: 'dangling', missing: [...done, c, ...todo].join('/') };
    done.push(c);
  }
  return { kind: 'inside', rel: done.join('/'), hidden };
}

/** Why a link may not stay in a tree, as a sentence, or undefined when it is fine. */
export function linkProblem(rel: string, target: string, r: TreeResolution): string | undefined {
  switch (r.kind) {
    case 'inside':
      return undefined;
    case 'escape':
      return `link '${rel}' resolves out of the tree ('${target}')`;
    case 'dangling':
      return `link '${rel}' points to '${r.missing}', which is not in the tree ('${target}'); dangling links are refused`;
    case 'loop':
      return `link '${rel}' is part of a loop of links ('${target}')`;
  }
}

/**
 * Every symbolic link under `root` (relative paths), found without following
 * any. Yields to the event loop now and then so a huge tree does not stall it.
 */
export async function linksUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const dirs = [''];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    const entries = await readdir(path.join(root, dir), { withFileTypes: true });
    for (const e of entries) {
      const rel = dir === '' ? e.name : `${dir}/${e.name}`;
      if (e.isSymbolicLink()) out.push(rel);
      else if (e.isDirectory()) dirs.push(rel);
    }
  }
  return out;
}
