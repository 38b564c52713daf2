/**
 * Domains of nodes, checked across the whole file.
 *
 * The routers send each hostname to exactly one node, so a domain may be
 * claimed once; the second claim is reported where it is written, naming
 * the node and line of the first.
 */
import { show } from './describe.js';
import { readStrings } from './fields.js';
import { checkDomain } from './values.js';
/** `domains:` of any node: valid hostnames, lowercased, each used by one node only. */
export function readDomains(value, node, ctx) {
    const { problems } = ctx;
    return readStrings(value, 'domains', problems, (raw, at) => {
        const checked = checkDomain(raw);
        if (!checked.ok) {
            problems.add('bad-domain', at, checked.message);
            return undefined;
        }
        const domain = checked.value;
        const taken = ctx.domains.get(domain);
        if (taken !== undefined) {
            problems.add('bad-domain', at, taken.node === node
                ? `domain '${show(domain)}' is listed twice in node '${show(node)}'`
                : `domain '${show(domain)}' is already used by node '${show(taken.node)}' (line ${taken.at.line}); a domain routes to one node only`);
            return undefined;
        }
        ctx.domains.set(domain, { node, at: { line: at.line, column: at.column } });
        return domain;
    });
}
//# sourceMappingURL=domains.js.map