/**
 * One `viking push`, server side: source in, release out.
 *
 *   Vikingfile -> lock the stack -> release number -> build images ->
 *   the rollout (lib/schedule/rollout.ts): write /proc, wait until every new
 *   job is healthy, claim domains, switch the stack, retire the old jobs.
 *
 * Until the switch the old release keeps all traffic; if anything fails
 * before it, the new jobs are withdrawn and the old release is untouched.
 * Nodes with `service: true` keep running from the release that started them.
 * The release record keeps every node's spec, so rollback and env changes
 * can deploy it again without the source.
 */
import { rename, rm, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';
import { loadVikingfile } from '../vikingfile/index.js';
import { buildImages } from '../builder/builder.js';
import { REGISTRY_KEY, imageKey } from '../store/keys.js';
import { allocateRelease, currentImageOf, readStack } from './stacks.js';
import { containerNodes, effectiveScale, foreignImages, jobsFromTemplate, nodeTemplate, resolveImage } from './jobs.js';
import { checkDomains, nodesWithJobs, rollOut } from './rollout.js';
import { withStackLock } from './lock.js';
export async function pushRelease(req) {
    const emit = (stage, message) => req.onEvent?.({ stage, message });
    const { vikingfile: vf } = await loadVikingfile(req.uploadDir);
    emit('vikingfile', `stack ${vf.stack}: ${vf.images.length} image(s), ${vf.nodes.length} node(s)`);
    return withStackLock(req.client, vf.stack, { what: 'push', by: req.by, host: req.hostName }, () => pushLocked(req, vf, emit));
}
async function pushLocked(req, vf, emit) {
    const domains = {};
    const websites = {};
    for (const node of vf.nodes) {
        domains[node.name] = node.domains;
        if (node.kind === 'website')
            websites[node.name] = node.documentRoot;
    }
    await checkDomains(req.client, vf.stack, domains);
    const { tag, number } = await allocateRelease(req.client, vf.stack);
    const sourceDir = path.join(req.dataDir, 'stacks', vf.stack, tag);
    await mkdir(path.dirname(sourceDir), { recursive: true });
    await rm(sourceDir, { recursive: true, force: true });
    await rename(req.uploadDir, sourceDir);
    emit('release', `release ${tag} of ${vf.stack}`);
    const images = await buildImages({
        docker: req.docker,
        stack: vf.stack,
        tag,
        images: vf.images,
        contextDir: sourceDir,
        resolveOther: async (stack, image) => {
            const ref = await currentImageOf(req.client, stack, image);
            if (!ref)
                throw new VikingError('VIKING_E_IMAGE_MISSING', `FROM viking:${stack}/${image}: stack ${stack} has no released image ${image}; push ${stack} first`);
            return ref;
        },
        onLine: (image, line) => emit('build', `${image} | ${line}`),
        registry: (await req.client.get(REGISTRY_KEY).string()) ?? undefined,
        onPush: (image, line) => emit('registry', `${image} -> registry: ${line}`),
    });
    for (const [image, ref] of Object.entries(images))
        await req.client.put(imageKey(vf.stack, tag, image)).value(ref);
    const stack = await readStack(req.client, vf.stack);
    const templates = await nodeTemplates(req.client, vf, images);
    const { jobs, scale } = await newJobs(req.client, vf, tag, templates, stack, emit);
    const release = {
        tag,
        number,
        at: new Date().toISOString(),
        by: req.by,
        images,
        source: sourceDir,
        builtOn: req.hostName,
        origin: { kind: 'push' },
        nodes: templates,
        domains,
        websites,
        env: stack?.env ?? {},
    };
    await rollOut(req.client, {
        stack: vf.stack,
        release,
        jobs,
        declared: vf.nodes.map((n) => n.name),
        scale,
        ...(vf.comment !== undefined ? { comment: vf.comment } : {}),
    }, { timeoutMs: req.timeoutMs ?? 120_000, emit });
    const allDomains = vf.nodes.flatMap((n) => n.domains);
    emit('done', `${vf.stack} ${tag} is live${allDomains.length ? `: ${allDomains.join(', ')}` : ''}`);
    return { stack: vf.stack, tag, release: number, domains: allDomains, images };
}
/** Every container node of the Vikingfile with its image resolved: what the release record keeps. */
async function nodeTemplates(client, vf, built) {
    const others = new Map();
    for (const f of foreignImages(vf)) {
        const ref = await currentImageOf(client, f.stack, f.image);
        if (ref)
            others.set(`${f.stack}/${f.image}`, ref);
    }
    const out = {};
    for (const node of containerNodes(vf))
        out[node.name] = nodeTemplate(node, resolveImage(node.image, vf.stack, built, others));
    return out;
}
/**
 * The jobs this push starts: every container node but services already
 * running, with the stack's env overrides and the `viking scale` overrides
 * that still apply. A node whose Vikingfile scale changed drops its override.
 */
async function newJobs(client, vf, tag, templates, stack, emit) {
    const running = await nodesWithJobs(client, vf.stack);
    const jobs = [];
    const scale = {};
    for (const node of containerNodes(vf)) {
        const t = templates[node.name];
        const override = stack?.scale?.[node.name];
        const replicas = effectiveScale(t, override);
        if (override && replicas === override.replicas)
            scale[node.name] = override;
        else if (override)
            emit('schedule', `${node.name}: scale ${t.scale} from the Vikingfile replaces viking scale ${override.replicas}`);
        // A service already running is not restarted by a push.
        if (node.service && running.has(node.name))
            continue;
        jobs.push(...jobsFromTemplate(t, vf.stack, tag, replicas, stack?.env ?? {}));
    }
    return { jobs, scale };
}
//# sourceMappingURL=push.js.map