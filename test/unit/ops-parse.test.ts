/**
 * The pure parts of viking run, exec and volumes: the command a session
 * carries, replica names, the words after `--`, volume paths and sizes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from '../../lib/api/exec-routes.js';
import { commandOf, parseReplica } from '../../lib/cli/commands/exec.js';
import { formatBytes } from '../../lib/cli/commands/volumes.js';
import { volumePathOf } from '../../lib/ops/volume-ops.js';
import { sessionQuery } from '../../lib/cli/ws-session.js';
import { VikingError } from '../../lib/errors.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof VikingError ? err.code : 'other';
  }
};

test('session commands: a non-empty JSON array of strings, nothing else', () => {
  assert.deepEqual(parseCommand('["sh","-c","echo hi"]'), ['sh', '-c', 'echo hi']);
  for (const bad of ['[]', '"sh"', '{"0":"sh"}', '[1]', '["a",null]', 'sh', '["a\\u0000b"]', `[${'"x",'.repeat(1000)}"x"]`]) {
    assert.equal(code(() => parseCommand(bad)), 'VIKING_E_BAD_REQUEST', bad.slice(0, 40));
  }
  // What the CLI sends is what the API reads back.
  const cmd = ['sh', '-c', 'echo "a b" && exit 3', 'ünï', '--flag=1'];
  assert.deepEqual(parseCommand(new URLSearchParams(sessionQuery(cmd, { tty: true, stdin: false })).get('cmd')!), cmd);
  assert.equal(new URLSearchParams(sessionQuery(cmd, { tty: true, stdin: false, detach: true })).toString().includes('stdin'), false);
});

test('replicas: NODE is replica 1, NODE.N replica N; anything else refused', () => {
  const cases: Array<[string, { node: string; instance: number } | 'bad']> = [
    ['web', { node: 'web', instance: 1 }],
    ['web.2', { node: 'web', instance: 2 }],
    ['db-main.12', { node: 'db-main', instance: 12 }],
    ['web.0', 'bad'],
    ['web.', 'bad'],
    ['Web', 'bad'],
    ['web.2.3', 'bad'],
    ['-web', 'bad'],
    ['', 'bad'],
    ['web.1234567', 'bad'],
  ];
  for (const [text, want] of cases) {
    if (want === 'bad') assert.equal(code(() => parseReplica(text)), 'VIKING_E_BAD_REQUEST', text);
    else assert.deepEqual(parseReplica(text), want, text);
  }
});

test('the command: words yargs took as positionals, then those after -- (left in _ after the command name)', () => {
  assert.deepEqual(commandOf([], ['exec', 'sh', '-c', 'echo hi'], 'x'), ['sh', '-c', 'echo hi']);
  assert.deepEqual(commandOf(['ls'], ['exec', '-la', 3], 'x'), ['ls', '-la', '3']);
  assert.equal(code(() => commandOf([], ['run'], 'x')), 'VIKING_E_BAD_REQUEST');
  assert.equal(code(() => commandOf(undefined, undefined, 'x')), 'VIKING_E_BAD_REQUEST');
});

test('volume paths: the declared one (a trailing slash allowed), else VIKING_E_NO_VOLUME naming the paths', () => {
  const spec = { stack: 's', node: 'db', volumes: ['/data', '/var/lib/x'] };
  assert.equal(volumePathOf(spec, '/data'), '/data');
  assert.equal(volumePathOf(spec, '/data/'), '/data');
  assert.equal(volumePathOf(spec, '/var/lib/x'), '/var/lib/x');
  for (const bad of ['/dat', '/data/sub', '/', '/var/lib']) assert.equal(code(() => volumePathOf(spec, bad)), 'VIKING_E_NO_VOLUME', bad);
  assert.throws(() => volumePathOf({ ...spec, volumes: [] }, '/data'), /declares no volume/);
  assert.throws(() => volumePathOf(spec, '/nope'), /its volumes: \/data, \/var\/lib\/x/);
});

test('sizes for people', () => {
  const cases: Array<[number | null, string]> = [[null, '?'], [0, '0B'], [1023, '1023B'], [1024, '1.0KiB'], [300_000, '293KiB'], [5 * 1024 ** 3, '5.0GiB']];
  for (const [n, want] of cases) assert.equal(formatBytes(n), want, String(n));
});
