import { VikingError } from '../errors.js';
export function buildOrder(images, stack) {
    const byName = new Map(images.map((i) => [i.name, i]));
    const done = new Set();
    const visiting = new Set();
    const order = [];
    const visit = (img, chain) => {
        if (done.has(img.name))
            return;
        if (visiting.has(img.name)) {
            throw new VikingError('VIKING_E_VIKINGFILE_INVALID', `build images inherit in a cycle: ${[...chain, img.name].join(' -> ')}`);
        }
        visiting.add(img.name);
        for (const parent of parentsOf(img, stack)) {
            const p = byName.get(parent);
            if (p)
                visit(p, [...chain, img.name]);
        }
        visiting.delete(img.name);
        done.add(img.name);
        order.push(img);
    };
    for (const img of images)
        visit(img, []);
    return order;
}
const FROM_VIKING = /^(\s*FROM\s+(?:--\S+\s+)*)viking:([a-z0-9-]+)\/([a-z0-9-]+)/gim;
/** Stack images named by any FROM line (multi-stage builds may have several). */
export function parentsOf(img, stack) {
    const out = [];
    for (const m of img.dockerfile.matchAll(FROM_VIKING))
        if (m[2] === stack && m[3])
            out.push(m[3]);
    return out;
}
/** Rewrites every `FROM viking:<stack>/<image>` to the Docker reference it resolves to. */
export function resolveFromLines(dockerfile, resolve) {
    return dockerfile.replace(FROM_VIKING, (_all, head, stack, image) => `${head}${resolve(stack, image)}`);
}
//# sourceMappingURL=order.js.map