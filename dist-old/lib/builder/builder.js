import { pack as packDir } from 'tar-fs';
import { VikingError } from '../errors.js';
import { followProgress } from '../docker/client.js';
import { buildOrder, resolveFromLines } from './order.js';
/** Where the inline Dockerfile is placed inside the build context. */
const DOCKERFILE_NAME = '.viking.Dockerfile';
/**
 * The Docker reference viking gives a stack image of a release: in the
 * cluster registry when there is one (so every host can pull it), else a
 * local name.
 */
export function stackImageRef(stack, image, tag, registry) {
    return registry ? `${registry}/${stack}/${image}:${tag}` : `viking-${stack}/${image}:${tag}`;
}
function contextStream(dir, dockerfile) {
    return packDir(dir, {
        finalize: false,
        finish: (p) => {
            p.entry({ name: DOCKERFILE_NAME, mode: 0o644 }, dockerfile);
            p.finalize();
        },
    });
}
/** Builds every image; returns image name -> Docker reference. */
export async function buildImages(req) {
    const refs = {};
    const others = new Map();
    for (const img of req.images) {
        for (const m of img.dockerfile.matchAll(/^\s*FROM\s+(?:--\S+\s+)*viking:([a-z0-9-]+)\/([a-z0-9-]+)/gim)) {
            if (m[1] !== req.stack && m[1] && m[2])
                others.set(`${m[1]}/${m[2]}`, await req.resolveOther(m[1], m[2]));
        }
    }
    for (const img of buildOrder(req.images, req.stack)) {
        const dockerfile = resolveFromLines(img.dockerfile, (stack, image) => stack === req.stack ? refs[image] ?? stackImageRef(stack, image, req.tag, req.registry) : others.get(`${stack}/${image}`) ?? `viking:${stack}/${image}`);
        const ref = stackImageRef(req.stack, img.name, req.tag, req.registry);
        await buildOne(req, img.name, ref, dockerfile);
        refs[img.name] = ref;
    }
    if (req.registry)
        for (const [name, ref] of Object.entries(refs))
            await pushImage(req, name, ref);
    return refs;
}
/** Pushes one image to the cluster registry; a failed push fails the release before anything deploys. */
async function pushImage(req, name, ref) {
    const seen = new Map();
    try {
        const stream = await req.docker.getImage(ref).push({ authconfig: {} });
        await followProgress(req.docker, stream, (e) => {
            if (e.progress !== undefined || !e.status)
                return;
            const key = e.id ?? e.status;
            if (seen.get(key) === e.status)
                return;
            seen.set(key, e.status);
            req.onPush?.(name, e.id ? `${e.id}: ${e.status}` : e.status);
        });
    }
    catch (err) {
        throw new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `pushing ${ref} to the cluster registry failed: ${err.message}`, { image: name });
    }
}
async function buildOne(req, name, ref, dockerfile) {
    const output = [];
    const emit = (line) => {
        output.push(line);
        if (output.length > 200)
            output.shift();
        req.onLine?.(name, line);
    };
    const onEvent = (e) => {
        const text = e.stream ?? (e.status ? `${e.status}${e.progress ? ` ${e.progress}` : ''}` : undefined);
        if (text === undefined)
            return;
        for (const line of text.split('\n'))
            if (line.trim() !== '')
                emit(line.replace(/\s+$/, ''));
    };
    try {
        const stream = await req.docker.buildImage(contextStream(req.contextDir, dockerfile), {
            t: ref,
            dockerfile: DOCKERFILE_NAME,
            rm: true,
            forcerm: true,
            // No release tag in the labels: it would change every push and defeat the layer cache.
            labels: { 'viking.stack': req.stack, 'viking.image': name },
        });
        await followProgress(req.docker, stream, onEvent);
    }
    catch (err) {
        const message = err.message;
        emit(message);
        throw new VikingError('VIKING_E_BUILD_FAILED', `image ${name} failed to build: ${message}`, {
            image: name,
            output: output.slice(-40),
        });
    }
}
//# sourceMappingURL=builder.js.map