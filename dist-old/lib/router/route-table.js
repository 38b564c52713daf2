export class RouteTable {
    exact = new Map();
    /** `*.help.example.com` stored as `help.example.com`. */
    wildcard = new Map();
    /** Every endpoint a route may send to, so unused pools can be closed. */
    endpoints = [];
    revision = '0';
    static build(snap) {
        const table = new RouteTable();
        table.revision = snap.revision;
        const byNode = new Map();
        for (const e of snap.endpoints) {
            const key = `${e.stack}/${e.node}`;
            const list = byNode.get(key);
            if (list)
                list.push(e);
            else
                byNode.set(key, [e]);
        }
        const current = new Map(snap.stacks.map((s) => [s.name, s.current]));
        const sites = new Map(snap.sites.map((s) => [`${s.stack}/${s.node}`, s]));
        const routes = new Map();
        for (const [domain, rec] of snap.domains) {
            const key = `${rec.stack}/${rec.node}`;
            let route = routes.get(key);
            if (!route) {
                if (rec.kind === 'website') {
                    route = { kind: 'website', stack: rec.stack, node: rec.node, site: sites.get(key) };
                }
                else {
                    const endpoints = pickEndpoints(byNode.get(key) ?? [], current.get(rec.stack) ?? null);
                    table.endpoints.push(...endpoints);
                    // A random start spreads the first requests after a swap over all endpoints.
                    route = { kind: 'container', stack: rec.stack, node: rec.node, endpoints, cursor: Math.floor(Math.random() * 1024) };
                }
                routes.set(key, route);
            }
            if (domain.startsWith('*.'))
                table.wildcard.set(domain.slice(2), route);
            else
                table.exact.set(domain, route);
        }
        return table;
    }
    /** Finds the route of a Host header: case-insensitive, port stripped, nearest wildcard. */
    lookup(hostHeader) {
        if (!hostHeader)
            return undefined;
        const host = normaliseHost(hostHeader);
        const exact = this.exact.get(host);
        if (exact)
            return exact;
        let dot = host.indexOf('.');
        while (dot !== -1) {
            const hit = this.wildcard.get(host.slice(dot + 1));
            if (hit)
                return hit;
            dot = host.indexOf('.', dot + 1);
        }
        return undefined;
    }
    get size() {
        return this.exact.size + this.wildcard.size;
    }
    /** Domains and where they go, for logs and tests. */
    describe() {
        const out = [];
        for (const [map, prefix] of [[this.exact, ''], [this.wildcard, '*.']]) {
            for (const [d, r] of map) {
                out.push({ domain: `${prefix}${d}`, target: `${r.stack}/${r.node}`, kind: r.kind, endpoints: r.kind === 'container' ? r.endpoints.length : r.site?.root ? 1 : 0 });
            }
        }
        return out.sort((a, b) => a.domain.localeCompare(b.domain));
    }
}
export function normaliseHost(header) {
    let host = header.trim().toLowerCase();
    if (host.startsWith('['))
        return host; // IPv6 literal: no routing by name
    const colon = host.indexOf(':');
    if (colon !== -1)
        host = host.slice(0, colon);
    return host.endsWith('.') ? host.slice(0, -1) : host;
}
/**
 * Only the release taking traffic serves, so a new release warming up beside
 * the old one gets nothing until the stack switches to it. Before the first
 * switch (or if the current tag has no endpoint left, as for a `service`
 * node started by an older release) every endpoint serves.
 */
export function pickEndpoints(all, current) {
    // One endpoint per container: the node's first exposed port is the HTTP one.
    const unique = all.filter((e) => e.primary).sort((a, b) => a.ip.localeCompare(b.ip) || a.hostPort - b.hostPort);
    const live = current ? unique.filter((e) => e.tag === current) : [];
    return live.length > 0 ? live : unique;
}
//# sourceMappingURL=route-table.js.map