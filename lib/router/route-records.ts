/**
 * The records routing is built from, checked one by one before they reach
 * the route table.
 *
 * The route table of every router is rebuilt from /domains, /stack and
 * /ports as a whole. One record that throws while the table is built (a
 * field of the wrong type, a domain pointing at a website its stack does not
 * declare, a record written by an older viking) used to stop every rebuild,
 * so every router stayed on an old revision and other stacks' next releases
 * got 502s. Here each record is checked on its own: a bad one is left out,
 * with a reason naming its stack and node, and the others route as usual.
 * The router logs the reasons and `viking ps` shows them (lib/api/status.ts
 * runs the same check). Pure: no etcd, no I/O.
 */
import { hasKey, own } from '../store/dict.js';
import { NOT_JSON, type DomainRecord, type PortEndpoint, type StackRecord } from '../store/records.js';
import { isValidName } from '../vikingfile/names.js';

/** A record routing leaves out, and why. */
export interface RouteProblem {
  /** etcd key of the record. */
  key: string;
  /** Stack and node it belongs to, when the record says (or its key does). */
  stack: string | null;
  node: string | null;
  reason: string;
}

export interface CheckedRoutes {
  domains: Map<string, DomainRecord>;
  /** Stacks by name. */
  stacks: Map<string, StackRecord>;
  endpoints: PortEndpoint[];
  problems: RouteProblem[];
}

export interface RawEntry {
  key: string;
  /** Parsed JSON, or undefined when the value was empty or not JSON. */
  value: unknown;
}

/** The stack (and node) a key names: `/stack/<s>`, `/ports/<s>/<node>/...`; null for /domains keys. */
function namesOfKey(key: string): { stack: string | null; node: string | null } {
  const parts = key.split('/');
  if (parts[1] === 'stack') return { stack: nameOrNull(parts[2]), node: null };
  if (parts[1] === 'ports') return { stack: nameOrNull(parts[2]), node: nameOrNull(parts[3]) };
  return { stack: null, node: null };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringMap = (v: unknown, item: (x: unknown) => boolean): boolean => isObject(v) && Object.values(v).every(item);
const nameOrNull = (v: unknown): string | null => (typeof v === 'string' && isValidName(v) ? v : null);

/** Why a /stack record cannot be routed, or null when it can. */
function stackProblem(v: unknown): string | null {
  if (!isObject(v)) return 'the stack record is not a JSON object';
  if (!isValidName(v.name)) return 'the stack record has no valid name';
  if (v.current != null && typeof v.current !== 'string') return 'its current release is neither a tag nor null';
  if (!Array.isArray(v.releases) || !v.releases.every(isObject)) return 'its release list is malformed';
  if (v.websites !== undefined && !isStringMap(v.websites, (x) => typeof x === 'string')) return 'its websites table is malformed';
  if (v.domains !== undefined && !isStringMap(v.domains, (x) => Array.isArray(x))) return 'its domains table is malformed';
  for (const r of v.releases) {
    if (typeof r.tag !== 'string') return 'a release has no tag';
    if (r.tag === v.current && (typeof r.source !== 'string' || typeof r.builtOn !== 'string')) return `release ${r.tag} does not say where its source is`;
  }
  return null;
}

function domainProblem(domain: string, v: unknown): string | null {
  if (!isObject(v)) return 'the domain record is not a JSON object';
  if (!isValidName(v.stack) || !isValidName(v.node)) return `domain ${domain} names no valid stack and node`;
  if (v.kind !== 'container' && v.kind !== 'website') return `domain ${domain} has an unknown kind`;
  if (domain === '' || domain.length > 253 || /[^a-z0-9.*-]/.test(domain)) return `domain '${domain}' is not a host name`;
  return null;
}

function endpointProblem(v: unknown): string | null {
  if (!isObject(v)) return 'the endpoint record is not a JSON object';
  if (!isValidName(v.stack) || !isValidName(v.node)) return 'the endpoint names no valid stack and node';
  if (typeof v.tag !== 'string' || typeof v.ip !== 'string' || typeof v.host !== 'string' || typeof v.container !== 'string') return 'the endpoint lacks its tag, host, address or container';
  for (const f of ['port', 'hostPort'] as const) {
    const n = v[f];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) return `the endpoint's ${f} is not a port number`;
  }
  if (typeof v.instance !== 'number' || !Number.isInteger(v.instance) || v.instance < 1) return 'the endpoint has no instance number';
  if (typeof v.primary !== 'boolean') return 'the endpoint does not say whether it is the primary port';
  return null;
}

/**
 * Keeps the records that can be routed and says why each other one is left
 * out. A domain pointing at a website node is routed only if the stack
 * declares that website; a domain of a stack left out is left out too.
 */
export function checkRouteRecords(domains: RawEntry[], stacks: RawEntry[], ports: RawEntry[], prefixes: { domains: string }): CheckedRoutes {
  const problems: RouteProblem[] = [];
  // Values that are not JSON at all: reported, then treated as absent.
  const parsed = (list: RawEntry[]): RawEntry[] =>
    list.filter((e) => {
      if (e.value !== NOT_JSON) return true;
      problems.push({ key: e.key, ...namesOfKey(e.key), reason: 'the record is not JSON' });
      return false;
    });
  domains = parsed(domains);
  stacks = parsed(stacks);
  ports = parsed(ports);
  const stackMap = new Map<string, StackRecord>();
  const badStacks = new Set<string>();
  for (const e of stacks) {
    const why = stackProblem(e.value);
    const name = nameOrNull(isObject(e.value) ? e.value.name : null) ?? nameOrNull(e.key.slice(e.key.lastIndexOf('/') + 1));
    if (why) {
      problems.push({ key: e.key, stack: name, node: null, reason: why });
      if (name) badStacks.add(name);
      continue;
    }
    const rec = e.value as StackRecord;
    stackMap.set(rec.name, rec);
  }
  const domainMap = new Map<string, DomainRecord>();
  for (const e of domains) {
    if (e.value === undefined) continue; // '' is a deleted claim
    const domain = e.key.slice(prefixes.domains.length);
    const v = e.value;
    const stack = isObject(v) ? nameOrNull(v.stack) : null;
    const node = isObject(v) ? nameOrNull(v.node) : null;
    let why = domainProblem(domain, v);
    if (!why && stack && badStacks.has(stack)) why = `domain ${domain}: the record of stack ${stack} is malformed`;
    if (!why && (v as unknown as DomainRecord).kind === 'website') {
      const rec = stack ? stackMap.get(stack) : undefined;
      if (rec && node && !hasKey(rec.websites, node)) why = `domain ${domain} points at website ${stack}/${node}, which ${stack} does not declare as a website`;
      else if (rec && node && typeof own(rec.websites, node) !== 'string') why = `website ${stack}/${node} has no document root`;
    }
    if (why) {
      problems.push({ key: e.key, stack, node, reason: why });
      continue;
    }
    domainMap.set(domain, v as unknown as DomainRecord);
  }
  const endpoints: PortEndpoint[] = [];
  for (const e of ports) {
    if (e.value === undefined) continue;
    const why = endpointProblem(e.value);
    if (why) {
      const v = isObject(e.value) ? e.value : {};
      problems.push({ key: e.key, stack: nameOrNull(v.stack), node: nameOrNull(v.node), reason: why });
      continue;
    }
    endpoints.push(e.value as PortEndpoint);
  }
  return { domains: domainMap, stacks: stackMap, endpoints, problems };
}

/** One line per problem, for logs and `viking ps`. */
export function describeProblem(p: RouteProblem): string {
  return `routing: ${p.reason} (${p.key} left out)`;
}
