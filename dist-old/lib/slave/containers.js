/**
 * The slave's hands on the Docker Engine: the containers it owns, how one is
 * created from a job spec, and how one is taken down.
 *
 * Ownership is by label. A container is the slave's only if it carries
 * `viking.host=<this host>`; nothing else on the daemon is ever touched, so
 * several viking hosts can share one daemon (as tests do) without stepping on
 * each other.
 */
import { createHash } from 'node:crypto';
import { followProgress } from '../docker/client.js';
import { VikingError } from '../errors.js';
export const LABEL = {
    stack: 'viking.stack',
    tag: 'viking.tag',
    node: 'viking.node',
    instance: 'viking.instance',
    host: 'viking.host',
    spec: 'viking.spec',
};
/** Stable hash of everything that changes what a container runs. */
export function specHash(spec) {
    const { image, expose, volumes, run, cwd, env, health, memory, cpu } = spec;
    const canonical = JSON.stringify({ image, expose, volumes, run, cwd, env: Object.entries(env).sort(), health, memory, cpu });
    return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
/** Deterministic name per host, job and spec: a changed spec gets a new container beside the old one. */
export function containerName(host, job, hash) {
    return `viking-${host}-${job.stack}-${job.tag}-${job.node}-${job.instance}-${hash.slice(0, 8)}`;
}
/** Docker volume names for a node's declared paths: stable across releases, so data survives pushes. */
export function volumeName(stack, node, containerPath) {
    const slug = containerPath.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '') || 'root';
    return `viking-${stack}-${node}-${slug}`;
}
export async function listOwned(docker, host) {
    const list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.host}=${host}`] } });
    const owned = [];
    for (const c of list) {
        const l = c.Labels;
        const instance = Number(l[LABEL.instance]);
        const stack = l[LABEL.stack];
        const tag = l[LABEL.tag];
        const node = l[LABEL.node];
        if (!stack || !tag || !node || !Number.isInteger(instance))
            continue;
        const ports = new Map();
        for (const p of c.Ports ?? [])
            if (p.PublicPort)
                ports.set(p.PrivatePort, p.PublicPort);
        owned.push({
            id: c.Id,
            name: (c.Names?.[0] ?? '').replace(/^\//, ''),
            job: { stack, tag, node, instance },
            specHash: l[LABEL.spec] ?? '',
            running: c.State === 'running',
            ports,
        });
    }
    return owned;
}
/**
 * Makes sure the image is on this host's daemon. Only images of the cluster
 * registry are pulled: nothing is fetched from anywhere else, so a host never
 * reaches out of the cluster for an image.
 */
export async function ensureImage(docker, image, registry) {
    try {
        await docker.getImage(image).inspect();
        return 'present';
    }
    catch {
        /* not here: pull it if the cluster registry has it */
    }
    if (!registry || !image.startsWith(`${registry}/`)) {
        throw new VikingError('VIKING_E_IMAGE_MISSING', `image ${image} is not on this host and is not in the cluster registry${registry ? ` (${registry})` : ''}; build it in the Vikingfile or load it on every host`);
    }
    const stream = await docker.pull(image, { authconfig: {} });
    await followProgress(docker, stream);
    return 'pulled';
}
function command(run) {
    if (run === undefined)
        return undefined;
    return typeof run === 'string' ? ['/bin/sh', '-c', run] : run;
}
/**
 * Creates and starts the container for a job, publishing every exposed port
 * on the host's own address with a port Docker picks. An old container of the
 * same name (a failed earlier attempt) is removed first.
 */
export async function startJob(docker, spec, host, ip, registry) {
    await ensureImage(docker, spec.image, registry);
    const hash = specHash(spec);
    const name = containerName(host, spec, hash);
    await docker.getContainer(name).remove({ force: true }).catch(() => { });
    const exposed = {};
    const bindings = {};
    for (const port of spec.expose) {
        exposed[`${port}/tcp`] = {};
        bindings[`${port}/tcp`] = [{ HostIp: ip, HostPort: '' }];
    }
    const binds = [];
    for (const path of spec.volumes) {
        const vol = volumeName(spec.stack, spec.node, path);
        await docker
            .createVolume({ Name: vol, Labels: { [LABEL.stack]: spec.stack, [LABEL.node]: spec.node } })
            .catch(() => { });
        binds.push(`${vol}:${path}`);
    }
    const env = {
        ...(spec.expose[0] !== undefined ? { PORT: String(spec.expose[0]) } : {}),
        ...spec.env,
        VIKING_STACK: spec.stack,
        VIKING_TAG: spec.tag,
        VIKING_NODE: spec.node,
        VIKING_INSTANCE: String(spec.instance),
        VIKING_HOST: host,
    };
    const cmd = command(spec.run);
    const container = await docker.createContainer({
        name,
        Image: spec.image,
        ...(cmd ? { Cmd: cmd } : {}),
        ...(spec.cwd ? { WorkingDir: spec.cwd } : {}),
        Hostname: `${spec.node}-${spec.instance}-${spec.tag}`,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ExposedPorts: exposed,
        Labels: {
            [LABEL.stack]: spec.stack,
            [LABEL.tag]: spec.tag,
            [LABEL.node]: spec.node,
            [LABEL.instance]: String(spec.instance),
            [LABEL.host]: host,
            [LABEL.spec]: hash,
        },
        HostConfig: {
            PortBindings: bindings,
            Binds: binds,
            // An init as PID 1 forwards SIGTERM, so stop takes ~0.2 s instead of the grace period.
            Init: true,
            RestartPolicy: { Name: 'no' },
            ...(spec.memory > 0 ? { Memory: spec.memory } : {}),
            ...(spec.cpu > 0 ? { NanoCpus: Math.round(spec.cpu * 1e9) } : {}),
            LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
        },
    });
    await container.start();
    const info = await container.inspect();
    const ports = new Map();
    for (const [key, list] of Object.entries(info.NetworkSettings.Ports ?? {})) {
        const hostPort = list?.[0]?.HostPort;
        if (hostPort)
            ports.set(Number(key.split('/')[0]), Number(hostPort));
    }
    return { id: container.id, ports };
}
/** Stops (SIGTERM, then SIGKILL after the grace period) and removes a container. */
export async function removeContainer(docker, id, graceSeconds = 10) {
    const c = docker.getContainer(id);
    await c.stop({ t: graceSeconds }).catch(() => { });
    await c.remove({ force: true, v: false }).catch((err) => {
        if (err.statusCode !== 404)
            throw err;
    });
}
/** The last lines a container wrote, to explain why it died. */
export async function lastLogLines(docker, id, lines = 20) {
    try {
        const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false }));
        return demuxLogs(buf).split('\n').filter((l) => l.length > 0).slice(-lines);
    }
    catch {
        return [];
    }
}
/** Docker multiplexes stdout/stderr with 8-byte frame headers when there is no TTY; plain text otherwise. */
export function demuxLogs(buf) {
    const out = [];
    let i = 0;
    while (i < buf.length) {
        const stream = buf[i];
        const framed = i + 8 <= buf.length && stream !== undefined && stream <= 2 && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0;
        const size = framed ? buf.readUInt32BE(i + 4) : 0;
        if (!framed || i + 8 + size > buf.length) {
            // Not (or no longer) framed: the rest is plain text.
            out.push(buf.subarray(i).toString('utf8'));
            break;
        }
        out.push(buf.subarray(i + 8, i + 8 + size).toString('utf8'));
        i += 8 + size;
    }
    return out.join('');
}
export async function exitInfo(docker, id) {
    try {
        const info = await docker.getContainer(id).inspect();
        const s = info.State;
        return s.OOMKilled ? 'killed: out of memory' : `exited with code ${s.ExitCode}${s.Error ? ` (${s.Error})` : ''}`;
    }
    catch {
        return 'container vanished';
    }
}
//# sourceMappingURL=containers.js.map