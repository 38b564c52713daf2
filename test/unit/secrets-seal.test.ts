/**
 * Sealing secrets as plain data: a value opens only under its own stack,
 * name and key; a change re-seals only what changed (so nothing restarts
 * for the rest); the job hash moves when a secret does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { keyFromBytes, openSecret, sealSecret } from '../../lib/secrets/seal.js';
import { changedSecrets } from '../../lib/secrets/store.js';
import { specHash } from '../../lib/slave/containers.js';
import { VikingError } from '../../lib/errors.js';
import type { JobSpec } from '../../lib/store/records.js';

const key = keyFromBytes(randomBytes(32));
const other = keyFromBytes(randomBytes(32));

test('property: any value seals and opens back, and the sealed form holds no trace of it', () => {
  fc.assert(
    fc.property(fc.string({ minLength: 4, maxLength: 200 }), (value) => {
      const s = sealSecret(key, 'shop', 'DB_PASSWORD', value);
      assert.equal(openSecret(key, 'shop', s), value);
      assert.ok(!JSON.stringify(s).includes(value) || value.length < 8);
    }),
    { numRuns: 200 },
  );
});

test('a sealed value does not open under another stack, another name, another key, or altered', () => {
  const s = sealSecret(key, 'shop', 'TOKEN', 'hunter2-hunter2');
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      return (e as VikingError).code;
    }
    return 'opened';
  };
  assert.equal(code(() => openSecret(key, 'blog', s)), 'VIKING_E_SECRET_UNREADABLE');
  assert.equal(code(() => openSecret(key, 'shop', { ...s, name: 'OTHER' })), 'VIKING_E_SECRET_UNREADABLE');
  assert.equal(code(() => openSecret(other, 'shop', s)), 'VIKING_E_SECRETS_KEY_MISSING');
  const flipped = Buffer.from(s.data, 'base64');
  flipped[0] = flipped[0]! ^ 1;
  assert.equal(code(() => openSecret(key, 'shop', { ...s, data: flipped.toString('base64') })), 'VIKING_E_SECRET_UNREADABLE');
  assert.notEqual(sealSecret(key, 'shop', 'TOKEN', 'hunter2-hunter2').iv, s.iv, 'a fresh nonce each time');
});

test('changedSecrets re-seals only what is set, drops what is unset, keeps the rest byte for byte', () => {
  const seal = (n: string, v: string) => sealSecret(key, 'shop', n, v);
  const before = [seal('A', '1'), seal('B', '2')];
  const after = changedSecrets('shop', before, { set: { C: '3' }, unset: ['B'] }, seal);
  assert.deepEqual(after.map((s) => s.name), ['A', 'C']);
  assert.deepEqual(after[0], before[0]);
  assert.throws(() => changedSecrets('shop', [], { set: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`K${i}`, 'v'])) }, seal), /at most 100/);
});

test('specHash moves when a secret changes and stays put for specs without secrets', () => {
  const job: JobSpec = { stack: 's', tag: 'v1', node: 'n', instance: 1, image: 'i', expose: [], volumes: [], env: {}, service: false, tags: [], prefer: [], memory: 0, cpu: 0, scale: 1 };
  const plain = specHash(job);
  assert.equal(specHash({ ...job, secrets: [] }), plain);
  const a = specHash({ ...job, secrets: [sealSecret(key, 's', 'A', '1')] });
  const b = specHash({ ...job, secrets: [sealSecret(key, 's', 'A', '2')] });
  assert.notEqual(a, plain);
  assert.notEqual(a, b);
});
