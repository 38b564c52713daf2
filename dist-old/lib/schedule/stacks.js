import { VikingError } from '../errors.js';
import { imageKey, stackKey } from '../store/keys.js';
/** Keep this many releases in the history (rollback targets). */
export const HISTORY = 20;
export function emptyStack(name) {
    return { name, current: null, lastRelease: 0, releases: [], domains: {}, websites: {} };
}
/** Applies `change` to the stack record atomically, retrying on concurrent writes. */
export async function updateStack(client, name, change) {
    for (let attempt = 0; attempt < 20; attempt++) {
        const res = await client.get(stackKey(name)).exec();
        const kv = res.kvs[0];
        const current = kv ? JSON.parse(kv.value.toString()) : emptyStack(name);
        const next = change(structuredClone(current));
        const txn = kv
            ? client.if(stackKey(name), 'Mod', '==', kv.mod_revision)
            : client.if(stackKey(name), 'Version', '==', 0);
        const done = await txn.then(client.put(stackKey(name)).value(JSON.stringify(next))).commit();
        if (done.succeeded)
            return next;
    }
    throw new VikingError('VIKING_E_INTERNAL', `stack ${name} is changing too fast to update; try again`);
}
/** Hands out the next release number: v1, v2, … never reused, even for failed pushes. */
export async function allocateRelease(client, name) {
    const s = await updateStack(client, name, (s) => ({ ...s, lastRelease: s.lastRelease + 1 }));
    return { tag: `v${s.lastRelease}`, number: s.lastRelease };
}
export async function readStack(client, name) {
    const text = await client.get(stackKey(name)).string();
    return text ? JSON.parse(text) : undefined;
}
/** The Docker reference of an image of another stack's current release. */
export async function currentImageOf(client, stack, image) {
    const s = await readStack(client, stack);
    if (!s?.current)
        return undefined;
    return (await client.get(imageKey(stack, s.current, image)).string()) ?? undefined;
}
/** Makes a healthy release the one taking traffic and records it in the history. */
export async function switchRelease(client, name, release, extra) {
    return updateStack(client, name, (s) => {
        const next = {
            ...s,
            current: release.tag,
            releases: [...s.releases.filter((r) => r.tag !== release.tag), release].slice(-HISTORY),
            domains: extra.domains,
            websites: extra.websites,
        };
        if (extra.comment !== undefined)
            next.comment = extra.comment;
        if (extra.env !== undefined)
            next.env = extra.env;
        if (extra.scale !== undefined)
            next.scale = extra.scale;
        return next;
    });
}
//# sourceMappingURL=stacks.js.map