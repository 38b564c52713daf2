import { connectDocker } from '../../lib/docker/client.js';
import { ensureBaseImages } from '../../lib/docker/base-images.js';
export const docker = connectDocker();
let baseReady;
/** viking/busybox and viking/node, made once per run if missing. */
export function baseImages() {
    baseReady ??= ensureBaseImages(docker);
    return baseReady;
}
/** Removes every container a test host ran (label viking.host=<host>). */
export async function removeHostContainers(host) {
    const list = await docker.listContainers({ all: true, filters: { label: [`viking.host=${host}`] } });
    await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => { })));
    return list.length;
}
/** Removes the images a test stack built (labelled viking.stack=<stack> by the builder) and its volumes. */
export async function removeStackArtifacts(stack, on = docker) {
    // An image with children (an inheritance chain) cannot go first: repeat while each round removes some.
    for (let round = 0; round < 6; round++) {
        const images = await on.listImages({ filters: { label: [`viking.stack=${stack}`] } });
        if (images.length === 0)
            break;
        let removed = 0;
        for (const img of images) {
            const ok = await on.getImage(img.Id).remove({ force: true }).then(() => true, () => false);
            if (ok)
                removed++;
        }
        if (removed === 0)
            break;
    }
    const { Volumes } = await on.listVolumes({ filters: { label: [`viking.stack=${stack}`] } });
    for (const v of Volumes ?? [])
        await on.getVolume(v.Name).remove().catch(() => { });
}
//# sourceMappingURL=docker.js.map