/**
 * Every problem class of parseVikingfile: kind, exact line and column, and
 * a message that says how to fix it. Each case lists ALL the problems the
 * file must produce, in order, so a stray extra problem fails too.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VikingfileError, parseVikingfile, type VikingfileProblem } from '../../lib/vikingfile/index.js';

/** [kind, line, column, substring or pattern of the message]. */
type Expected = [string, number, number, string | RegExp];

function problemsOf(text: string): VikingfileProblem[] {
  try {
    parseVikingfile(text);
  } catch (e) {
    assert.ok(e instanceof VikingfileError, `expected a VikingfileError, got ${String(e)}`);
    return e.problems;
  }
  return assert.fail('expected the file to be rejected');
}

function check(lines: string[], expected: Expected[]): void {
  const problems = problemsOf(lines.join('\n'));
  const got = problems.map((p) => `${p.kind} ${p.line}:${p.column} ${p.message}`).join('\n');
  assert.equal(problems.length, expected.length, `problems:\n${got}`);
  expected.forEach(([kind, line, column, message], i) => {
    const p = problems[i] as VikingfileProblem;
    assert.deepEqual([p.kind, p.line, p.column], [kind, line, column], `problem ${i}:\n${got}`);
    if (typeof message === 'string') assert.ok(p.message.includes(message), `problem ${i}: ${p.message}\n  lacks: ${message}`);
    else assert.match(p.message, message);
    assert.ok(!p.message.includes('\n'));
  });
}

/** A valid file whose node `web` (line 4) gets `lines` from line 6 on. */
const WEB = ['viking:', '  name: demo', 'deploy:', '  web:', '    image: viking/node'];

