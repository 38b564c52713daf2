/**
 * parseVikingfile on valid files: the ragnar example and every normalisation
 * (single values as lists, sizes to bytes, aliases, multi-stage builds), and
 * the file-level API around it (finding, loading, the error shape, names).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VikingError } from '../../lib/errors.js';
import {
  NAME_PATTERN,
  VikingfileError,
  findVikingfile,
  loadVikingfile,
  parseVikingfile,
  validateName,
  type ContainerNodeSpec,
  type Vikingfile,
} from '../../lib/vikingfile/index.js';

const RAGNAR_DIR = new URL('../../../vikingfiles/ragnar/', import.meta.url).pathname;

/** A container node with every default, as the parser fills them in. */
function container(name: string, fields: Partial<ContainerNodeSpec>): ContainerNodeSpec {
  return {
    kind: 'container',
    name,
    image: { kind: 'stack', stack: 'ragnar', image: 'src' },
    expose: [],
    volumes: [],
    env: {},
    scale: 1,
    domains: [],
    service: false,
    tags: [],
    prefer: [],
    memory: 0,
    cpu: 0,
    ...fields,
  };
}

const RAGNAR: Vikingfile = {
  stack: 'ragnar',
  comment: 'Ragnarr Hamster Loðbrók',
  images: [
    {
      name: 'src',
      dockerfile: 'FROM viking/node\nADD . /srv/app\nRUN cd /srv/app && npm install\n',
      from: { kind: 'external', ref: 'viking/node' },
    },
    {
      name: 'inherit',
      dockerfile: 'FROM viking:ragnar/src\nRUN echo "setting" > /etc/mysetting\n',
      from: { kind: 'stack', stack: 'ragnar', image: 'src' },
    },
  ],
  nodes: [
    container('db', { expose: [80], volumes: ['/data/db'], run: 'mon node index.js --volume=/data/db', cwd: '/srv/app/db' }),
    container('logic', { scale: 2, expose: [80], run: 'mon node index.js', cwd: '/srv/app/logic' }),
    container('website', {
      scale: 3,
      expose: [80],
      run: 'mon node index.js',
      cwd: '/srv/app/website',
      domains: ['thetracktube.com', 'www.thetracktube.com', 'tracktube.local.digger.io', 'tracktube.lan.digger.io'],
    }),
    { kind: 'website', name: 'help', documentRoot: 'help/www', domains: ['help.thetracktube.com', '*.help.thetracktube.com'] },
    container('mongo', { image: { kind: 'external', ref: 'quarry/mongo' }, service: true, expose: [27017], volumes: ['/data/db'] }),
    container('redis', { image: { kind: 'external', ref: 'quarry/redis' }, service: true, expose: [6379], volumes: ['/data/db'] }),
  ],
};

test('the ragnar example parses to the exact typed object', async () => {
  const text = await readFile(join(RAGNAR_DIR, 'Vikingfile'), 'utf8');
  assert.deepEqual(parseVikingfile(text), RAGNAR);
});

test('loadVikingfile finds and parses vikingfiles/ragnar', async () => {
  const { path, vikingfile } = await loadVikingfile(RAGNAR_DIR);
  assert.equal(path, join(RAGNAR_DIR, 'Vikingfile'));
  assert.deepEqual(vikingfile, RAGNAR);
});

/** The smallest valid file plus `lines` under one container node `web`. */
function web(...lines: string[]): ContainerNodeSpec {
  const file = parseVikingfile(['viking:', '  name: demo', 'deploy:', '  web:', '    image: viking/node', ...lines].join('\n'));
  const node = file.nodes[0];
  assert.equal(node?.kind, 'container');
  return node as ContainerNodeSpec;
}

