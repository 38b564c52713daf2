/**
 * A throwaway certificate authority made with the real openssl binary, for
 * TLS tests and the router bench: a self-signed root, optional
 * intermediates, and leaves with the DNS names a test asks for. Nothing is
 * trusted system-wide; clients get the root explicitly (`ca`, `--cacert`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Issued {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export interface TestCa extends Issued {
  dir: string;
  /** A leaf for these DNS names, signed by the root (or by `by`), valid `days` from now (OpenSSL 3.0 cannot backdate: test expiry with a later clock). */
  leaf(names: string[], o?: { by?: Issued; days?: number; cn?: string }): Promise<Issued>;
  /** An intermediate CA signed by the root. */
  intermediate(cn: string): Promise<Issued>;
  remove(): Promise<void>;
}

let serial = 0;

async function sign(dir: string, by: Issued, cn: string, ext: string, days: number): Promise<Issued> {
  const base = path.join(dir, `c${++serial}-${cn.replace(/[^a-z0-9]/gi, '_')}`);
  const keyFile = `${base}.key`;
  const certFile = `${base}.crt`;
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', `${base}.csr`, '-subj', `/CN=${cn}`]);
  await writeFile(`${base}.ext`, ext);
  await run('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', by.certFile, '-CAkey', by.keyFile, '-set_serial', String(Date.now() * 1000 + serial), '-days', String(days), '-extfile', `${base}.ext`, '-out', certFile]);
  return { certFile, keyFile, certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
}

export async function makeTestCa(cn = 'Viking Test Root'): Promise<TestCa> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-ca-'));
  const keyFile = path.join(dir, 'root.key');
  const certFile = path.join(dir, 'root.crt');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30',
    '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const root: Issued = { certFile, keyFile, certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
  return {
    ...root,
    dir,
    leaf: (names, o = {}) =>
      sign(dir, o.by ?? root, o.cn ?? names[0] ?? 'leaf', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`, o.days ?? 10),
    intermediate: (name) => sign(dir, root, name, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n', 20),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
