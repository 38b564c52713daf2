/**
 * The REASON column of `viking ps`: the job's reason, plus when a job in
 * backoff or crash-loop is tried next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reasonText } from '../../lib/cli/commands/ps.js';

const NOW = Date.parse('2026-11-30T12:00:00.000Z');
const at = (ms: number): string => new Date(NOW + ms).toISOString();

const cases: Array<[string, { reason: string | null; nextTry: string | null }, string | null]> = [
  ['running, no reason', { reason: null, nextTry: null }, null],
  ['a reason without a next try', { reason: 'exited with code 3', nextTry: null }, 'exited with code 3'],
  ['backoff: the next try in whole seconds, rounded up', { reason: 'exited with code 3', nextTry: at(11_200) }, 'exited with code 3; next try in 12s'],
  ['crash-loop at the longest backoff', { reason: 'killed: out of memory', nextTry: at(30_000) }, 'killed: out of memory; next try in 30s'],
  ['the next try is due', { reason: 'exited with code 1', nextTry: at(-500) }, 'exited with code 1; next try now'],
  ['a next try without a reason', { reason: null, nextTry: at(1000) }, 'next try in 1s'],
  ['an unreadable time is left out', { reason: 'exited with code 2', nextTry: 'soon' }, 'exited with code 2'],
];
for (const [name, row, expected] of cases) test(name, () => assert.equal(reasonText(row, NOW), expected));
