/**
 * The outside witness of POSTs: an HTTP server on the lab's bridge address
 * (the root namespace) to which every replica of the chaos app reports the
 * x-request-id of each POST it received, before it answers it. The count
 * per id is how often that POST reached an app: more than 1 means the
 * cluster sent a POST twice, which the router must never do.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Collector {
  /** http://ADDR:PORT/ for the app's COLLECTOR_URL. */
  url: string;
  /** Arrivals per POST id. */
  counts: Map<string, number>;
  /** Ids that arrived more than once, with their replicas. */
  twice(): { id: string; count: number; replicas: string[] }[];
  close(): Promise<void>;
}

export async function startCollector(address: string): Promise<Collector> {
  const counts = new Map<string, number>();
  const replicas = new Map<string, string[]>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      try {
        const { id, replica } = JSON.parse(body) as { id: string; replica: string };
        counts.set(id, (counts.get(id) ?? 0) + 1);
        replicas.set(id, [...(replicas.get(id) ?? []), replica]);
        res.writeHead(200).end('ok');
      } catch {
        res.writeHead(400).end('bad report');
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, address, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/`,
    counts,
    twice: () => [...counts].filter(([, n]) => n > 1).map(([id, count]) => ({ id, count, replicas: replicas.get(id) ?? [] })),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
