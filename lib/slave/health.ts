/**
 * Health checks of a freshly started container, through the port Docker
 * published on the host's address (never the container's bridge address).
 *
 * Docker's userland proxy accepts a connection on the published port even
 * when nothing listens inside the container, then closes it. So a plain TCP
 * check counts as healthy only a connection that is still open (or has
 * spoken) after a short wait. An HTTP check wants a 2xx or 3xx answer, as
 * Kubernetes does: a 404 on the health path is a misconfiguration, not health.
 */
import net from 'node:net';
import http from 'node:http';

export interface HealthTarget {
  ip: string;
  port: number;
  /** HTTP path to GET; absent: TCP check. */
  path?: string;
}

const PROBE_TIMEOUT_MS = 2000;
const SETTLE_MS = 150;
/** How long after the start probes stay at most 200 ms apart. */
const FAST_PROBE_MS = 5000;

/** One TCP probe: true if the peer accepted and did not hang up at once. */
export function probeTcp(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port });
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    socket.on('connect', () => setTimeout(() => done(true), SETTLE_MS));
    socket.on('data', () => done(true));
    socket.on('end', () => done(false));
    socket.on('close', () => done(false));
    socket.on('error', () => done(false));
  });
}

/** One HTTP probe: the status code, or the error's message. */
export function probeHttp(ip: string, port: number, path: string): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path, timeout: PROBE_TIMEOUT_MS, agent: false, headers: { 'user-agent': 'viking-health' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ ok: false, detail: err.message }));
  });
}

export interface HealthResult {
  healthy: boolean;
  detail: string;
  elapsedMs: number;
  /** The check stopped because `wanted()` said the container is no longer asked for. */
  abandoned?: boolean;
}

/**
 * Probes until healthy, the deadline passes, or `alive()` says the container
 * died. Probes back off from 50 ms to 200 ms for the first FAST_PROBE_MS,
 * then 500 ms: most apps listen within a second or two, and a replacement
 * for a lost server's replica counts every 100 ms (a 500 ms step there cost
 * up to 400 ms after the app was up); a slow starter is not probed (and its
 * container inspected) five times a second for a minute.
 * `wanted()` is asked before each probe: a job withdrawn while its new
 * container is checked (a push that died, a newer release) must not keep
 * that container until the deadline (60 s by default).
 */
export async function waitHealthy(
  target: HealthTarget,
  deadlineMs: number,
  alive: () => Promise<boolean>,
  wanted: () => boolean = () => true,
): Promise<HealthResult> {
  const start = Date.now();
  let delay = 50;
  let detail = 'no answer yet';
  for (;;) {
    if (!wanted()) return { healthy: false, abandoned: true, detail: `${detail}; the job was withdrawn`, elapsedMs: Date.now() - start };
    if (target.path !== undefined) {
      const r = await probeHttp(target.ip, target.port, target.path);
      detail = `GET ${target.path}: ${r.detail}`;
      if (r.ok) return { healthy: true, detail, elapsedMs: Date.now() - start };
    } else {
      if (await probeTcp(target.ip, target.port)) return { healthy: true, detail: 'TCP connect', elapsedMs: Date.now() - start };
      detail = `nothing accepts connections on port ${target.port}`;
    }
    if (Date.now() - start + delay > deadlineMs) return { healthy: false, detail: `${detail} after ${Math.round((Date.now() - start) / 1000)}s`, elapsedMs: Date.now() - start };
    if (!(await alive())) return { healthy: false, detail: `container exited during its health check (${detail})`, elapsedMs: Date.now() - start };
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, Date.now() - start < FAST_PROBE_MS ? 200 : 500);
  }
}