const NORMALISED: Array<{ name: string; lines: string[]; expect: Partial<ContainerNodeSpec> }> = [
  { name: 'single port', lines: ['    expose: 8080'], expect: { expose: [8080] } },
  { name: 'single volume, trailing slash dropped', lines: ['    volume: /data/db/'], expect: { volumes: ['/data/db'] } },
  { name: 'run as exec list, numbers as written', lines: ['    run: [sleep, 10]'], expect: { run: ['sleep', '10'] } },
  { name: 'cwd normalised', lines: ['    cwd: /srv//app/./x'], expect: { cwd: '/srv/app/x' } },
  {
    name: 'env map, scalars as written',
    lines: ['    env: {NODE_ENV: production, PORT: 80, DEBUG: true, VERSION: 1.10, EMPTY: }'],
    expect: { env: { NODE_ENV: 'production', PORT: '80', DEBUG: 'true', VERSION: '1.10', EMPTY: '' } },
  },
  { name: 'env list', lines: ['    env: ["A=1", "B=x=y", "C="]'], expect: { env: { A: '1', B: 'x=y', C: '' } } },
  { name: 'scale', lines: ['    scale: 4'], expect: { scale: 4 } },
  { name: 'domains lowercased, single allowed', lines: ['    expose: 80', '    domains: WWW.Example.COM'], expect: { expose: [80], domains: ['www.example.com'] } },
  { name: 'service', lines: ['    service: true'], expect: { service: true } },
  { name: 'health path', lines: ['    expose: 80', '    health: /healthz'], expect: { expose: [80], health: { path: '/healthz' } } },
  { name: 'health map', lines: ['    expose: 80', '    health: {path: /ready}'], expect: { expose: [80], health: { path: '/ready' } } },
  { name: 'health TCP', lines: ['    expose: 80', '    health: {}'], expect: { expose: [80], health: {} } },
  { name: 'tags and prefer', lines: ['    tags: ssd', '    prefer: [fast, fast, big]'], expect: { tags: ['ssd'], prefer: ['fast', 'big'] } },
  { name: 'memory bytes', lines: ['    memory: 1048576'], expect: { memory: 1048576 } },
  { name: 'memory 256m', lines: ['    memory: 256m'], expect: { memory: 256 * 1024 * 1024 } },
  { name: 'memory 1G', lines: ['    memory: 1G'], expect: { memory: 1024 ** 3 } },
  { name: 'memory 512Ki', lines: ['    memory: 512KiB'], expect: { memory: 512 * 1024 } },
  { name: 'cpu', lines: ['    cpu: 0.5'], expect: { cpu: 0.5 } },
  { name: 'access_log on', lines: ['    access_log: true'], expect: { accessLog: true } },
  { name: 'access_log off is the default', lines: ['    access_log: false'], expect: {} },
  { name: 'explicit container type', lines: ['    type: container'], expect: {} },
];

for (const c of NORMALISED) {
  test(`container field: ${c.name}`, () => {
    assert.deepEqual(web(...c.lines), container('web', { image: { kind: 'external', ref: 'viking/node' }, ...c.expect }));
  });
}

test('document_root is normalised and implies a website', () => {
  for (const [raw, want] of [['./help/www/', 'help/www'], ['.', '.'], ['./', '.'], ['a/../b', 'b'], ['www', 'www']] as const) {
    const file = parseVikingfile(`viking: {name: demo}\ndeploy:\n  site:\n    document_root: "${raw}"\n    domains: a.example.com\n`);
    assert.deepEqual(file.nodes, [{ kind: 'website', name: 'site', documentRoot: want, domains: ['a.example.com'] }], raw);
  }
});

test('build: keeps the last FROM, resolves stage names, skips --platform', () => {
  const file = parseVikingfile(
    [
      'viking: {name: demo}',
      'build:',
      '  base: |',
      '    from --platform=linux/amd64 quarry/mongo:1.2 AS deps',
      '    RUN echo \\',
      '      FROM not-an-instruction',
      '    FROM deps',
      '  app: |',
      '    FROM viking/node AS build',
      '    FROM viking:demo/base',
      '  other: "FROM viking:elsewhere/base"',
      'deploy: {web: {image: "viking:demo/app"}}',
    ].join('\n'),
  );
  assert.deepEqual(
    file.images.map((i) => [i.name, i.from]),
    [
      ['base', { kind: 'external', ref: 'quarry/mongo:1.2' }],
      ['app', { kind: 'stack', stack: 'demo', image: 'base' }],
      ['other', { kind: 'stack', stack: 'elsewhere', image: 'base' }],
    ],
  );
  assert.deepEqual(file.nodes[0]?.kind === 'container' && file.nodes[0].image, { kind: 'stack', stack: 'demo', image: 'app' });
});

