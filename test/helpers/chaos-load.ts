/**
 * Client load through one router: keep-alive GETs and POSTs, each with a
 * unique x-request-id, in a few loops. A request fails when it gets anything
 * but a 200 from the app, an error or no answer in 10 s. GETs are idempotent
 * (the router may retry them on another replica); POSTs are not, and the
 * collector (chaos-collector.ts) counts how often each reached an app.
 */
import http from 'node:http';

export interface LoadFailure {
  method: 'GET' | 'POST';
  id: string;
  /** ms since the load started. */
  at: number;
  why: string;
}

export interface Load {
  readonly startedAt: number;
  ok: { GET: number; POST: number };
  failures: LoadFailure[];
  /** POST ids that were answered 200. */
  postedOk: Set<string>;
  /** Failures between two wall-clock times (Date.now()). */
  failuresBetween(from: number, to: number): LoadFailure[];
  stop(): Promise<void>;
}

export function startLoad(o: { ip: string; port: number; domain: string; getLoops?: number; postLoops?: number; prefix?: string }): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const startedAt = Date.now();
  let running = true;
  let seq = 0;
  const prefix = o.prefix ?? `L${startedAt.toString(36)}`;
  const load: Load = {
    startedAt,
    ok: { GET: 0, POST: 0 },
    failures: [],
    postedOk: new Set(),
    failuresBetween: (from, to) => load.failures.filter((f) => f.at + startedAt >= from && f.at + startedAt <= to),
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };

  const one = (method: 'GET' | 'POST'): Promise<void> => new Promise((resolve) => {
    const id = `${prefix}-${method[0]}${++seq}`;
    const body = method === 'POST' ? JSON.stringify({ id }) : undefined;
    const t0 = Date.now();
    const fail = (why: string): void => {
      load.failures.push({ method, id, at: t0 - startedAt, why });
      resolve();
    };
    const headers: Record<string, string> = { host: o.domain, 'x-request-id': id, ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) };
    const req = http.request({ method, host: o.ip, port: o.port, path: `/?id=${id}`, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('error', (err) => fail(`response: ${err.message}`));
      res.on('end', () => {
        if (res.statusCode === 200 && text.includes(id)) {
          load.ok[method]++;
          if (method === 'POST') load.postedOk.add(id);
          resolve();
        } else fail(`HTTP ${res.statusCode}: ${text.slice(0, 160).trim()}`);
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', (err) => fail(err.message));
    req.end(body);
  });

  const loop = async (method: 'GET' | 'POST'): Promise<void> => {
    while (running) {
      await one(method);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const loops = [
    ...Array.from({ length: o.getLoops ?? 2 }, () => loop('GET')),
    ...Array.from({ length: o.postLoops ?? 1 }, () => loop('POST')),
  ];
  return load;
}
