/**
 * Where a server's etcd member listens and what it tells others, from the
 * server's address. A loopback address keeps today's one-machine shape
 * (etcd only on that address); any other address makes the member joinable:
 * clients on 127.0.0.1 and the address, peers on the address only, and the
 * address (never 127.0.0.1) advertised, since other servers dial what is
 * advertised.
 */
import net from 'node:net';

export interface EtcdUrls {
  listenClient: string[];
  advertiseClient: string;
  listenPeer: string;
  advertisePeer: string;
}

export function isLoopback(ip: string): boolean {
  if (net.isIPv4(ip)) return ip.startsWith('127.');
  return ip === '::1';
}

function hostPart(ip: string): string {
  return net.isIPv6(ip) ? `[${ip}]` : ip;
}

export function etcdUrls(ip: string, clientPort: number, peerPort: number): EtcdUrls {
  const h = hostPart(ip);
  const advertiseClient = `http://${h}:${clientPort}`;
  return {
    listenClient: isLoopback(ip) ? [advertiseClient] : [`http://127.0.0.1:${clientPort}`, advertiseClient],
    advertiseClient,
    listenPeer: `http://${h}:${peerPort}`,
    advertisePeer: `http://${h}:${peerPort}`,
  };
}

/** The host part of an `http://host:port` URL (brackets of IPv6 removed); '' when it is not a URL. */
export function urlHost(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return '';
  }
}
