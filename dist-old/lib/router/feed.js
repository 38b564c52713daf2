import { WakeLoop } from '../store/wake-loop.js';
import { readPrefix, watchPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { SiteCache } from './site-cache.js';
import { wantedSites } from './snapshot.js';
export class RouteFeed {
    o;
    watches = [];
    sites;
    resync;
    stopped = true;
    loop = new WakeLoop(async () => {
        const snap = await this.read();
        if (this.stopped)
            return;
        this.latest = snap;
        this.o.onSnapshot(snap);
    }, (err) => this.o.log?.(`router: reading routes failed: ${err.message}`));
    latest;
    constructor(o) {
        this.o = o;
        this.sites = new SiteCache({
            client: o.client,
            hostName: o.hostName,
            dataDir: o.dataDir,
            ...(o.log ? { log: o.log } : {}),
            onChange: () => this.wake(),
        });
    }
    start() {
        this.stopped = false;
        for (const prefix of [PREFIX.domains, PREFIX.stack, PREFIX.ports]) {
            this.watches.push(watchPrefix(this.o.client, prefix, () => this.wake()));
        }
        this.resync = setInterval(() => this.wake(), this.o.resyncMs ?? 10_000);
        this.loop.start();
    }
    async stop() {
        this.stopped = true;
        clearInterval(this.resync);
        this.sites.stop();
        await Promise.all(this.watches.map((w) => w.cancel()));
        this.watches = [];
        await this.loop.stop();
    }
    /** Coalesces wake-ups: one rebuild at a time, and one more if woken meanwhile. */
    wake() {
        this.loop.wake();
    }
    /** Reads the three prefixes at one revision. */
    async read() {
        const domains = await readPrefix(this.o.client, PREFIX.domains);
        const [stacks, ports] = await Promise.all([
            readPrefix(this.o.client, PREFIX.stack, domains.revision),
            readPrefix(this.o.client, PREFIX.ports, domains.revision),
        ]);
        const domainMap = new Map();
        for (const e of domains.entries)
            if (e.value)
                domainMap.set(e.key.slice(PREFIX.domains.length), e.value);
        const stackMap = new Map();
        for (const e of stacks.entries)
            if (e.value)
                stackMap.set(e.value.name, e.value);
        return {
            revision: domains.revision,
            domains: [...domainMap],
            stacks: [...stackMap.values()].map((s) => ({ name: s.name, current: s.current })),
            endpoints: ports.entries.map((e) => e.value).filter((v) => v !== undefined),
            sites: wantedSites(domainMap, stackMap).map((w) => this.sites.resolve(w)),
        };
    }
}
//# sourceMappingURL=feed.js.map