export const PREFIX = {
    host: '/host/',
    stack: '/stack/',
    images: '/images/',
    proc: '/proc/',
    run: '/run/',
    deploy: '/deploy/',
    fixed: '/fixed/',
    counter: '/counter/',
    ports: '/ports/',
    domains: '/domains/',
    tokens: '/tokens/',
    drain: '/drain/',
    locks: '/locks/',
    routers: '/routers/',
};
export const LEADER_KEY = '/leader';
export const REGISTRY_KEY = '/registry';
export const hostKey = (host) => `${PREFIX.host}${host}`;
export const stackKey = (stack) => `${PREFIX.stack}${stack}`;
export const imageKey = (stack, tag, image) => `${PREFIX.images}${stack}/${tag}/${image}`;
export const domainKey = (domain) => `${PREFIX.domains}${domain}`;
export const drainKey = (host) => `${PREFIX.drain}${host}`;
/** `/routers/<host>`: the route-table revision that host's router serves (under the host's lease). */
export const routerKey = (host) => `${PREFIX.routers}${host}`;
export const fixedKey = (stack, node) => `${PREFIX.fixed}${stack}/${node}`;
export const tokenKey = (id) => `${PREFIX.tokens}${id}`;
/** Held while a push, rollback, scale, env change or removal of the stack runs. */
export const stackLockKey = (stack) => `${PREFIX.locks}${stack}`;
export const imagesStackPrefix = (stack) => `${PREFIX.images}${stack}/`;
export const fixedStackPrefix = (stack) => `${PREFIX.fixed}${stack}/`;
export const runStackPrefix = (stack) => `${PREFIX.run}${stack}/`;
export const portsStackPrefix = (stack) => `${PREFIX.ports}${stack}/`;
/** `<stack>/<tag>/<node>/<n>`: the job's path, shared by /proc, /run, /deploy. */
export const jobPath = (job) => `${job.stack}/${job.tag}/${job.node}/${job.instance}`;
export const procKey = (job) => `${PREFIX.proc}${jobPath(job)}`;
export const runKey = (job) => `${PREFIX.run}${jobPath(job)}`;
export const deployPrefix = (host) => `${PREFIX.deploy}${host}/`;
export const deployKey = (host, job) => `${deployPrefix(host)}${jobPath(job)}`;
export const counterKey = (host, job) => `${PREFIX.counter}${host}/${jobPath(job)}`;
export const procTagPrefix = (stack, tag) => `${PREFIX.proc}${stack}/${tag}/`;
export const procStackPrefix = (stack) => `${PREFIX.proc}${stack}/`;
export const portsNodePrefix = (stack, node) => `${PREFIX.ports}${stack}/${node}/`;
export function portsKey(e) {
    return `${PREFIX.ports}${e.stack}/${e.node}/${e.port}/${e.proto}/${e.ip}/${e.hostPort}/${e.tag}.${e.instance}`;
}
/** Parses `<stack>/<tag>/<node>/<n>` (the part after a family prefix). */
export function parseJobPath(path) {
    const parts = path.split('/');
    if (parts.length !== 4)
        return null;
    const [stack, tag, node, n] = parts;
    const instance = Number(n);
    if (!stack || !tag || !node || !Number.isInteger(instance) || instance < 1)
        return null;
    return { stack, tag, node, instance };
}
/** The job of a key under /proc/ or /run/. */
export function jobFromKey(key, prefix) {
    return key.startsWith(prefix) ? parseJobPath(key.slice(prefix.length)) : null;
}
/** The host and job of a `/deploy/<host>/<job>` key. */
export function parseDeployKey(key) {
    if (!key.startsWith(PREFIX.deploy))
        return null;
    const rest = key.slice(PREFIX.deploy.length);
    const slash = rest.indexOf('/');
    if (slash <= 0)
        return null;
    const job = parseJobPath(rest.slice(slash + 1));
    return job ? { host: rest.slice(0, slash), job } : null;
}
export const sameJob = (a, b) => a.stack === b.stack && a.tag === b.tag && a.node === b.node && a.instance === b.instance;
//# sourceMappingURL=keys.js.map