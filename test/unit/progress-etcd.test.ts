/**
 * A long operation (push, scale, rm …) that loses etcd answers 503
 * VIKING_E_ETCD_UNAVAILABLE, not 500 VIKING_E_INTERNAL (seen in
 * test/e2e/netns-faults: `viking scale` right after a cable came back printed
 * "VIKING_E_INTERNAL: etcd did not answer within 1200 ms").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { GRPCDeadlineExceededError } from 'etcd3';
import { streamProgress } from '../../lib/api/progress.js';
import { isEtcdUnavailable } from '../../lib/store/unavailable.js';

function app(progressFirst: boolean) {
  const a = Fastify();
  let thrown: unknown;
  a.setErrorHandler((err, _req, reply) => {
    thrown = err;
    void reply.status(isEtcdUnavailable(err) ? 503 : 500).send({ unavailable: isEtcdUnavailable(err) });
  });
  a.post('/op', async (_req, reply) => {
    await streamProgress(reply, async (emit) => {
      if (progressFirst) emit('deploy', 'started');
      throw new GRPCDeadlineExceededError('etcd did not answer within 1200 ms');
    }, undefined, { hostName: 'h1' });
  });
  return { a, thrown: () => thrown };
}

test('etcd lost before the stream starts: the API error handler sees an etcd-unavailable error (503)', async () => {
  const { a, thrown } = app(false);
  const res = await a.inject({ method: 'POST', url: '/op' });
  assert.equal(res.statusCode, 503);
  assert.ok(isEtcdUnavailable(thrown()), `handed on as etcd unavailable: ${String(thrown())}`);
  await a.close();
});

test('etcd lost after the stream started: the error line says VIKING_E_ETCD_UNAVAILABLE with status 503', async () => {
  const { a } = app(true);
  const res = await a.inject({ method: 'POST', url: '/op' });
  const lines = res.body.trim().split('\n').map((l) => JSON.parse(l) as { type: string; code?: string; statusCode?: number });
  const last = lines.at(-1)!;
  assert.equal(last.type, 'error');
  assert.equal(last.code, 'VIKING_E_ETCD_UNAVAILABLE');
  assert.equal(last.statusCode, 503);
  await a.close();
});
