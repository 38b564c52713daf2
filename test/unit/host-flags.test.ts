/**
 * `viking host` flags that become limits: sizes parse as the Vikingfile's
 * memory does, nonsense is refused with a message naming the flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerLimits, uploadCaps } from '../../lib/cli/commands/host.js';
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
