/**
 * The `build:` section: image name -> inline Dockerfile.
 *
 * The builder builds these images in dependency order, so here we make sure
 * that order exists: every `FROM viking:<this stack>/<image>` names an image
 * of the section, and no image depends on itself through other images
 * (`build-cycle`). FROM problems point at the FROM line inside the `|`
 * block, where the user has to edit.
 */
import { show } from './describe.js';
import { asMap, isNull, wrongType } from './fields.js';
import { dockerfileFroms, formatImageRef, parseImageRef } from './image-ref.js';
import { isValidName, nameRuleMessage } from './names.js';
import { closest } from './suggest.js';
/** Where a FROM line is in the file: inside a literal block exactly, else at the value. */
function fromPos(value, from) {
    if (value.block === undefined)
        return { line: value.line, column: value.column };
    return { line: value.block.line + from.line, column: value.block.indent + from.column + 1 };
}
/** "did you mean 'src'?" or the list of images the section has. */
export function missingImageHint(image, names) {
    const guess = closest(image, [...names]);
    if (guess !== undefined)
        return `did you mean '${guess}'?`;
    return names.size === 0 ? 'add it under build:' : `build: has ${[...names].join(', ')}`;
}
/** Reads `build:`; `stack` is the stack name, to tell this stack's images from other stacks'. */
export function readBuild(entry, stack, problems) {
    if (entry === undefined || isNull(entry.value))
        return [];
    const map = asMap(entry.value, 'build', problems);
    if (map === undefined)
        return [];
    const names = new Set(map.entries.map((e) => e.key));
    const images = [];
    const edges = new Map();
    for (const { key: name, keyPos, value } of map.entries) {
        if (!isValidName(name))
            problems.add('bad-name', keyPos, nameRuleMessage('image name', name));
        if (value.kind !== 'scalar' || typeof value.value !== 'string') {
            wrongType(value, `the Dockerfile of image '${show(name)}'`, 'a string (write it as a | block)', problems);
            continue;
        }
        const dockerfile = value.value;
        const froms = dockerfileFroms(dockerfile);
        if (froms.length === 0) {
            problems.add('bad-image-ref', value, `the Dockerfile of image '${show(name)}' has no FROM line; start it with e.g. 'FROM viking/node'`);
            continue;
        }
        const stages = new Map();
        const own = [];
        let from = null;
        for (const line of froms) {
            const at = fromPos(value, line);
            from = resolveFrom(line, at, stages, { name, stack, names, own, problems });
            if (line.alias !== undefined)
                stages.set(line.alias, from);
        }
        edges.set(name, own);
        if (from !== null)
            images.push({ name, dockerfile, from });
    }
    reportCycles(map.entries.map((e) => e.key), edges, problems);
    return images;
}
/** What one FROM builds on; null if it names nothing usable (the problem is recorded). */
function resolveFrom(line, at, stages, ctx) {
    if (line.image === '') {
        ctx.problems.add('bad-image-ref', at, `a FROM line of image '${show(ctx.name)}' names no image; write e.g. 'FROM viking/node'`);
        return null;
    }
    // A previous stage (`FROM build AS x` ... `FROM x`) builds on what that stage built on.
    const stage = stages.get(line.image.toLowerCase());
    if (stage !== undefined)
        return stage;
    // `FROM node:${VERSION}`: build arguments are only known at build time.
    if (line.image.includes('$'))
        return { kind: 'external', ref: line.image };
    const parsed = parseImageRef(line.image, ctx.stack);
    if (!parsed.ok) {
        ctx.problems.add('bad-image-ref', at, `FROM of image '${show(ctx.name)}': ${parsed.message}`);
        return null;
    }
    const ref = parsed.value;
    if (ref.kind === 'stack' && ref.stack === ctx.stack) {
        if (!ctx.names.has(ref.image)) {
            ctx.problems.add('bad-image-ref', at, `image '${show(ctx.name)}' builds FROM ${formatImageRef(ref)} but build: has no image '${ref.image}'; ${missingImageHint(ref.image, ctx.names)}`);
            return null;
        }
        ctx.own.push({ to: ref.image, at });
    }
    return ref;
}
/**
 * One `build-cycle` problem per cycle, at the FROM of its first image in
 * file order. Builds are small, so a search from each image is fast enough
 * and keeps the path for the message.
 */
function reportCycles(order, edges, problems) {
    const reported = new Set();
    for (const start of order) {
        if (reported.has(start))
            continue;
        const path = findCycle(start, edges);
        if (path === null)
            continue;
        for (const n of path.names)
            reported.add(n);
        problems.add('build-cycle', path.at, `build cycle: ${[...path.names, start].join(' -> ')}; an image cannot be built FROM itself, directly or through other images`);
    }
}
/** A shortest path start -> ... -> start, as the images on it and the position of its first FROM. */
function findCycle(start, edges) {
    const parent = new Map();
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
        const current = queue[i];
        for (const edge of edges.get(current) ?? []) {
            if (edge.to === start) {
                const names = [current];
                for (let n = current; n !== start;) {
                    n = parent.get(n);
                    names.unshift(n);
                }
                const firstTo = names[1] ?? start;
                const at = (edges.get(start) ?? []).find((e) => e.to === firstTo)?.at ?? edge.at;
                return { names, at };
            }
            if (!parent.has(edge.to) && edge.to !== start) {
                parent.set(edge.to, current);
                queue.push(edge.to);
            }
        }
    }
    return null;
}
//# sourceMappingURL=build.js.map