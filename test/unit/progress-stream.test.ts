/**
 * A long operation's NDJSON stream (lib/api/progress.ts) that fails after it
 * started must name the failure the way the API's error handler does before a
 * stream starts: etcd without quorum (a gRPC UNAVAILABLE, every member's
 * circuit breaker open) is VIKING_E_ETCD_UNAVAILABLE, not a 500 INTERNAL.
 * Real fastify over real HTTP; the errors are the ones etcd3 and cockatiel throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { BrokenCircuitError } from 'cockatiel';
import { GRPCUnavailableError } from 'etcd3';
import { streamProgress } from '../../lib/api/progress.js';
import { VikingError } from '../../lib/errors.js';

async function streamed(fail: () => Error): Promise<Array<Record<string, unknown>>> {
  const app = Fastify({ logger: false });
  app.post('/op', async (_req, reply) => {
    await streamProgress(reply, async (emit) => {
      emit('deploy', 'web/1: starting');
      throw fail();
    }, undefined, { hostName: 'h1', etcdUrls: ['http://10.0.0.1:2379'] });
    return reply;
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const res = await fetch(`${url}/op`, { method: 'POST' });
    assert.equal(res.status, 200, 'the stream had started');
    return (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  } finally {
    await app.close();
  }
}

const cases: Array<{ name: string; fail: () => Error; code: string; status: number }> = [
  { name: 'every member\'s circuit breaker open', fail: () => new BrokenCircuitError(), code: 'VIKING_E_ETCD_UNAVAILABLE', status: 503 },
  { name: 'gRPC unavailable', fail: () => new GRPCUnavailableError('14 UNAVAILABLE: No connection established'), code: 'VIKING_E_ETCD_UNAVAILABLE', status: 503 },
  { name: 'etcd without a leader', fail: () => new Error('etcdserver: no leader'), code: 'VIKING_E_ETCD_UNAVAILABLE', status: 503 },
  { name: 'a typed viking error stays itself', fail: () => new VikingError('VIKING_E_UNHEALTHY', 'web/1 failed its health check'), code: 'VIKING_E_UNHEALTHY', status: 0 },
  { name: 'anything else is internal', fail: () => new TypeError('x is undefined'), code: 'VIKING_E_INTERNAL', status: 500 },
];

for (const c of cases) {
  test(`a stream that fails after its first line: ${c.name} -> ${c.code}`, async () => {
    const lines = await streamed(c.fail);
    assert.equal(lines[0]?.type, 'progress');
    const last = lines.at(-1)!;
    assert.equal(last.type, 'error');
    assert.equal(last.code, c.code, JSON.stringify(last));
    if (c.status) assert.equal(last.statusCode, c.status);
    if (c.code === 'VIKING_E_ETCD_UNAVAILABLE') assert.match(String(last.message), /no quorum or cannot be reached from host h1.*10\.0\.0\.1:2379/);
  });
}
