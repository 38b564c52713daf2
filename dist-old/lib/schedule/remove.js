/**
 * `viking rm STACK`: the stack goes, all of it.
 *
 * In order: its domains (routers stop sending traffic at once), its jobs
 * (dispatch frees /run and /deploy, each slave drains and stops its
 * containers), then, once no container of the stack is left on any host,
 * its images, volume pins, failure counters and the stack record. Docker
 * volumes are kept: data is never deleted by a command that cannot undo it.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX, domainKey, fixedStackPrefix, imagesStackPrefix, portsStackPrefix, procStackPrefix, runStackPrefix, stackKey } from '../store/keys.js';
import { withStackLock } from './lock.js';
/** Deletes every key under a prefix, returning how many went. */
async function deletePrefix(client, prefix) {
    const res = await client.delete().prefix(prefix).exec();
    return Number(res.deleted);
}
export async function removeStack(ctx, name) {
    const emit = ctx.emit ?? (() => { });
    const exists = (await ctx.client.get(stackKey(name)).exists()) || (await ctx.client.getAll().prefix(procStackPrefix(name)).count()) > 0;
    if (!exists)
        throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${name}; viking stacks lists them`);
    return withStackLock(ctx.client, name, { what: 'rm', by: ctx.by, host: ctx.hostName }, async () => {
        const domains = await readPrefix(ctx.client, PREFIX.domains);
        const owned = domains.entries.filter((e) => e.value?.stack === name).map((e) => e.key.slice(PREFIX.domains.length));
        for (const d of owned)
            await ctx.client.delete().key(domainKey(d));
        emit('switch', owned.length ? `routes for ${owned.join(', ')} removed` : 'no domains to remove');
        const jobs = await deletePrefix(ctx.client, procStackPrefix(name));
        emit('cleanup', `${jobs} container(s) withdrawn`);
        const timeoutMs = ctx.timeoutMs ?? 60_000;
        const deadline = Date.now() + timeoutMs;
        let last = '';
        for (;;) {
            const [placed, serving, containers] = await Promise.all([
                ctx.client.getAll().prefix(runStackPrefix(name)).count(),
                ctx.client.getAll().prefix(portsStackPrefix(name)).count(),
                ctx.countContainers(name),
            ]);
            const now = `${containers} container(s) left`;
            if (now !== last && containers > 0)
                emit('cleanup', `waiting: ${now}`);
            last = now;
            if (placed === 0 && serving === 0 && containers === 0)
                break;
            if (Date.now() > deadline) {
                throw new VikingError('VIKING_E_REMOVE_TIMEOUT', `${name}: ${placed} job(s) still placed, ${serving} endpoint(s) and ${containers} container(s) left after ${Math.round(timeoutMs / 1000)}s; they are being stopped, run viking rm ${name} again to finish`);
            }
            await new Promise((r) => setTimeout(r, 250));
        }
        emit('cleanup', 'every container stopped and removed');
        let keys = 0;
        keys += await deletePrefix(ctx.client, imagesStackPrefix(name));
        keys += await deletePrefix(ctx.client, fixedStackPrefix(name));
        const counters = await ctx.client.getAll().prefix(PREFIX.counter).keys();
        for (const k of counters) {
            if (k.slice(PREFIX.counter.length).split('/')[1] === name) {
                await ctx.client.delete().key(k);
                keys++;
            }
        }
        keys += Number((await ctx.client.delete().key(stackKey(name)).exec()).deleted);
        if (ctx.dataDir)
            await rm(path.join(ctx.dataDir, 'stacks', name), { recursive: true, force: true }).catch(() => { });
        emit('done', `${name} removed: ${owned.length} domain(s), ${jobs} container(s), ${keys} key(s); its Docker volumes are kept`);
        return { stack: name, domains: owned, jobs, keys };
    });
}
//# sourceMappingURL=remove.js.map