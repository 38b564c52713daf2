/**
 * Domains of nodes, checked across the whole file.
 *
 * The routers send each hostname to exactly one node, so a domain may be
 * claimed once; the second claim is reported where it is written, naming
 * the node and line of the first.
 */

import { show } from './describe.js';
import { readStrings } from './fields.js';
import type { Pos, ProblemList } from './problems.js';
import { checkDomain } from './values.js';
import type { YNode } from './yaml-tree.js';

/** What the checks of one node need from the rest of the file. */
export interface NodeContext {
  stack: string;
  /** Image names of `build:`, for `image: viking:<this stack>/<image>`. */
  buildNames: ReadonlySet<string>;
  problems: ProblemList;
  /** Domains taken so far, by the node that took them. */
  domains: Map<string, { node: string; at: Pos }>;
  /** Most replicas a node may ask for (the cluster's max-scale setting). */
  maxScale: number;
}

/**
 * Domains one stack may claim: they are claimed with the release switch in
 * one etcd transaction, which etcd caps at 128 operations.
 */
export const MAX_DOMAINS_PER_STACK = 100;

/** `domains:` of any node: valid hostnames, lowercased, each used by one node only. */
export function readDomains(value: YNode, node: string, ctx: NodeContext): string[] | undefined {
  const { problems } = ctx;
  return readStrings(value, 'domains', problems, (raw, at) => {
    if (ctx.domains.size >= MAX_DOMAINS_PER_STACK) {
      problems.add('bad-domain', at, `a stack claims at most ${MAX_DOMAINS_PER_STACK} domains; use a wildcard such as '*.example.com' for many names`);
      return undefined;
    }
    const checked = checkDomain(raw);
    if (!checked.ok) {
      problems.add('bad-domain', at, checked.message);
      return undefined;
    }
    const domain = checked.value;
    const taken = ctx.domains.get(domain);
    if (taken !== undefined) {
      problems.add(
        'bad-domain',
        at,
        taken.node === node
          ? `domain '${show(domain)}' is listed twice in node '${show(node)}'`
          : `domain '${show(domain)}' is already used by node '${show(taken.node)}' (line ${taken.at.line}); a domain routes to one node only`,
      );
      return undefined;
    }
    ctx.domains.set(domain, { node, at: { line: at.line, column: at.column } });
    return domain;
  });
}
