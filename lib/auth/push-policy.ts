/**
 * What a deployer's push may claim. Kept small on purpose:
 *
 *  - a domain another stack serves is refused to everybody (VIKING_E_DOMAIN_TAKEN,
 *    lib/rollout/domain-claims.ts), whatever the token;
 *  - a deployer may not claim a wildcard (`*.example.com`), nor a name that
 *    another stack's wildcard serves now (`shop.example.com` while another
 *    stack holds `*.example.com`), unless the token's domain scope covers it;
 *  - a token's domain scope (`--domains`) lists names and `*.name` patterns:
 *    `*.team.example.com` covers itself and every name ending in
 *    `.team.example.com`. Admins are not limited; readers cannot push at all.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { domainKey } from '../store/keys.js';
import type { DomainRecord } from '../store/records.js';
import type { Access } from './roles.js';

/** The domain is inside one of the patterns. */
export function domainInScope(patterns: readonly string[] | undefined, domain: string): boolean {
  return (patterns ?? []).some((p) => p === domain || (p.startsWith('*.') && domain.endsWith(p.slice(1))));
}

function refuse(domain: string, why: string): VikingError {
  return new VikingError(
    'VIKING_E_FORBIDDEN',
    `forbidden: needs domain ${domain} in the token's --domains; ${why}. An admin can push it, or make a deployer token with --domains ${domain}`,
    { permission: 'stack:push', domain },
  );
}

/** Throws VIKING_E_FORBIDDEN for the first domain the token may not claim for the stack. */
export async function checkPushDomains(client: Etcd3, access: Access, tokenDomains: readonly string[] | undefined, stack: string, domains: readonly string[]): Promise<void> {
  if (access.role === 'admin') return;
  for (const d of new Set(domains)) {
    if (domainInScope(tokenDomains, d)) continue;
    if (d.startsWith('*.')) throw refuse(d, 'a deployer token may not claim wildcard domains');
    const dot = d.indexOf('.');
    if (dot <= 0) continue;
    const wildcard = `*.${d.slice(dot + 1)}`;
    const text = await client.get(domainKey(wildcard)).string();
    const owner = text ? (JSON.parse(text) as DomainRecord) : undefined;
    if (owner && owner.stack !== stack) throw refuse(d, `stack ${owner.stack} serves it through ${wildcard}`);
  }
}