const CASES: Array<{ name: string; lines: string[]; expect: Expected[] }> = [
  // syntax
  { name: 'YAML syntax error', lines: ['viking:', '  name: [demo', 'deploy: {}'], expect: [['syntax', 3, 1, /^YAML syntax error: /]] },
  { name: 'unterminated quote', lines: ['viking: {name: "demo}'], expect: [['syntax', 1, 22, 'YAML syntax error']] },
  { name: 'tab indentation', lines: ['viking:', '\tname: demo'], expect: [['syntax', 2, 1, 'YAML syntax error']] },
  { name: 'empty file', lines: ['# nothing here', ''], expect: [['syntax', 1, 1, 'the Vikingfile is empty']] },
  { name: 'top level is a list', lines: ['- viking'], expect: [['syntax', 1, 1, 'must be a YAML mapping']] },
  { name: 'top level is a string', lines: ['', 'hello'], expect: [['syntax', 2, 1, 'got a single value']] },
  {
    name: 'duplicate key',
    lines: [...WEB, '  web:', '    image: x'],
    expect: [['syntax', 6, 3, "duplicate key 'web' (first at line 4)"]],
  },
  { name: 'unsupported tag', lines: [...WEB, '    run: !shell echo'], expect: [['syntax', 6, 10, "unsupported YAML tag '!shell'"]] },
  { name: 'tag named like an Object member', lines: [...WEB, '    run: !!constructor x'], expect: [['syntax', 6, 10, "unsupported YAML tag '!!constructor'"]] },
  { name: 'bad explicit int', lines: [...WEB, '    scale: !!int two'], expect: [['syntax', 6, 12, "'two' is not a valid !!int"], ['wrong-type', 6, 18, 'scale must be an integer']] },
  { name: 'unknown alias', lines: [...WEB, '    expose: *ports'], expect: [['syntax', 6, 13, "alias '*ports' names no anchor"]] },
  {
    name: 'alias bomb',
    lines: ['a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]', ...[1, 2, 3, 4, 5].map((i) => `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`)],
    expect: [['syntax', 2, 10, 'the aliases (*name) of this file expand to more than 100000 values']],
  },
  { name: 'two documents', lines: [...WEB, '---', 'other: 1'], expect: [['syntax', 7, 1, 'a single YAML document']] },

  // unknown-key
  { name: 'typo suggestion', lines: [...WEB, '    domian: a.example.com'], expect: [['unknown-key', 6, 5, "unknown key 'domian' in node 'web'; did you mean 'domains'?"]] },
  { name: 'case and dash typo', lines: [...WEB, '    Volume: /data'], expect: [['unknown-key', 6, 5, "did you mean 'volume'?"]] },
  {
    name: 'no close key lists valid keys',
    lines: [...WEB, '    colour: red'],
    expect: [['unknown-key', 6, 5, "unknown key 'colour' in node 'web'; valid keys are: type, image, expose, volume, run"]],
  },
  { name: 'top-level typo', lines: [...WEB, 'bulid: {}'], expect: [['unknown-key', 6, 1, "unknown key 'bulid' at the top level; did you mean 'build'?"]] },
  { name: 'viking: typo', lines: ['viking: {name: demo, coment: x}', 'deploy: {web: {image: a}}'], expect: [['unknown-key', 1, 22, "did you mean 'comment'?"]] },
  { name: 'health typo', lines: [...WEB, '    expose: 80', '    health: {paht: /x}'], expect: [['unknown-key', 7, 14, "unknown key 'paht' in health of node 'web'; did you mean 'path'?"]] },
  {
    name: 'container key on a website',
    lines: ['viking: {name: demo}', 'deploy:', '  help:', '    type: website', '    document_root: www', '    domains: a.b.c', '    image: viking/node'],
    expect: [['unknown-key', 7, 5, "key 'image' is not allowed on a website node"]],
  },
  {
    name: 'document_root on a container',
    lines: [...WEB, '    type: container', '    document_root: www'],
    expect: [['unknown-key', 7, 5, "key 'document_root' is not allowed on a container node; use type: website"]],
  },

  // wrong-type
  { name: 'scale as a word', lines: [...WEB, '    scale: two'], expect: [['wrong-type', 6, 12, "scale must be an integer, got string 'two'"]] },
  { name: 'access_log as a word', lines: [...WEB, '    access_log: on'], expect: [['wrong-type', 6, 17, 'access_log must be true or false']] },
  { name: 'access_log as a list', lines: [...WEB, '    access_log: [true]'], expect: [['wrong-type', 6, 17, 'access_log must be true or false']] },
  { name: 'access_log misspelt', lines: [...WEB, '    acces_log: true'], expect: [['unknown-key', 6, 5, "did you mean 'access_log'?"]] },
  {
    name: 'access_log on a website',
    lines: ['viking: {name: demo}', 'deploy:', '  site:', '    type: website', '    document_root: ./www', '    domains: [a.example.com]', '    access_log: true'],
    expect: [['unknown-key', 7, 5, "key 'access_log' is not allowed on a website node"]],
  },
  { name: 'service yes is a string', lines: [...WEB, '    service: yes'], expect: [['wrong-type', 6, 14, "service must be true or false, got string 'yes'"]] },
  { name: 'quoted port', lines: [...WEB, '    expose: ["80"]'], expect: [['wrong-type', 6, 14, "expose must be a port number (1-65535) or a list of them, got string '80'"]] },
  { name: 'image as a number', lines: ['viking: {name: demo}', 'deploy:', '  web:', '    image: 42'], expect: [['wrong-type', 4, 12, 'image must be a string, got integer 42']] },
  { name: 'env as a string', lines: [...WEB, '    env: A=1'], expect: [['wrong-type', 6, 10, "env must be a mapping, got string 'A=1'"]] },
  { name: 'node as a string', lines: ['viking: {name: demo}', 'deploy:', '  web: viking/node'], expect: [['wrong-type', 3, 8, "node 'web' must be a mapping"]] },
  { name: 'deploy as a list', lines: ['viking: {name: demo}', 'deploy: [web]'], expect: [['wrong-type', 2, 9, 'deploy must be a mapping of node name to node, got a list']] },
  { name: 'Dockerfile as a list', lines: ['viking: {name: demo}', 'build:', '  src: [FROM x]', 'deploy: {web: {image: a}}'], expect: [['wrong-type', 3, 8, "the Dockerfile of image 'src' must be a string (write it as a | block), got a list"]] },
  { name: 'cpu as a string', lines: [...WEB, '    cpu: "0.5"'], expect: [['wrong-type', 6, 10, "cpu must be a number of CPUs, e.g. 0.5, got string '0.5'"]] },
  { name: 'memory as a boolean', lines: [...WEB, '    memory: true'], expect: [['wrong-type', 6, 13, 'memory must be a number of bytes']] },

  // missing-key
  { name: 'no viking:', lines: ['# stack', 'deploy: {web: {image: a}}'], expect: [['missing-key', 2, 1, 'missing viking: section']] },
  { name: 'no viking.name', lines: ['viking:', '  comment: hi', 'deploy: {web: {image: a}}'], expect: [['missing-key', 1, 1, 'viking: needs a name:']] },
  { name: 'no deploy:', lines: ['viking:', '  name: demo'], expect: [['missing-key', 1, 1, 'missing deploy: section']] },
  { name: 'empty deploy:', lines: ['viking: {name: demo}', 'deploy:'], expect: [['missing-key', 2, 1, 'deploy: lists no node']] },
  { name: 'no image', lines: ['viking: {name: demo}', 'deploy:', '  web:', '    scale: 2'], expect: [['missing-key', 3, 3, "node 'web' needs an image:"]] },
  { name: 'empty node', lines: ['viking: {name: demo}', 'deploy:', '  web:'], expect: [['missing-key', 3, 3, "node 'web' is empty"]] },
  {
    name: 'website without document_root nor domains',
    lines: ['viking: {name: demo}', 'deploy:', '  help:', '    type: website'],
    expect: [
      ['missing-key', 3, 3, "website node 'help' needs a document_root:"],
      ['missing-key', 3, 3, "website node 'help' needs domains:"],
    ],
  },

  // bad-scale
  { name: 'scale 0', lines: [...WEB, '    scale: 0'], expect: [['bad-scale', 6, 12, 'scale must be a whole number of at least 1, got 0']] },
  { name: 'scale 1.5', lines: [...WEB, '    scale: 1.5'], expect: [['bad-scale', 6, 12, 'got 1.5']] },
  { name: 'scale -2', lines: [...WEB, '    scale: -2'], expect: [['bad-scale', 6, 12, 'got -2']] },

  // bad-domain
  {
    name: 'invalid hostnames',
    lines: [...WEB, '    expose: 80', '    domains:', '      - "-a.com"', '      - a..com', '      - "*.*.com"', '      - http://a.com', '      - "a.com:80"', '      - a.com.', `      - ${'x'.repeat(64)}.com`],
    expect: [
      ['bad-domain', 8, 9, "domain '-a.com' is not a valid hostname"],
      ['bad-domain', 9, 9, "domain 'a..com' is not a valid hostname"],
      ['bad-domain', 10, 9, 'a wildcard is only allowed as the whole leftmost label'],
      ['bad-domain', 11, 9, 'drop the scheme'],
      ['bad-domain', 12, 9, 'without port or path'],
      ['bad-domain', 13, 9, 'must not end with a dot'],
      ['bad-domain', 14, 9, 'is not a valid hostname'],
    ],
  },
  { name: 'bare wildcard', lines: [...WEB, '    expose: 80', '    domains: "*."'], expect: [['bad-domain', 7, 14, "needs a name after '*.'"]] },
  {
    name: 'domain used by two nodes',
    lines: [...WEB, '    expose: 80', '    domains: [a.example.com]', '  help:', '    document_root: www', '    domains: [b.example.com, A.Example.com]'],
    expect: [['bad-domain', 10, 30, "domain 'a.example.com' is already used by node 'web' (line 7)"]],
  },
  { name: 'domain twice in a node', lines: [...WEB, '    expose: 80', '    domains: [a.io, a.io]'], expect: [['bad-domain', 7, 21, "domain 'a.io' is listed twice in node 'web'"]] },
  { name: 'website with no domain', lines: ['viking: {name: demo}', 'deploy:', '  help:', '    document_root: www', '    domains: []'], expect: [['bad-domain', 5, 14, "website node 'help' needs at least one domain"]] },

  // bad-name
  { name: 'node name', lines: [...WEB, '  My_Web:', '    image: x'], expect: [['bad-name', 6, 3, "node name 'My_Web' must be lowercase letters, digits and dashes, e.g. 'my-web'"]] },
  { name: 'stack name', lines: ['viking: {name: Ragnar Stack}', 'deploy: {web: {image: a}}'], expect: [['bad-name', 1, 16, "stack name 'Ragnar Stack' must be lowercase letters, digits and dashes, e.g. 'ragnar-stack'"]] },
  { name: 'image name', lines: ['viking: {name: demo}', 'build:', '  Src_Image: "FROM x"', 'deploy: {web: {image: a}}'], expect: [['bad-name', 3, 3, "image name 'Src_Image' must be lowercase letters, digits and dashes, e.g. 'src-image'"]] },
  { name: 'host tag', lines: [...WEB, '    tags: [ssd, Fast_Disk]', '    prefer: -x'], expect: [['bad-name', 6, 17, "host tag 'Fast_Disk'"], ['bad-name', 7, 13, "host tag '-x'"]] },

  // bad-image-ref
  { name: 'viking: without image', lines: ['viking: {name: demo}', 'deploy:', '  web:', '    image: viking:demo'], expect: [['bad-image-ref', 4, 12, "image 'viking:demo' must be of the form viking:<stack>/<image>, e.g. 'viking:demo/src'"]] },
  {
    name: 'image of this stack not built',
    lines: ['viking: {name: demo}', 'build:', '  src: "FROM viking/node"', 'deploy:', '  web:', '    image: viking:demo/scr'],
    expect: [['bad-image-ref', 6, 12, "image viking:demo/scr is not built by this stack: build: has no image 'scr'; did you mean 'src'?"]],
  },
  { name: 'invalid docker ref', lines: ['viking: {name: demo}', 'deploy:', '  web:', '    image: Quarry/Mongo'], expect: [['bad-image-ref', 4, 12, "image 'Quarry/Mongo' is not a valid Docker image reference"]] },
  {
    name: 'FROM an image the stack does not build, inside the block',
    lines: ['viking: {name: demo}', 'build:', '  base: |', '    FROM viking/node', '  app: |', '    # app image', '    FROM viking:demo/bsae AS x', 'deploy: {web: {image: a}}'],
    expect: [['bad-image-ref', 7, 10, "image 'app' builds FROM viking:demo/bsae but build: has no image 'bsae'; did you mean 'base'?"]],
  },
  {
    name: 'malformed viking: FROM after --platform',
    lines: ['viking: {name: demo}', 'build:', '  app: |', '    FROM --platform=linux/arm64 viking:demo', 'deploy: {web: {image: a}}'],
    expect: [['bad-image-ref', 4, 33, "FROM of image 'app': image 'viking:demo' must be of the form viking:<stack>/<image>"]],
  },
  { name: 'Dockerfile without FROM', lines: ['viking: {name: demo}', 'build:', '  app: |', '    RUN make', 'deploy: {web: {image: a}}'], expect: [['bad-image-ref', 3, 8, "the Dockerfile of image 'app' has no FROM line; start it with e.g. 'FROM viking/node'"]] },
  { name: 'FROM with no image', lines: ['viking: {name: demo}', 'build:', '  app: |', '    FROM', 'deploy: {web: {image: a}}'], expect: [['bad-image-ref', 4, 5, 'names no image']] },

  // build-cycle
  {
    name: 'two images FROM each other',
    lines: ['viking: {name: demo}', 'build:', '  a: |', '    FROM viking:demo/b', '  b: |', '    FROM viking:demo/a', 'deploy: {web: {image: a}}'],
    expect: [['build-cycle', 4, 10, 'build cycle: a -> b -> a']],
  },
  { name: 'an image FROM itself', lines: ['viking: {name: demo}', 'build:', '  a: "FROM viking:demo/a"', 'deploy: {web: {image: a}}'], expect: [['build-cycle', 3, 6, 'build cycle: a -> a']] },

  // bad-port
  {
    name: 'ports out of range and twice',
    lines: [...WEB, '    expose: [0, 80, 70000, 80.5, 80]'],
    expect: [
      ['bad-port', 6, 14, 'port 0 is not a whole number between 1 and 65535'],
      ['bad-port', 6, 21, 'port 70000'],
      ['bad-port', 6, 28, 'port 80.5'],
      ['bad-port', 6, 34, 'port 80 is listed twice in expose'],
    ],
  },
  { name: 'domains without a port', lines: [...WEB, '    domains: a.example.com'], expect: [['bad-port', 6, 14, "node 'web' has domains but exposes no port"]] },

  // bad-path
  {
    name: 'relative and root volumes, relative cwd',
    lines: [...WEB, '    volume: [data, /, /d, /d/]', '    cwd: srv/app'],
    expect: [
      ['bad-path', 6, 14, "volume 'data' must be an absolute path inside the container"],
      ['bad-path', 6, 20, "volume '/' would hide the whole container"],
      ['bad-path', 6, 27, "volume '/d' is listed twice"],
      ['bad-path', 7, 10, "cwd 'srv/app' must be an absolute path"],
    ],
  },
  { name: 'absolute document_root', lines: ['viking: {name: demo}', 'deploy:', '  help:', '    document_root: /var/www', '    domains: a.io'], expect: [['bad-path', 4, 20, "document_root '/var/www' must be relative to the source directory"]] },
  { name: 'escaping document_root', lines: ['viking: {name: demo}', 'deploy:', '  help:', '    document_root: ./www/../../x', '    domains: a.io'], expect: [['bad-path', 4, 20, 'leaves the source directory']] },

  // bad-env
  {
    name: 'env names and entries',
    lines: [...WEB, '    env:', '      9LIVES: x', '      OK: 1', '      my-var: 2'],
    expect: [
      ['bad-env', 7, 7, "env name '9LIVES' must be letters, digits and underscores"],
      ['bad-env', 9, 7, "env name 'my-var'"],
    ],
  },
  {
    name: 'env list entries',
    lines: [...WEB, '    env: [A=1, NOEQUALS, A=2, "B C=3"]'],
    expect: [
      ['bad-env', 6, 16, "env entry 'NOEQUALS' must be KEY=value"],
      ['bad-env', 6, 26, "env 'A' is set twice"],
      ['bad-env', 6, 31, "env name 'B C'"],
    ],
  },

  // bad-value
  { name: 'memory size', lines: [...WEB, '    memory: 12q'], expect: [['bad-value', 6, 13, "memory must be a number of bytes or a size like '256m' or '1g', got '12q'"]] },
  { name: 'negative memory', lines: [...WEB, '    memory: -5'], expect: [['bad-value', 6, 13, 'memory must be a number of bytes']] },
  { name: 'cpu 0', lines: [...WEB, '    cpu: 0'], expect: [['bad-value', 6, 10, 'cpu must be a number of CPUs more than 0']] },
  { name: 'health not a path', lines: [...WEB, '    expose: 80', '    health: healthz'], expect: [['bad-value', 7, 13, "health path 'healthz' must be an HTTP path starting with '/'"]] },
  { name: 'health without a port', lines: [...WEB, '    health: /healthz'], expect: [['bad-value', 6, 13, "exposes none; add expose:"]] },
  { name: 'unknown type', lines: [...WEB, '    type: job'], expect: [['bad-value', 6, 11, "type must be 'container' (the default) or 'website', got string 'job'"]] },
  { name: 'empty run', lines: [...WEB, '    run: ""'], expect: [['bad-value', 6, 10, 'run is empty']] },
];

