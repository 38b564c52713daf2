/**
 * A real ACME CA for tests: Debian's `pebble` (Let's Encrypt's test server)
 * and `pebble-challtestsrv` as its DNS server, which answers every name with
 * 127.0.0.1 unless a test points a name elsewhere (`pointName`). Pebble
 * validates HTTP-01 for real: it resolves the name through that DNS server
 * and fetches `http://<name>:<httpPort>/.well-known/acme-challenge/<token>`,
 * so `httpPort` is the routers' port. Pebble's own HTTPS uses a throwaway
 * certificate made here with openssl; `caFile` holds it for clients
 * (NODE_EXTRA_CA_CERTS). Everything lives in a temporary folder; stop() ends
 * the two processes by PID and removes it.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { openSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../lib/net.js';
import { waitFor } from './wait.js';

export interface Pebble {
  directoryUrl: string;
  /** Pebble's HTTPS certificate (for NODE_EXTRA_CA_CERTS of the processes that talk ACME). */
  caFile: string;
  /** The root that signs the certificates pebble issues (from its management endpoint), PEM. */
  root(): Promise<string>;
  /** Makes the DNS server answer `name` with `ip` (an A record). */
  pointName(name: string, ip: string): Promise<void>;
  log(): string;
  stop(): Promise<void>;
}

export function pebbleInstalled(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv && command -v openssl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startPebble(o: { httpPort: number; validitySeconds?: number }): Promise<Pebble> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-pebble-'));
  const certFile = path.join(dir, 'pebble-cert.pem');
  const keyFile = path.join(dir, 'pebble-key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=viking-test-pebble', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  const [acmePort, mgmtPort, dnsPort, challMgmtPort, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: certFile,
      privateKey: keyFile,
      httpPort: o.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(o.validitySeconds ? { certificateValidityPeriod: o.validitySeconds } : {}),
    },
  };
  const configFile = path.join(dir, 'pebble.json');
  await writeFile(configFile, JSON.stringify(config));
  const logFile = path.join(dir, 'pebble.log');
  const out = openSync(logFile, 'a');
  const children: ChildProcess[] = [];
  const started = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess => {
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
    children.push(child);
    return child;
  };
  started('pebble-challtestsrv', [
    '-management', `127.0.0.1:${challMgmtPort}`, '-dns01', `127.0.0.1:${dnsPort}`,
    '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ]);
  // NOSLEEP: validate at once; AUTHZREUSE 0: every order (renewals too) is validated again; no nonce rejects (acme-client retries them, but they slow tests).
  started('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' });
  const { readFileSync } = await import('node:fs');
  const ca = readFileSync(certFile);
  const get = (url: string): Promise<string> =>
    new Promise((resolve, reject) => {
      https.get(url, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`))));
      }).on('error', reject);
    });
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const pebble: Pebble = {
    directoryUrl,
    caFile: certFile,
    root: () => get(`https://127.0.0.1:${mgmtPort}/roots/0`),
    pointName: (name, ip) =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: challMgmtPort, path: '/add-a', method: 'POST' }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`add-a ${name}: ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ host: `${name}.`, addresses: [ip] }));
      }),
    log: () => readFileSync(logFile, 'utf8'),
    async stop() {
      await Promise.all(
        children.map((c) => new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        })),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('pebble to serve its directory', () => get(directoryUrl).then(() => true), 20_000, 100);
  } catch (err) {
    await pebble.stop();
    throw err;
  }
  return pebble;
}
