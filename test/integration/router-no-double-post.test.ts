/**
 * No POST is ever sent twice (issue 11, item 1), on real sockets and a real
 * process: a backend process is SIGKILLed while it holds requests, and a
 * backend refuses connections. Every request carries a unique id, and each
 * backend counts the ids it received. Idempotent bodiless requests that
 * reached the killed one are retried on the other replica and succeed; a
 * POST that reached it is answered 502 and is never sent again; a POST whose
 * connection was refused (no byte left) goes to the other replica, once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { RouterServer } from '../../lib/router/server.js';
import { freePort } from '../../lib/net.js';
import { endpointFor } from '../helpers/router-fixtures.js';
import { waitFor } from '../helpers/wait.js';

const DOMAIN = 'twice.router.test';
let router: RouterServer;
let port: number;
let healthy: http.Server;
let healthyPort: number;
/** Ids each backend received, in order. */
const seenHealthy: string[] = [];
const seenKilled: string[] = [];
let killed: ChildProcess | undefined;

/** A backend process that logs every request (synchronously, on a pipe) and never answers: killed mid-request. */
const HOLDER = `
const http = require('node:http');
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => process.stdout.write('REQ ' + req.headers['x-req-id'] + '\\n'));
}).listen(0, '127.0.0.1', function () { process.stdout.write('PORT ' + this.address().port + '\\n'); });
`;

function route(...ports: number[]): void {
  router.apply({
    revision: String(Date.now()),
    domains: [[DOMAIN, { stack: 'twice', node: 'web', kind: 'container' }]],
    stacks: [],
    endpoints: ports.map((p, i) => endpointFor('twice', 'web', 'v1', i + 1, p)),
    sites: [],
  });
}

function send(method: string, id: string, body?: string, chunked = false): Promise<number> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: DOMAIN, 'x-req-id': id };
    if (body !== undefined && !chunked) headers['content-length'] = String(Buffer.byteLength(body));
    if (chunked) headers['transfer-encoding'] = 'chunked';
    const req = http.request({ host: '127.0.0.1', port, method, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
    if (chunked && body !== undefined) {
      req.write(body.slice(0, 3));
      setTimeout(() => req.end(body.slice(3)), 10);
    } else req.end(body);
  });
}

before(async () => {
  healthy = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seenHealthy.push(String(req.headers['x-req-id']));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => healthy.listen(0, '127.0.0.1', () => r()));
  healthyPort = (healthy.address() as AddressInfo).port;
  router = new RouterServer({ upstream: { headersTimeoutMs: 20_000 } });
  port = await router.listen(0, '127.0.0.1');
});

after(async () => {
  killed?.kill('SIGKILL');
  await router.close(500);
  healthy.close();
});

const count = (list: string[], id: string): number => list.filter((x) => x === id).length;

test('a backend killed mid-request: GETs retried on the other replica, no POST sent twice', async () => {
  const child = spawn(process.execPath, ['-e', HOLDER], { stdio: ['ignore', 'pipe', 'inherit'] });
  killed = child;
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const m of out.matchAll(/^REQ (\S+)$/gm)) if (!seenKilled.includes(m[1]!)) seenKilled.push(m[1]!);
  });
  const holderPort = Number((await waitFor('the holder to listen', () => /PORT (\d+)/.exec(out)))[1]);
  route(holderPort, healthyPort);

  // Send in waves until the holder holds some GETs and some POSTs (plain and chunked).
  const answers = new Map<string, Promise<number>>();
  let n = 0;
  let last = '';
  await waitFor('the holder to hold GETs and POSTs of both framings', () => {
    for (let i = 0; i < 4; i++) {
      n++;
      answers.set(`get-${n}`, send('GET', `get-${n}`));
      answers.set(`post-${n}`, send('POST', `post-${n}`, `{"order":${n}}`));
      answers.set(`chunk-${n}`, send('POST', `chunk-${n}`, `{"order":${n}}`, true));
    }
    const held = (p: string): number => seenKilled.filter((id) => id.startsWith(p)).length;
    return held('get-') >= 1 && held('post-') >= 1 && held('chunk-') >= 1 ? true : (last = seenKilled.join(','), false);
  }, 10_000, 50).catch((err: Error) => {
    throw new Error(`${err.message}; held: ${last}`);
  });
  await waitFor('every request to reach a backend or be held', () => seenKilled.length + seenHealthy.length >= answers.size, 10_000);
  child.kill('SIGKILL');

  const status = new Map<string, number>();
  for (const [id, p] of answers) status.set(id, await p);
  for (const [id, code] of status) {
    const atKilled = count(seenKilled, id);
    const atHealthy = count(seenHealthy, id);
    if (id.startsWith('get-')) {
      assert.equal(code, 200, `${id} is retried on the live replica (held by the killed one: ${atKilled})`);
      continue;
    }
    assert.ok(atKilled + atHealthy <= 1, `${id} sent ${atKilled} time(s) to the killed backend and ${atHealthy} to the live one`);
    if (atKilled === 1) assert.equal(code, 502, `${id} reached the killed backend: 502, not replayed`);
    else assert.equal(code, 200, `${id} went to the live backend`);
  }
  const postsKilled = seenKilled.filter((id) => !id.startsWith('get-')).length;
  console.log(`# ${answers.size} requests; held by the killed backend: ${seenKilled.length} (${postsKilled} POSTs, each answered 502 and sent once)`);
});

test('a backend that refuses connections: GETs and POSTs go to the other replica, each exactly once', async () => {
  const refused = await freePort();
  route(refused, healthyPort);
  const ids: Array<[string, Promise<number>]> = [];
  for (let i = 0; i < 20; i++) {
    ids.push([`rget-${i}`, send('GET', `rget-${i}`)]);
    ids.push([`rpost-${i}`, send('POST', `rpost-${i}`, 'order=1')]);
    ids.push([`rchunk-${i}`, send('POST', `rchunk-${i}`, 'order=1', true)]);
  }
  for (const [id, p] of ids) {
    assert.equal(await p, 200, id);
    assert.equal(count(seenHealthy, id), 1, `${id} reached the live backend exactly once`);
  }
});
