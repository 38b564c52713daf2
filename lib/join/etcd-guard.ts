/**
 * Containers must not reach etcd. Once a server's etcd listens on its real
 * address, any pushed app could dial that address through its bridge's
 * gateway and, etcd having no authentication, rewrite /deploy or read the
 * token hashes. So while `viking up` runs on a routable address, as root
 * with iptables, it rejects packets that arrive from Docker bridges
 * (docker0, br-*) for the etcd client and peer ports (and the registry's on
 * the first server):
 *
 *   INPUT       -i docker0|br-+ -p tcp --dports P -j REJECT     this server's own etcd
 *   DOCKER-USER -i docker0|br-+ -d <other member> --dports P -j REJECT
 *               the other servers' etcd, reached through this server's NAT
 *
 * Every rule carries the comment `viking-etcd-guard`, so start replaces
 * exactly these rules and stop removes them, and nothing else is touched.
 * A loopback etcd needs none: containers cannot reach the host's 127.0.0.0/8.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const GUARD_COMMENT = 'viking-etcd-guard';
const BRIDGES = ['docker0', 'br-+'];

export interface GuardSpec {
  /** Ports of this server to close to containers (etcd client, peer, registry). */
  localPorts: number[];
  /** Other servers' etcd: address and ports, closed to containers in forwarding. */
  remote: Array<{ ip: string; ports: number[] }>;
}

/** Pure: the iptables rules (chain, then match and target words) of a spec. */
export function guardRules(spec: GuardSpec, forwardChain = 'DOCKER-USER'): Array<{ chain: string; rule: string[] }> {
  const tail = (ports: number[]): string[] => ['-p', 'tcp', '-m', 'multiport', '--dports', [...new Set(ports)].sort((a, b) => a - b).join(','), '-m', 'comment', '--comment', GUARD_COMMENT, '-j', 'REJECT', '--reject-with', 'tcp-reset'];
  const out: Array<{ chain: string; rule: string[] }> = [];
  for (const bridge of BRIDGES) {
    if (spec.localPorts.length) out.push({ chain: 'INPUT', rule: ['-i', bridge, ...tail(spec.localPorts)] });
    for (const r of spec.remote) if (r.ports.length) out.push({ chain: forwardChain, rule: ['-i', bridge, '-d', `${r.ip}/32`, ...tail(r.ports)] });
  }
  return out;
}

async function iptables(args: string[]): Promise<string> {
  return (await run('iptables', ['-w', '5', ...args])).stdout;
}

/** Whether this process can change iptables (root, binary present). */
export async function canGuard(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  return iptables(['-S', 'INPUT']).then(() => true, () => false);
}

/** Deletes every rule tagged `viking-etcd-guard` from INPUT, DOCKER-USER and FORWARD. */
export async function removeGuard(): Promise<number> {
  let removed = 0;
  for (const chain of ['INPUT', 'DOCKER-USER', 'FORWARD']) {
    const listing = await iptables(['-S', chain]).catch(() => '');
    for (const line of listing.split('\n')) {
      if (!line.startsWith(`-A ${chain} `) || !line.includes(GUARD_COMMENT)) continue;
      // `-S` prints a rule the way it was added; `-D` takes the same words.
      const words = line.slice(3).match(/"[^"]*"|\S+/g)?.map((w) => w.replace(/^"|"$/g, '')) ?? [];
      await iptables(['-D', ...words]).then(() => removed++, () => {});
    }
  }
  return removed;
}

/** Replaces the guard rules with the ones of `spec`; returns how many it inserted. */
export async function installGuard(spec: GuardSpec): Promise<number> {
  await removeGuard();
  const forward = (await iptables(['-S', 'DOCKER-USER']).then(() => true, () => false)) ? 'DOCKER-USER' : 'FORWARD';
  const rules = guardRules(spec, forward);
  for (const r of rules) await iptables(['-I', r.chain, '1', ...r.rule]);
  return rules.length;
}
