export const emptySnapshot = () => ({ revision: '0', domains: [], stacks: [], endpoints: [], sites: [] });
/** The websites the domains point at, each at its stack's current release. */
export function wantedSites(domains, stacks) {
    const out = new Map();
    for (const rec of domains.values()) {
        if (rec.kind !== 'website')
            continue;
        const key = `${rec.stack}/${rec.node}`;
        if (out.has(key))
            continue;
        const stack = stacks.get(rec.stack);
        const documentRoot = stack?.websites[rec.node];
        const release = stack?.current ? stack.releases.find((r) => r.tag === stack.current) : undefined;
        if (!stack || documentRoot === undefined || !release)
            continue;
        out.set(key, { stack: rec.stack, node: rec.node, tag: release.tag, documentRoot, source: release.source, builtOn: release.builtOn });
    }
    return [...out.values()];
}
//# sourceMappingURL=snapshot.js.map