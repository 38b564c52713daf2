/**
 * `viking hosts rebalance` ends with an aligned table of the moves: a column
 * per field, times in seconds, a planned move without a time, a skipped one
 * with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movesTable } from '../../lib/cli/commands/hosts.js';
import type { MoveResult } from '../../lib/host-admin/rebalance.js';

const move = (over: Partial<MoveResult>): MoveResult => ({
  node: 'shop/web', replica: 'v3/1', job: 'shop/v3/web/1', from: 'h1', to: 'h2', reason: 'spread', status: 'moved', ms: 2400, ...over,
});

test('moves print as an aligned table', () => {
  const text = movesTable([
    move({}),
    move({ node: 'shop/api', replica: 'v12/10', to: 'h3-long-name', reason: 'load', status: 'skipped', detail: 'VIKING_E_MOVE_CONFLICT: it is no longer on h1', ms: 120 }),
    move({ status: 'planned', ms: 0 }),
  ]);
  const lines = text.split('\n');
  assert.deepEqual(lines, [
    'NODE      REPLICA  FROM  TO            WHY     TIME  RESULT',
    'shop/web  v3/1     h1    h2            spread  2.4s  moved',
    'shop/api  v12/10   h1    h3-long-name  load    0.1s  skipped: VIKING_E_MOVE_CONFLICT: it is no longer on h1',
    'shop/web  v3/1     h1    h2            spread  -     planned',
  ]);
});
