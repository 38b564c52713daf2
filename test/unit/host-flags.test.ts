/**
 * `viking host` flags that become limits: sizes parse as the Vikingfile's
 * memory does, nonsense is refused with a message naming the flag; and
 * `--no-router`, which refuses the router's own flags rather than ignore them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerLimits, uploadCaps } from '../../lib/cli/commands/host.js';
import { ROUTER_ONLY_FLAGS, runsRouter } from '../../lib/cli/commands/router-flags.js';
import type { VikingError } from '../../lib/errors.js';

const MiB = 1024 * 1024;

test('container limits: sizes and counts', () => {
  assert.deepEqual(containerLimits({}), {});
  assert.deepEqual(containerLimits({ 'default-memory': '256m', 'pids-limit': 100 }), { defaultMemory: 256 * MiB, pidsLimit: 100 });
  assert.deepEqual(containerLimits({ 'default-memory': '0', 'pids-limit': 0 }), { defaultMemory: 0, pidsLimit: 0 });
  assert.throws(() => containerLimits({ 'default-memory': '1m' }), (e: VikingError) => e.code === 'VIKING_E_BAD_REQUEST' && /--default-memory/.test(e.message));
  assert.throws(() => containerLimits({ 'pids-limit': -1 }), (e: VikingError) => /--pids-limit/.test(e.message));
});

test('upload caps: sizes and counts', () => {
  assert.deepEqual(uploadCaps({}), {});
  assert.deepEqual(uploadCaps({ 'max-upload': '1g', 'max-upload-files': 100_000 }), { maxUploadBytes: 1024 * MiB, maxUploadFiles: 100_000 });
  assert.deepEqual(uploadCaps({ 'max-upload': '1048576' }), { maxUploadBytes: MiB });
  for (const bad of ['0', 'lots', '-5m']) {
    assert.throws(() => uploadCaps({ 'max-upload': bad }), (e: VikingError) => e.code === 'VIKING_E_BAD_REQUEST' && /--max-upload/.test(e.message), bad);
  }
  for (const bad of [0, -1, 1.5]) {
    assert.throws(() => uploadCaps({ 'max-upload-files': bad }), (e: VikingError) => /--max-upload-files/.test(e.message), String(bad));
  }
});

test('--no-router: the router role, and the router flags it refuses', () => {
  const cases: Array<[Record<string, unknown>, boolean | RegExp]> = [
    [{}, true],
    [{ router: true, 'router-port': 8080, 'https-port': 0 }, true],
    [{ router: false }, false],
    // Flags of other roles, and router flags left unset, are fine.
    [{ router: false, 'api-port': 8791, master: true, 'router-port': undefined }, false],
    [{ router: false, 'router-port': 0 }, /--router-port cannot apply: drop it, or drop --no-router/],
    [{ router: false, 'https-port': 0, 'router-workers': 2 }, /--https-port, --router-workers cannot apply: drop them/],
    ...ROUTER_ONLY_FLAGS.map((f): [Record<string, unknown>, RegExp] => [{ router: false, [f]: 1 }, new RegExp(`--${f} `)]),
  ];
  for (const [args, want] of cases) {
    if (typeof want === 'boolean') assert.equal(runsRouter(args), want, JSON.stringify(args));
    else assert.throws(() => runsRouter(args), (e: VikingError) => e.code === 'VIKING_E_FLAG_CONFLICT' && e.statusCode === 400 && want.test(e.message), JSON.stringify(args));
  }
  // viking host adds its router-only flags to the list.
  assert.throws(() => runsRouter({ router: false, listen: '0.0.0.0' }, [...ROUTER_ONLY_FLAGS, 'listen']), /--listen/);
  assert.equal(runsRouter({ router: false, listen: '0.0.0.0' }), false);
});