for (const c of CASES) {
  test(`problem: ${c.name}`, () => check(c.lines, c.expect));
}

test('all problems are reported at once, sorted by line and column', () => {
  check(
    [
      'viking:',
      '  name: demo',
      '  comment: [a, list]',
      'build:',
      '  app: |',
      '    FROM viking:demo/nope',
      'deploy:',
      '  web:',
      '    image: viking:demo/app',
      '    scale: 0',
      '    expose: [80, 99999]',
      '    domian: a.io',
      '  Db:',
      '    image: quarry/mongo',
      '    memory: lots',
    ],
    [
      ['wrong-type', 3, 12, 'viking.comment must be a string, got a list'],
      ['bad-image-ref', 6, 10, "FROM viking:demo/nope but build: has no image 'nope'; build: has app"],
      ['bad-scale', 10, 12, 'scale must be a whole number'],
      ['bad-port', 11, 18, 'port 99999'],
      ['unknown-key', 12, 5, "did you mean 'domains'?"],
      ['bad-name', 13, 3, "node name 'Db'"],
      ['bad-value', 15, 13, "got 'lots'"],
    ],
  );
});

test('a merged value is reported where it is written', () => {
  check(
    ['viking: {name: demo}', 'deploy:', '  web: &base', '    image: viking/node', '    scale: none', '  api:', '    <<: *base', '    expose: 80'],
    [
      ['wrong-type', 5, 12, 'scale must be an integer'],
      ['wrong-type', 5, 12, 'scale must be an integer'],
    ],
  );
});