test('aliases reuse a value and << merges a mapping, keys written in place winning', () => {
  const file = parseVikingfile(
    [
      'viking: {name: demo}',
      'deploy:',
      '  a: &base',
      '    image: viking/node',
      '    expose: &ports [80]',
      '  b:',
      '    <<: *base',
      '    expose: 81',
      '    scale: 2',
      '  c: {image: quarry/redis, expose: *ports}',
    ].join('\n'),
  );
  const ref = { kind: 'external', ref: 'viking/node' } as const;
  assert.deepEqual(file.nodes, [
    container('a', { image: ref, expose: [80] }),
    container('b', { image: ref, expose: [81], scale: 2 }),
    container('c', { image: { kind: 'external', ref: 'quarry/redis' }, expose: [80] }),
  ]);
});

test('core schema: yes stays a string, explicit !!str makes a string', () => {
  const file = parseVikingfile('viking: {name: !!str 2024, comment: yes}\ndeploy: {web: {image: viking/node}}\n');
  assert.equal(file.stack, '2024');
  assert.equal(file.comment, 'yes');
});

test('a BOM and CRLF line ends are fine', () => {
  const file = parseVikingfile('\uFEFFviking:\r\n  name: demo\r\ndeploy:\r\n  web:\r\n    image: viking/node\r\n');
  assert.equal(file.stack, 'demo');
});

test('VikingfileError: code, status, file, problems, one line per problem', () => {
  let caught: unknown;
  try {
    parseVikingfile('viking: {name: demo}\ndeploy:\n  web:\n    image: viking/node\n    scale: 0\n    expose: 0\n', 'Vikingfile.yml');
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VikingfileError);
  assert.ok(caught instanceof VikingError);
  assert.equal(caught.code, 'VIKING_E_VIKINGFILE_INVALID');
  assert.equal(caught.statusCode, 400);
  assert.equal(caught.name, 'VikingfileError');
  assert.equal(caught.file, 'Vikingfile.yml');
  assert.deepEqual(caught.problems.map((p) => [p.kind, p.line, p.column]), [['bad-scale', 5, 12], ['bad-port', 6, 13]]);
  assert.deepEqual(caught.details, { problems: caught.problems });
  assert.deepEqual(caught.message.split('\n'), caught.problems.map((p) => `Vikingfile.yml:${p.line}:${p.column}: ${p.message}`));
  assert.equal(caught.toJSON().code, 'VIKING_E_VIKINGFILE_INVALID');
});

test('findVikingfile and loadVikingfile on directories', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'viking-vf-'));
  try {
    assert.equal(await findVikingfile(dir), null);
    await assert.rejects(loadVikingfile(dir), (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_VIKINGFILE_MISSING');
    await writeFile(join(dir, 'Vikingfile.yaml'), 'viking: {name: demo}\ndeploy: {web: {image: viking/node}}\n');
    assert.equal(await findVikingfile(dir), join(dir, 'Vikingfile.yaml'));
    await writeFile(join(dir, 'Vikingfile.yml'), 'viking: {name: demo}\ndeploy: {web: {image: 1}}\n');
    assert.equal(await findVikingfile(dir), join(dir, 'Vikingfile.yml'));
    await assert.rejects(loadVikingfile(dir), (e: unknown) => {
      assert.ok(e instanceof VikingfileError);
      assert.match(e.message, /^Vikingfile\.yml:2:23: image must be a string, got integer 1$/);
      return true;
    });
    await writeFile(join(dir, 'Vikingfile'), 'viking: {name: demo}\ndeploy: {web: {image: viking/node}}\n');
    const loaded = await loadVikingfile(dir);
    assert.equal(loaded.path, join(dir, 'Vikingfile'));
    assert.equal(loaded.vikingfile.stack, 'demo');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('validateName and NAME_PATTERN', () => {
  for (const ok of ['a', 'web', 'my-web', '0', 'a1-b2', 'x'.repeat(63)]) {
    assert.equal(validateName(ok, 'node name'), ok);
    assert.ok(NAME_PATTERN.test(ok));
  }
  for (const bad of ['', '-a', 'a-', 'My_Web', 'a.b', 'a b', 'x'.repeat(64), 'é']) {
    assert.throws(() => validateName(bad, 'node name'), (e: unknown) => e instanceof VikingError && e.code === 'VIKING_E_INVALID_NAME');
    assert.ok(!NAME_PATTERN.test(bad));
  }
  assert.throws(() => validateName('My_Web', 'node name'), {
    message: /^node name 'My_Web' must be lowercase letters, digits and dashes, e\.g\. 'my-web'/,
  });
});
