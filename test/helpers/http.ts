/**
 * One HTTP GET through a viking router with a chosen Host header, the way a
 * visitor's browser would reach an app. Fresh connection each time.
 */
import http from 'node:http';

export interface RouterGet {
  port: number;
  host: string;
  path?: string;
  ip?: string;
  timeoutMs?: number;
}

export function routerGet(o: RouterGet): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: o.ip ?? '127.0.0.1', port: o.port, path: o.path ?? '/', headers: { host: o.host }, agent: false, timeout: o.timeoutMs ?? 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}
