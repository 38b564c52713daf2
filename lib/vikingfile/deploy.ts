/**
 * The `deploy:` section: node name -> node, and the website nodes.
 *
 * A node is a container (the default) or, with `type: website` or a
 * `document_root`, static files served by the routers. The two kinds take
 * different keys; a container key on a website is reported as not allowed
 * there rather than as unknown, since it is a real key in the wrong place.
 * Domains are checked across all nodes: the router sends a hostname to
 * exactly one node.
 */

import { readContainer } from './container.js';
import { readDomains, type NodeContext } from './domains.js';
import { describe, show } from './describe.js';
import { asString, isNull, readKeys, wrongType } from './fields.js';
import { isValidName, nameRuleMessage } from './names.js';
import type { Pos, ProblemList } from './problems.js';
import type { NodeSpec, WebsiteNodeSpec } from './types.js';
import { checkDocumentRoot } from './values.js';
import { readHsts } from './hsts.js';
import type { YEntry, YNode } from './yaml-tree.js';

export const CONTAINER_KEYS = [
  'type', 'image', 'expose', 'volume', 'run', 'cwd', 'env', 'scale',
  'domains', 'service', 'health', 'tags', 'prefer', 'memory', 'cpu', 'hsts', 'access_log',
  // A cron job (lib/vikingfile/cron.ts).
  'schedule', 'timezone', 'concurrency',
] as const;
export const WEBSITE_KEYS = ['type', 'document_root', 'domains', 'hsts'] as const;

/** Reads `deploy:`; `missingAt` is where to report it missing (the top of the document). */
export function readDeploy(entry: YEntry | undefined, missingAt: Pos, ctx: NodeContext): NodeSpec[] {
  if (entry === undefined) {
    ctx.problems.add('missing-key', missingAt, 'missing deploy: section; add deploy: with at least one node, e.g. web: {image: viking/node}');
    return [];
  }
  const value = entry.value;
  if (value.kind !== 'map' || value.entries.length === 0) {
    if (isNull(value) || value.kind === 'map') {
      ctx.problems.add('missing-key', entry.keyPos, 'deploy: lists no node; add at least one, e.g. web: {image: viking/node}');
    } else {
      wrongType(value, 'deploy', 'a mapping of node name to node', ctx.problems);
    }
    return [];
  }
  const nodes: NodeSpec[] = [];
  for (const { key: name, keyPos, value: node } of value.entries) {
    if (!isValidName(name)) ctx.problems.add('bad-name', keyPos, nameRuleMessage('node name', name));
    const spec = readNode(name, keyPos, node, ctx);
    if (spec !== undefined) nodes.push(spec);
  }
  return nodes;
}

function readNode(name: string, keyPos: Pos, node: YNode, ctx: NodeContext): NodeSpec | undefined {
  const { problems } = ctx;
  if (isNull(node)) {
    problems.add('missing-key', keyPos, `node '${show(name)}' is empty; give it an image: (or type: website with document_root: and domains:)`);
    return undefined;
  }
  if (node.kind !== 'map') return wrongType(node, `node '${show(name)}'`, 'a mapping of settings like image:', problems);

  const typeEntry = node.entries.find((e) => e.key === 'type');
  const hasDocumentRoot = node.entries.some((e) => e.key === 'document_root');
  let website = hasDocumentRoot;
  if (typeEntry !== undefined) {
    const type = typeEntry.value.kind === 'scalar' ? typeEntry.value.value : undefined;
    if (type === 'website' || type === 'container') website = type === 'website';
    else problems.add('bad-value', typeEntry.value, `type must be 'container' (the default) or 'website', got ${describe(typeEntry.value)}`);
  }
  const where = `in node '${show(name)}'`;
  if (website) {
    const fields = readKeys(node, WEBSITE_KEYS, where, problems, (key) =>
      (CONTAINER_KEYS as readonly string[]).includes(key)
        ? `key '${show(key)}' is not allowed on a website node; a website only takes ${WEBSITE_KEYS.join(', ')}`
        : undefined,
    );
    return readWebsite(name, keyPos, fields, ctx);
  }
  const fields = readKeys(node, CONTAINER_KEYS, where, problems, (key) =>
    key === 'document_root' ? `key 'document_root' is not allowed on a container node; use type: website for static files` : undefined,
  );
  return readContainer(name, keyPos, fields, ctx);
}

function readWebsite(name: string, keyPos: Pos, fields: Map<string, YEntry>, ctx: NodeContext): WebsiteNodeSpec | undefined {
  const { problems } = ctx;
  let documentRoot: string | undefined;
  const root = fields.get('document_root');
  if (root === undefined) {
    problems.add('missing-key', keyPos, `website node '${show(name)}' needs a document_root: (a folder of the source, e.g. ./www)`);
  } else {
    const raw = asString(root.value, 'document_root', problems, true);
    if (raw !== undefined) {
      const checked = checkDocumentRoot(raw);
      if (checked.ok) documentRoot = checked.value;
      else problems.add('bad-path', root.value, checked.message);
    }
  }
  const domainsEntry = fields.get('domains');
  let domains: string[] | undefined;
  if (domainsEntry === undefined) {
    problems.add('missing-key', keyPos, `website node '${show(name)}' needs domains: (the hostnames it is served on)`);
  } else {
    domains = readDomains(domainsEntry.value, name, ctx);
    const written = domainsEntry.value;
    const none = written.kind === 'seq' ? written.items.length === 0 : isNull(written);
    if (domains !== undefined && none) {
      problems.add('bad-domain', domainsEntry.value, `website node '${show(name)}' needs at least one domain`);
    }
  }
  const hstsEntry = fields.get('hsts');
  const hsts = hstsEntry === undefined ? undefined : readHsts(hstsEntry.value, problems);
  if (documentRoot === undefined || domains === undefined) return undefined;
  return { kind: 'website', name, documentRoot, domains, ...(hsts !== undefined ? { hsts } : {}) };
}
