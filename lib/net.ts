/** Small network helpers shared by the host's parts (the router, the etcd launcher) and the tests. */
import net from 'node:net';

/** A free TCP port on an address, chosen by the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Whether something accepts a TCP connection at a URL's host and port within
 * `timeoutMs`. A dead peer on a lost server answers nothing (the timeout); a
 * live process answers at once, even when its event loop is busy (the kernel
 * accepts).
 */
export function tcpReachable(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return resolve(false);
    }
    const socket = net.connect({ host: u.hostname, port: Number(u.port) || 80 });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
