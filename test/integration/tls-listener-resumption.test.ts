/**
 * TLS session resumption on the router's listener (tls-listener.ts): by
 * default a client resumes its session, also on another worker's listener
 * (the workers share ticket keys); `resumption: false`, which the router
 * bench uses for its full-handshake rows, resumes nothing.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { makeTestCa, type TestCa, type Issued } from '../helpers/test-ca.js';
import { TlsListener, type TlsListenerOptions } from '../../lib/router/tls-listener.js';
import { TlsCertificates } from '../../lib/router/tls-certs.js';
import { bundleOf } from '../../lib/router/tls-feed.js';
import { checkCertificate } from '../../lib/certs/custom.js';

const NAME = 'resume.test';

/** A listener answering one fixed response per connection, recording whether each handshake resumed. */
async function listener(leaf: Issued, extra: Partial<TlsListenerOptions>): Promise<{ port: number; reused: boolean[]; close: () => Promise<void> }> {
  const certs = new TlsCertificates();
  certs.apply([bundleOf(checkCertificate(NAME, leaf.certPem, leaf.keyPem))!]);
  const reused: boolean[] = [];
  const l = new TlsListener({
    certs,
    accept: (s) => {
      reused.push(s.isSessionReused());
      s.on('end', () => s.destroy());
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
    },
    onRequest: () => {},
    handshakeTimeoutMs: 5000,
    idleMs: 5000,
    maxConnections: 100,
    ...extra,
  });
  const port = await l.listen(0, '127.0.0.1');
  return { port, reused, close: () => l.close(0) };
}

/** One request on a new connection, offering `session`; resolves with the session the server gave (the last ticket) and whether it resumed. */
function request(port: number, ca: string, session?: Buffer): Promise<{ session: Buffer | undefined; reused: boolean }> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    let reused = false;
    const s = tls.connect({ host: '127.0.0.1', port, servername: NAME, ca, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) }, () => {
      reused = s.isSessionReused();
      s.write(`GET / HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
    });
    s.on('session', (b: Buffer) => (latest = b));
    s.on('error', reject);
    s.resume();
    s.on('close', () => resolve({ session: latest, reused }));
  });
}

describe('TLS session resumption on the router listener', () => {
  let ca: TestCa;
  let leaf: Issued;
  before(async () => {
    ca = await makeTestCa('resumption test root');
    leaf = await ca.leaf([NAME]);
  });
  after(() => ca.remove());

  test('on by default: a session from one worker resumes on another with the same ticket keys', async () => {
    const ticketKeys = randomBytes(48);
    const a = await listener(leaf, { ticketKeys });
    const b = await listener(leaf, { ticketKeys });
    try {
      const first = await request(a.port, ca.certPem);
      assert.ok(first.session, 'the server sent a session ticket');
      assert.equal(first.reused, false);
      const second = await request(b.port, ca.certPem, first.session);
      assert.equal(second.reused, true, 'the client resumed on the other listener');
      assert.deepEqual([...a.reused, ...b.reused], [false, true]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('resumption: false: every handshake is a full one', async () => {
    const l = await listener(leaf, { resumption: false });
    try {
      const first = await request(l.port, ca.certPem);
      // TLS 1.3 still sends (stateful) tickets without SSL_OP_NO_TICKET's stateless ones; this server keeps no
      // session cache to look them up in. The client offers one back, and it is refused.
      assert.ok(first.session, 'the client got a session to offer');
      const second = await request(l.port, ca.certPem, first.session);
      assert.equal(second.reused, false);
      assert.deepEqual(l.reused, [false, false]);
    } finally {
      await l.close();
    }
  });
});
