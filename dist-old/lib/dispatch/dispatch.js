import { placeJobs } from '../dowding/plan.js';
import { watchPrefix } from '../store/client.js';
import { WakeLoop } from '../store/wake-loop.js';
import { LEADER_KEY, PREFIX, deployKey, fixedKey, jobPath, runKey } from '../store/keys.js';
import { readSnapshot, toPlanHosts, toPlanJob } from './snapshot.js';
import { diffDispatch } from './reconcile.js';
/** etcd refuses a transaction with more than 128 compares or 128 operations (--max-txn-ops). */
const MAX_TXN_OPS = 128;
/** Packs changes into transactions that stay under etcd's limits; the leader fence takes one compare each. */
export function batchChanges(changes, limit = MAX_TXN_OPS) {
    const batches = [];
    let current = [];
    let compares = 1;
    let ops = 0;
    for (const change of changes) {
        if (current.length > 0 && (compares + change.compares.length > limit || ops + change.ops.length > limit)) {
            batches.push(current);
            current = [];
            compares = 1;
            ops = 0;
        }
        current.push(change);
        compares += change.compares.length;
        ops += change.ops.length;
    }
    if (current.length > 0)
        batches.push(current);
    return batches;
}
export class Dispatcher {
    client;
    fence;
    options;
    watches = [];
    resync;
    /** One pass at a time; a conflict asks for another at once. */
    loop = new WakeLoop(async () => (await this.dispatchOnce()).conflicts > 0, (err) => this.options.log?.(`dispatch pass failed: ${err.message}`));
    /** Jobs no host could take in the last pass, with dowding's reasons. */
    lastUnplaced = [];
    constructor(client, fence, options = {}) {
        this.client = client;
        this.fence = fence;
        this.options = options;
    }
    start() {
        for (const prefix of [PREFIX.proc, PREFIX.run, PREFIX.host, PREFIX.fixed]) {
            this.watches.push(watchPrefix(this.client, prefix, () => this.wake()));
        }
        this.resync = setInterval(() => this.wake(), this.options.resyncMs ?? 5000);
        this.loop.start();
    }
    async stop() {
        clearInterval(this.resync);
        await Promise.all(this.watches.map((w) => w.cancel()));
        this.watches = [];
        await this.loop.stop();
    }
    /** Coalesces wake-ups: at most one pass runs, and one more follows if woken meanwhile. */
    wake() {
        this.loop.wake();
    }
    /** One full pass: snapshot, diff, plan, commit. */
    async dispatchOnce() {
        const leadership = this.fence();
        if (!leadership)
            return { placed: 0, removed: 0, moved: 0, unplaced: [], conflicts: 0 };
        const snap = await readSnapshot(this.client);
        const diff = diffDispatch(snap);
        const plan = placeJobs({ hosts: toPlanHosts(snap) }, diff.toPlace.map((s) => toPlanJob(s, snap.pins)));
        this.lastUnplaced = plan.unplaced;
        const changes = this.changes(snap, diff, plan.placements);
        let conflicts = 0;
        // Independent batches commit concurrently; each is atomic and fenced on its own.
        const results = await Promise.all(batchChanges(changes).map((batch) => this.commit(leadership, batch)));
        conflicts = results.filter((ok) => !ok).length;
        if (changes.length > 0) {
            this.options.log?.(`dispatch: placed ${plan.placements.length}, removed ${diff.toRemove.length}, moved ${diff.toMove.length}, unplaced ${plan.unplaced.length}${conflicts ? `, ${conflicts} conflicts` : ''}`);
        }
        return { placed: plan.placements.length, removed: diff.toRemove.length, moved: diff.toMove.length, unplaced: plan.unplaced, conflicts };
    }
    changes(snap, diff, placements) {
        const out = [];
        const c = this.client;
        for (const p of diff.toRemove) {
            out.push({
                compares: [[runKey(p.job), 'Mod', '==', p.modRevision]],
                ops: [c.delete().key(runKey(p.job)), c.delete().key(deployKey(p.host, p.job))],
            });
        }
        const moving = new Map(diff.toMove.map((m) => [jobPath(m.job), m]));
        const pinned = new Set();
        for (const { job, host } of placements) {
            const wanted = snap.wanted.get(job.id);
            if (!wanted)
                continue;
            const spec = wanted.spec;
            const moved = moving.get(job.id);
            const change = {
                compares: [
                    [`${PREFIX.proc}${job.id}`, 'Mod', '==', wanted.modRevision],
                    moved ? [runKey(spec), 'Mod', '==', moved.modRevision] : [runKey(spec), 'Version', '==', 0],
                ],
                ops: [c.put(runKey(spec)).value(host), c.put(deployKey(host, spec)).value('')],
            };
            if (moved)
                change.ops.push(c.delete().key(deployKey(moved.host, spec)));
            const pinKey = fixedKey(spec.stack, spec.node);
            if (spec.volumes.length > 0 && !snap.pins.has(`${spec.stack}/${spec.node}`) && !pinned.has(pinKey)) {
                pinned.add(pinKey);
                change.compares.push([pinKey, 'Version', '==', 0]);
                change.ops.push(c.put(pinKey).value(host));
            }
            out.push(change);
        }
        return out;
    }
    async commit(leadership, batch) {
        let txn = this.client.if(LEADER_KEY, 'Create', '==', leadership.createRevision);
        for (const change of batch)
            for (const [key, col, cmp, value] of change.compares)
                txn = txn.and(key, col, cmp, value);
        const res = await txn.then(...batch.flatMap((ch) => ch.ops)).commit();
        return res.succeeded;
    }
}
//# sourceMappingURL=dispatch.js.map