import { bearerOf } from '../auth/hook.js';
import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, procStackPrefix, runKey, stackKey } from '../store/keys.js';
import { localReplicaLogs } from './local-routes.js';
import { liveHosts, peerLines } from './peers.js';
import { FLAG, NAME, TAG, TAIL, flagOn, params, streamResponses } from './schemas.js';
/** Sortable form of Docker's RFC 3339 nano timestamps, whose fractions drop trailing zeros. */
export function timeKey(time) {
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(time);
    if (!m)
        return time;
    return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}`;
}
/**
 * Holds lines for a short while so the backlogs of all replicas come out in
 * time order, then passes new lines straight through.
 */
export class LogMerger {
    out;
    buffer = [];
    timer;
    constructor(out, settleMs) {
        this.out = out;
        if (settleMs !== undefined)
            this.timer = setTimeout(() => this.flush(), settleMs);
    }
    add(l) {
        if (this.buffer)
            this.buffer.push(l);
        else
            this.out(l);
    }
    flush() {
        clearTimeout(this.timer);
        if (!this.buffer)
            return;
        const lines = this.buffer.map((l, i) => ({ l, i, k: timeKey(l.time) }));
        lines.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i));
        this.buffer = null;
        for (const { l } of lines)
            this.out(l);
    }
}
/** The replicas of a node in one release: the one asked for, the current one, or the newest that has any. */
async function replicasOf(ctx, stack, node, tag) {
    const [record, proc] = await Promise.all([
        readJSON(ctx.client, stackKey(stack)),
        readPrefix(ctx.client, procStackPrefix(stack)),
    ]);
    if (!record && proc.entries.length === 0)
        throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${stack}; viking stacks lists them`);
    const byTag = new Map();
    const nodes = new Set();
    for (const e of proc.entries) {
        const job = jobFromKey(e.key, PREFIX.proc);
        if (!job)
            continue;
        nodes.add(job.node);
        if (job.node !== node)
            continue;
        byTag.set(job.tag, [...(byTag.get(job.tag) ?? []), job]);
    }
    const newest = [...byTag.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))).at(-1);
    const chosen = tag ?? (record?.current && byTag.has(record.current) ? record.current : newest);
    const jobs = chosen ? byTag.get(chosen) : undefined;
    if (!chosen || !jobs) {
        throw new VikingError('VIKING_E_NOT_FOUND', `${stack} has no replicas of ${node}${tag ? ` in ${tag}` : ''} running${nodes.size ? `; nodes with replicas: ${[...nodes].sort().join(', ')}` : ''}`);
    }
    jobs.sort((a, b) => a.instance - b.instance);
    return Promise.all(jobs.map(async (job) => ({ job, label: `${job.node}.${job.instance}`, host: (await ctx.client.get(runKey(job)).string()) ?? null })));
}
export function registerLogsRoute(app, ctx) {
    app.get('/v1/logs/:stack/:node', {
        schema: {
            params: params({ stack: NAME, node: NAME }),
            querystring: {
                type: 'object',
                additionalProperties: false,
                properties: { tag: TAG, follow: FLAG, tail: TAIL, format: { type: 'string', enum: ['text', 'ndjson'] }, timestamps: FLAG },
            },
            response: streamResponses,
        },
    }, async (req, reply) => {
        const q = req.query;
        const follow = q.follow !== undefined && flagOn(q.follow);
        const stamps = q.timestamps !== undefined && flagOn(q.timestamps);
        const tail = q.tail ?? 100;
        const replicas = await replicasOf(ctx, req.params.stack, req.params.node, q.tag);
        const hosts = await liveHosts(ctx.client);
        const token = bearerOf(req);
        const width = Math.max(...replicas.map((r) => r.label.length));
        reply.hijack();
        const raw = reply.raw;
        const ndjson = q.format === 'ndjson';
        raw.writeHead(200, { 'content-type': ndjson ? 'application/x-ndjson' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        const abort = new AbortController();
        raw.on('close', () => abort.abort());
        const merger = new LogMerger((l) => {
            if (raw.destroyed)
                return;
            if (ndjson)
                raw.write(`${JSON.stringify(l)}\n`);
            else
                raw.write(`${l.replica.padEnd(width)} | ${stamps && l.time ? `${l.time} ` : ''}${l.line}\n`);
        }, follow ? 300 : undefined);
        const note = (r, text) => merger.add({ replica: r.label, host: r.host, tag: r.job.tag, instance: r.job.instance, time: new Date().toISOString(), stream: 'stdout', line: `[viking] ${text}` });
        const line = (r) => (l) => merger.add({ ...l, replica: r.label, host: r.host, tag: r.job.tag, instance: r.job.instance });
        await Promise.all(replicas.map(async (r) => {
            const o = { follow, tail, signal: abort.signal };
            try {
                if (!r.host)
                    return note(r, 'not placed on a host yet');
                if (r.host === ctx.hostName) {
                    if (!(await localReplicaLogs(ctx, r.job, o, line(r))))
                        note(r, `no container on ${r.host} yet (starting, or removed after a failure: viking ps shows why)`);
                    return;
                }
                const host = hosts.get(r.host);
                if (!host)
                    return note(r, `host ${r.host} is down; its log cannot be read`);
                const path = `/v1/local/logs/${r.job.stack}/${r.job.tag}/${r.job.node}/${r.job.instance}?tail=${tail}${follow ? '&follow=1' : ''}`;
                await peerLines(host, path, token, abort.signal, (v) => line(r)(v));
            }
            catch (err) {
                if (!abort.signal.aborted)
                    note(r, err.message);
            }
        }));
        merger.flush();
        raw.end();
    });
}
//# sourceMappingURL=logs-route.js.map