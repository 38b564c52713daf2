/**
 * The level-triggered loop shared by dispatch, the slave and the route feed:
 * wake-ups coalesce, errors retry after a pause, a pass can ask for another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WakeLoop } from '../../lib/control/wake-loop.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('wake-ups during a pass coalesce into exactly one more pass', async () => {
  let passes = 0;
  let release: () => void = () => {};
  const loop = new WakeLoop(async () => {
    passes++;
    if (passes === 1) await new Promise<void>((r) => (release = r));
  }, () => {});
  loop.start();
  await tick();
  for (let i = 0; i < 50; i++) loop.wake();
  release();
  const t0 = Date.now();
  while (passes < 2 && Date.now() - t0 < 2000) await tick(5);
  await tick(20); // room for any extra pass that should not happen
  await loop.stop();
  assert.equal(passes, 2);
});

test('nothing runs before start or after stop', async () => {
  let passes = 0;
  const loop = new WakeLoop(async () => void passes++, () => {});
  loop.wake();
  await tick();
  assert.equal(passes, 0);
  loop.start();
  await tick();
  await loop.stop();
  loop.wake();
  await tick();
  assert.equal(passes, 1);
});

test('a failed pass is reported and retried after the pause; true asks for another pass', async () => {
  const errors: string[] = [];
  let calls = 0;
  const loop = new WakeLoop(async () => {
    calls++;
    if (calls === 1) throw new Error('etcd away');
    return calls < 4; // passes 2 and 3 ask for one more
  }, (err) => errors.push(err.message), 10);
  loop.start();
  const t0 = Date.now();
  while (calls < 4 && Date.now() - t0 < 2000) await tick(5);
  await loop.stop();
  assert.deepEqual(errors, ['etcd away']);
  assert.equal(calls, 4);
});
