/**
 * The CLI's config file and argument parsing: where the API and token come
 * from (flag, environment, file, default), the file's 0600 mode, clear
 * errors for a broken file, and NODE=N / KEY=VALUE parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { configPath, maskToken, readConfig, resolveTarget, writeConfig } from '../../lib/cli/config.js';
import { parseCounts } from '../../lib/cli/commands/scale.js';
import { parseAssignments } from '../../lib/cli/commands/env.js';
import { parseToken } from '../../lib/auth/tokens.js';
import { VikingError } from '../../lib/errors.js';
const T1 = `vkt_0123456789ab_${'a'.repeat(43)}`;
const T2 = `vkt_ba9876543210_${'b'.repeat(43)}`;
test('the config path: $VIKING_CONFIG, else $XDG_CONFIG_HOME/viking, else ~/.config/viking', () => {
    assert.equal(configPath({ VIKING_CONFIG: '/x/c.json' }), '/x/c.json');
    assert.equal(configPath({ XDG_CONFIG_HOME: '/cfg' }), '/cfg/viking/config.json');
    assert.equal(configPath({}), path.join(os.homedir(), '.config', 'viking', 'config.json'));
});
test('writeConfig merges, normalises the URL and leaves the file readable only by its owner', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-cfg-'));
    try {
        const file = path.join(dir, 'deep', 'config.json');
        await writeConfig({ api: '10.0.0.1:8791/' }, file);
        await writeConfig({ token: T1 }, file);
        assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { api: 'http://10.0.0.1:8791', token: T1 });
        assert.equal((await stat(file)).mode & 0o777, 0o600);
        assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    }
    finally {
        await rm(dir, { recursive: true, force: true });
    }
});
test('flag beats environment beats config file beats default', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-cfg-'));
    try {
        const file = path.join(dir, 'config.json');
        await writeConfig({ api: 'http://file:1', token: T1 }, file);
        const env = { VIKING_CONFIG: file };
        assert.deepEqual(await resolveTarget({}, env), { api: 'http://file:1', token: T1, from: { api: 'config', token: 'config' } });
        const e = await resolveTarget({}, { ...env, VIKING_API: 'http://env:2', VIKING_TOKEN: T2 });
        assert.deepEqual([e.api, e.token, e.from.api, e.from.token], ['http://env:2', T2, 'env', 'env']);
        const f = await resolveTarget({ api: 'http://flag:3', token: 'x' }, { ...env, VIKING_API: 'http://env:2', VIKING_TOKEN: T2 });
        assert.deepEqual([f.api, f.token, f.from.api, f.from.token], ['http://flag:3', 'x', 'flag', 'flag']);
        const none = await resolveTarget({}, { VIKING_CONFIG: path.join(dir, 'missing.json') });
        assert.deepEqual(none, { api: 'http://127.0.0.1:8791', token: undefined, from: { api: 'default', token: 'none' } });
    }
    finally {
        await rm(dir, { recursive: true, force: true });
    }
});
test('a broken config file is VIKING_E_CONFIG_INVALID naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'viking-cfg-'));
    try {
        const file = path.join(dir, 'config.json');
        for (const body of ['{nope', '[]', '{"api": 3}']) {
            await writeFile(file, body);
            await assert.rejects(readConfig(file), (e) => e.code === 'VIKING_E_CONFIG_INVALID' && e.message.includes(file));
        }
    }
    finally {
        await rm(dir, { recursive: true, force: true });
    }
});
test('tokens are masked for display and parsed strictly', () => {
    assert.equal(maskToken(T1), 'vkt_0123456789ab_…');
    assert.equal(maskToken(undefined), '(none)');
    assert.deepEqual(parseToken(T1), { id: '0123456789ab', secret: 'a'.repeat(43) });
    for (const bad of ['', 'vkt_0123456789ab', `vkt_0123456789AB_${'a'.repeat(43)}`, `vkt_0123456789ab_${'a'.repeat(42)}`, `xx_0123456789ab_${'a'.repeat(43)}`]) {
        assert.equal(parseToken(bad), undefined, bad);
    }
});
test('NODE=N and KEY=VALUE arguments', () => {
    assert.deepEqual(parseCounts(['web=3', 'worker=0']), { web: 3, worker: 0 });
    for (const bad of [['web'], ['web=-1'], ['=3'], ['web=x'], []])
        assert.throws(() => parseCounts(bad), /VIKING_E|NODE=N|name at least/);
    assert.throws(() => parseCounts(['Web=2']), (e) => e.code === 'VIKING_E_INVALID_NAME');
    assert.deepEqual(parseAssignments(['A=1', 'URL=http://x/?a=b', 'EMPTY=']), { A: '1', URL: 'http://x/?a=b', EMPTY: '' });
    assert.throws(() => parseAssignments(['=x']), (e) => e.code === 'VIKING_E_BAD_REQUEST');
});
//# sourceMappingURL=cli-config.test.js.map