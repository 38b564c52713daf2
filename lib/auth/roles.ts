/**
 * What a token may do: its role, the stacks it is scoped to, and its expiry.
 *
 *   admin     every permission, every stack (tokens, hosts, settings included)
 *   reader    every read: the cluster's when it holds every stack, else its stacks' only
 *   deployer  push, scale, env, rollback, rm, logs and exec (run, exec, volume
 *             backup and restore) (and reading) of its stacks only
 *
 * A stack scope is a list of patterns (`shop`, `team-*`, `*`); they are only
 * ever matched against a name, never used as a key of anything. A token
 * record made before roles existed has none of these fields and is an admin
 * with every stack, as it was.
 */
import { VikingError } from '../errors.js';
import type { TokenRecord } from '../store/records.js';

export const ROLES = ['admin', 'deployer', 'reader'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Every permission a route can need. `cluster:read` is about the whole cluster
 * (hosts, settings, metrics, every stack at once), so only a token that holds
 * every stack has it; the `stack:` ones are checked against the stack a
 * request names.
 */
export const PERMISSIONS = [
  'cluster:read',
  'stack:read',
  'stack:logs',
  'stack:push',
  'stack:scale',
  'stack:env',
  'stack:rollback',
  'stack:rm',
  'stack:exec',
  'audit:read',
  'hosts:write',
  'settings:write',
  'certs:write',
  'secrets:reveal',
  'tokens:admin',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READS: Permission[] = ['cluster:read', 'stack:read', 'stack:logs', 'audit:read'];
const DEPLOYS: Permission[] = ['stack:read', 'stack:logs', 'audit:read', 'stack:push', 'stack:scale', 'stack:env', 'stack:rollback', 'stack:rm', 'stack:exec'];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(PERMISSIONS),
  reader: new Set(READS),
  deployer: new Set(DEPLOYS),
};

/** Permissions that speak about the whole cluster: a token scoped to some stacks never has them. */
const CLUSTER_WIDE: ReadonlySet<Permission> = new Set(['cluster:read', 'hosts:write', 'settings:write', 'certs:write', 'tokens:admin']);

const STACK_PATTERN = /^(?=.{1,63}$)[a-z0-9*](?:[a-z0-9*-]*[a-z0-9*])?$/;

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** Checks stack patterns: stack-name characters plus `*`; returns them sorted and without repeats. */
export function checkStackPatterns(patterns: readonly string[]): string[] {
  if (patterns.length === 0 || patterns.length > 50) throw new VikingError('VIKING_E_BAD_REQUEST', '--stacks takes 1 to 50 stack names or patterns, comma separated');
  for (const p of patterns) {
    if (!STACK_PATTERN.test(p)) {
      throw new VikingError('VIKING_E_BAD_REQUEST', `'${String(p).slice(0, 80)}' is no stack pattern: lowercase letters, digits, dashes and * (any characters), e.g. shop or team-*`);
    }
  }
  return [...new Set(patterns)].sort();
}

/** `team-*` matches team-a and team-; `*` matches every stack. Linear time, no regular expression built from input. */
export function stackPatternMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === name;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (const mid of parts.slice(1, -1)) {
    const found = name.indexOf(mid, at);
    if (found < 0 || found + mid.length > end) return false;
    at = found + mid.length;
  }
  return true;
}

/** What a token is allowed, read from its record (old records: admin, every stack). */
export class Access {
  readonly role: Role;
  /** Stack patterns; undefined means every stack. */
  readonly stacks: readonly string[] | undefined;

  constructor(record: Pick<TokenRecord, 'role' | 'stacks'>) {
    this.role = isRole(record.role) ? record.role : record.role === undefined ? 'admin' : 'reader';
    // A scope that cannot be read holds no stack: a broken record never widens a token.
    const raw: unknown = record.stacks;
    const stacks = raw === undefined ? undefined : Array.isArray(raw) ? raw.filter((s): s is string => typeof s === 'string') : [];
    this.stacks = this.role === 'admin' || stacks === undefined || stacks.includes('*') ? undefined : stacks;
  }

  /** The token holds every stack (no scope, or `*`). */
  get allStacks(): boolean {
    return this.stacks === undefined;
  }

  /** The stack is in the token's scope. */
  covers(stack: string): boolean {
    return this.stacks === undefined || this.stacks.some((p) => stackPatternMatches(p, stack));
  }

  /** The role has the permission at all (whatever stack). */
  hasPermission(p: Permission): boolean {
    if (!ROLE_PERMISSIONS[this.role].has(p)) return false;
    return !CLUSTER_WIDE.has(p) || this.allStacks;
  }

  /** The reason the token may not do `p` (on `stack`), or undefined when it may. */
  refusal(p: Permission, stack?: string): string | undefined {
    if (!ROLE_PERMISSIONS[this.role].has(p)) return `a ${this.role} token lacks the permission ${p}`;
    if (CLUSTER_WIDE.has(p) && !this.allStacks) return `${p} is about the whole cluster; this token is scoped to the stacks ${this.stacks!.join(', ')}`;
    if (stack !== undefined && !this.covers(stack)) return `the token's ${p} does not cover stack ${stack} (its stacks: ${this.stacks!.join(', ')})`;
    return undefined;
  }
}

/** Throws VIKING_E_FORBIDDEN naming the missing permission, unless the token may. */
export function demand(access: Access, p: Permission, stack?: string): void {
  const why = access.refusal(p, stack);
  if (why) throw new VikingError('VIKING_E_FORBIDDEN', `forbidden: needs ${p}${stack ? ` on stack ${stack}` : ''}; ${why}`, { permission: p, ...(stack ? { stack } : {}) });
}

/** `30d`, `12h`, `90m`, `45s`, `2w` -> milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (!m) throw new VikingError('VIKING_E_BAD_REQUEST', `${what} '${text.slice(0, 40)}' is no duration; write a number and a unit: 45s, 90m, 12h, 30d or 2w`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new VikingError('VIKING_E_BAD_REQUEST', `${what} must be longer than 0`);
  return ms;
}
