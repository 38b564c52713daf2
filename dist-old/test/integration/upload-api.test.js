/**
 * Upload safety through the real API: each malicious tarball POSTed to
 * /v1/push is refused with its HTTP status and code before any build, and
 * nothing lands on disk outside the upload's own directory.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pack } from 'tar-stream';
import { startTestEtcd } from '../helpers/etcd.js';
import { docker } from '../helpers/docker.js';
import { connectEtcd } from '../../lib/store/client.js';
import { createApi } from '../../lib/api/server.js';
import { createToken } from '../../lib/auth/tokens.js';
let etcd;
let client;
let app;
let root;
let dataDir;
let token;
function tarOf(entries) {
    const p = pack();
    for (const e of entries) {
        if (e.type === 'file' || e.type === undefined)
            p.entry({ name: e.name, size: e.size }, e.content ?? '');
        else
            p.entry({ name: e.name, type: e.type, linkname: e.linkname, size: 0 });
    }
    p.finalize();
    return new Promise((resolve, reject) => {
        const chunks = [];
        p.on('data', (c) => chunks.push(c));
        p.on('end', () => resolve(Buffer.concat(chunks)));
        p.on('error', reject);
    });
}
const vikingfile = { name: 'Vikingfile', content: 'viking: { name: up }\ndeploy:\n  web: { image: viking/busybox }\n' };
before(async () => {
    etcd = await startTestEtcd();
    client = connectEtcd(etcd.url);
    root = await mkdtemp(path.join(os.tmpdir(), 'viking-upload-api-'));
    dataDir = path.join(root, 'data');
    app = createApi({ client, docker, dataDir, hostName: 'up-host', maxUploadBytes: 64 * 1024, routerPort: 0 });
    await app.ready();
    token = (await createToken(client, 'upload-test')).token;
});
after(async () => {
    await app?.close();
    client?.close();
    await etcd?.stop();
    await rm(root, { recursive: true, force: true });
});
const cases = [
    { name: '.. entry', entries: [vikingfile, { name: '../evil', content: 'x' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /climbs out/ },
    { name: 'nested .. entry', entries: [vikingfile, { name: 'a/../../evil', content: 'x' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /climbs out/ },
    { name: 'absolute path', entries: [vikingfile, { name: '/tmp/evil', content: 'x' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /absolute path/ },
    { name: 'symlink to an absolute path', entries: [vikingfile, { name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /absolute path/ },
    { name: 'symlink out of the tree', entries: [vikingfile, { name: 'up', type: 'symlink', linkname: '../../..' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /out of the upload/ },
    {
        name: 'symlink chain through an inner link',
        entries: [vikingfile, { name: 'd', type: 'directory' }, { name: 'd/b', type: 'symlink', linkname: '..' }, { name: 'a', type: 'symlink', linkname: 'd/b/..' }],
        status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /resolves out of the upload/,
    },
    { name: 'hard link', entries: [vikingfile, { name: 'hard', type: 'link', linkname: 'Vikingfile' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /only files, folders and links/ },
    { name: 'device file', entries: [vikingfile, { name: 'dev', type: 'character-device' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /character-device/ },
    { name: 'fifo', entries: [vikingfile, { name: 'pipe', type: 'fifo' }], status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /fifo/ },
    { name: 'over the size cap', entries: [vikingfile, { name: 'big.bin', content: 'x'.repeat(100 * 1024) }], status: 413, code: 'VIKING_E_UPLOAD_TOO_LARGE', message: /larger than/ },
    { name: 'not a tar at all', entries: 'garbage', status: 400, code: 'VIKING_E_UPLOAD_INVALID', message: /not a valid tar/ },
];
for (const c of cases) {
    test(`refused: ${c.name}`, async () => {
        const payload = c.entries === 'garbage' ? Buffer.from('this is not a tarball at all, just some bytes that go on and on '.repeat(20)) : await tarOf(c.entries);
        const res = await app.inject({
            method: 'POST', url: '/v1/push', payload,
            headers: { 'content-type': 'application/x-tar', authorization: `Bearer ${token}` },
        });
        assert.equal(res.statusCode, c.status, res.body);
        const body = res.json();
        assert.equal(body.code, c.code);
        assert.equal(body.statusCode, c.status);
        assert.match(body.message, c.message);
        // Nothing outside dataDir/uploads, and the refused upload's own folder is gone too.
        assert.deepEqual((await readdir(root)).sort(), ['data']);
        const uploads = await readdir(path.join(dataDir, 'uploads')).catch(() => []);
        assert.deepEqual(uploads, [], 'the partial upload is removed');
        assert.deepEqual(await client.getAll().prefix('/stack/').keys(), [], 'no release was started');
    });
}
test('without a token the push is refused before the body is read', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/push', payload: await tarOf([vikingfile]), headers: { 'content-type': 'application/x-tar' } });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'VIKING_E_UNAUTHORIZED');
});
test('a build cycle or a missing parent is refused with its line before anything is built', async () => {
    const cyclic = `viking: { name: cyc }
build:
  a: |
    FROM viking:cyc/b
  b: |
    FROM viking:cyc/a
  c: |
    FROM viking:cyc/nothere
deploy:
  web: { image: viking:cyc/a }
`;
    const res = await app.inject({
        method: 'POST', url: '/v1/push', payload: await tarOf([{ name: 'Vikingfile', content: cyclic }]),
        headers: { 'content-type': 'application/x-tar', authorization: `Bearer ${token}` },
    });
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l));
    const error = lines.find((l) => l.type === 'error');
    assert.equal(error?.code, 'VIKING_E_VIKINGFILE_INVALID', res.body);
    assert.match(error?.message ?? '', /Vikingfile:4:\d+: .*cycle/i);
    assert.match(error?.message ?? '', /Vikingfile:8:\d+: .*nothere/);
    assert.ok(!lines.some((l) => l.stage === 'build' || l.stage === 'release'), 'no release, no build step');
    assert.deepEqual(await client.getAll().prefix('/stack/').keys(), []);
    assert.deepEqual(await docker.listImages({ filters: { label: ['viking.stack=cyc'] } }), []);
});
//# sourceMappingURL=upload-api.test.js.map