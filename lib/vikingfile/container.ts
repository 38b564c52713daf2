/**
 * Container nodes: the fields of a long-running process.
 *
 * Every field is checked independently so one run reports them all. Values
 * come out in the shape the scheduler and the slaves use: ports as numbers,
 * memory in bytes, env as strings, single values as lists.
 */

import { missingImageHint } from './build.js';
import { readCron } from './cron.js';
import { readDomains, type NodeContext } from './domains.js';
import { readHsts } from './hsts.js';
import { show } from './describe.js';
import { asBoolean, asList, asMap, asNumber, asString, isNull, readKeys, readStrings, wrongType } from './fields.js';
import { formatImageRef, parseImageRef } from './image-ref.js';
import { isValidName, nameRuleMessage } from './names.js';
import type { Pos, ProblemList } from './problems.js';
import type { ContainerNodeSpec, HealthSpec, ImageRef } from './types.js';
import { checkAbsolutePath, isEnvKey, envKeyMessage, parseMemory } from './values.js';
import type { YEntry, YNode } from './yaml-tree.js';

export function readContainer(name: string, keyPos: Pos, fields: Map<string, YEntry>, ctx: NodeContext): ContainerNodeSpec | undefined {
  const { problems } = ctx;
  const field = <T>(key: string, read: (value: YNode) => T | undefined): T | undefined => {
    const entry = fields.get(key);
    return entry === undefined ? undefined : read(entry.value);
  };

  const imageEntry = fields.get('image');
  if (imageEntry === undefined) {
    problems.add('missing-key', keyPos, `node '${show(name)}' needs an image:, e.g. image: viking/node (or image: viking:<stack>/<image> for one of build:)`);
  }
  const image = field('image', (v) => readImage(v, ctx));
  const expose = field('expose', (v) => readPorts(v, problems));
  const domains = field('domains', (v) => readDomains(v, name, ctx));
  const health = field('health', (v) => readHealth(v, name, problems));
  const spec: ContainerNodeSpec = {
    kind: 'container',
    name,
    image: image ?? { kind: 'external', ref: '' },
    expose: expose ?? [],
    volumes: field('volume', (v) => readVolumes(v, problems)) ?? [],
    env: field('env', (v) => readEnv(v, problems)) ?? {},
    scale: field('scale', (v) => readScale(v, problems, ctx.maxScale)) ?? 1,
    domains: domains ?? [],
    service: field('service', (v) => asBoolean(v, 'service', problems)) ?? false,
    tags: field('tags', (v) => readTags(v, 'tags', problems)) ?? [],
    prefer: field('prefer', (v) => readTags(v, 'prefer', problems)) ?? [],
    memory: field('memory', (v) => readMemory(v, problems)) ?? 0,
    cpu: field('cpu', (v) => readCpu(v, problems)) ?? 0,
  };
  const run = field('run', (v) => readRun(v, problems));
  if (run !== undefined) spec.run = run;
  const cwd = field('cwd', (v) => {
    const raw = asString(v, 'cwd', problems);
    if (raw === undefined) return undefined;
    const checked = checkAbsolutePath(raw, 'cwd');
    if (!checked.ok) problems.add('bad-path', v, checked.message);
    return checked.ok ? checked.value : undefined;
  });
  if (cwd !== undefined) spec.cwd = cwd;
  if (health !== undefined) spec.health = health;
  const hsts = field('hsts', (v) => readHsts(v, problems));
  if (hsts !== undefined) spec.hsts = hsts;
  // `access_log: true`: every router writes a JSON line per request to the node's domains (viking logs --access).
  if (field('access_log', (v) => asBoolean(v, 'access_log', problems)) === true) spec.accessLog = true;
  const cron = readCron(name, fields, problems);
  if (cron !== undefined) spec.cron = cron;

  // The router and the health check both talk to the first exposed port
  // (not checked when expose: itself is wrong: that problem is reported already).
  const noPort = spec.expose.length === 0 && !(fields.has('expose') && expose === undefined);
  const healthEntry = fields.get('health');
  if (healthEntry !== undefined && health !== undefined && noPort) {
    problems.add('bad-value', healthEntry.value, `health checks talk to the first exposed port, but node '${show(name)}' exposes none; add expose:`);
  }
  const domainsEntry = fields.get('domains');
  if (domainsEntry !== undefined && spec.domains.length > 0 && noPort) {
    problems.add('bad-port', domainsEntry.value, `node '${show(name)}' has domains but exposes no port for the router to send them to; add e.g. expose: [80]`);
  }
  return image === undefined ? undefined : spec;
}

function readImage(value: YNode, ctx: NodeContext): ImageRef | undefined {
  const raw = asString(value, 'image', ctx.problems);
  if (raw === undefined) return undefined;
  const parsed = parseImageRef(raw, ctx.stack);
  if (!parsed.ok) {
    ctx.problems.add('bad-image-ref', value, parsed.message);
    return undefined;
  }
  const ref = parsed.value;
  if (ref.kind === 'stack' && ref.stack === ctx.stack && !ctx.buildNames.has(ref.image)) {
    ctx.problems.add(
      'bad-image-ref',
      value,
      `image ${formatImageRef(ref)} is not built by this stack: build: has no image '${ref.image}'; ${missingImageHint(ref.image, ctx.buildNames)}`,
    );
    return undefined;
  }
  return ref;
}

function readPorts(value: YNode, problems: ProblemList): number[] | undefined {
  const expected = 'a port number (1-65535) or a list of them';
  const items = asList(value, 'expose', expected, problems);
  if (items === undefined) return undefined;
  const ports: number[] = [];
  for (const item of items) {
    const port = asNumber(item, 'expose', expected, problems);
    if (port === undefined) continue;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.add('bad-port', item, `port ${show(item.kind === 'scalar' ? item.text : String(port))} is not a whole number between 1 and 65535`);
    } else if (ports.includes(port)) {
      problems.add('bad-port', item, `port ${port} is listed twice in expose`);
    } else {
      ports.push(port);
    }
  }
  return ports;
}

function readVolumes(value: YNode, problems: ProblemList): string[] | undefined {
  const seen = new Set<string>();
  return readStrings(value, 'volume', problems, (raw, at) => {
    const checked = checkAbsolutePath(raw, 'volume');
    let message: string | undefined;
    if (!checked.ok) message = checked.message;
    else if (checked.value === '/') message = "volume '/' would hide the whole container; use a folder such as '/data'";
    else if (seen.has(checked.value)) message = `volume '${show(checked.value)}' is listed twice`;
    if (message !== undefined || !checked.ok) {
      problems.add('bad-path', at, message ?? 'bad volume');
      return undefined;
    }
    seen.add(checked.value);
    return checked.value;
  });
}

/** A string runs through `/bin/sh -c`; a list is exec form, where `[sleep, 10]` means `["sleep", "10"]`. */
function readRun(value: YNode, problems: ProblemList): string | string[] | undefined {
  if (value.kind === 'seq') {
    if (value.items.length === 0) {
      problems.add('bad-value', value, 'run is an empty list; give the command, e.g. run: [node, index.js]');
      return undefined;
    }
    const words = value.items.map((item) => asString(item, 'each word of run', problems, true));
    return words.every((w): w is string => w !== undefined) ? words : undefined;
  }
  const command = asString(value, 'run', problems, true);
  if (command !== undefined && command.trim() === '') {
    problems.add('bad-value', value, 'run is empty; give the command, e.g. run: node index.js');
    return undefined;
  }
  return command;
}

/** `{KEY: value}` or `[KEY=value]`; numbers and booleans are kept as written (`1.10` stays `1.10`). */
function readEnv(value: YNode, problems: ProblemList): Record<string, string> | undefined {
  if (isNull(value)) return {};
  const env = new Map<string, string>();
  if (value.kind === 'seq') {
    for (const item of value.items) {
      const line = asString(item, 'each entry of env', problems);
      if (line === undefined) continue;
      const eq = line.indexOf('=');
      const key = eq < 0 ? line : line.slice(0, eq);
      if (eq < 0) problems.add('bad-env', item, `env entry '${show(line)}' must be KEY=value, e.g. 'NODE_ENV=production'`);
      else if (!isEnvKey(key)) problems.add('bad-env', item, envKeyMessage(key));
      else if (env.has(key)) problems.add('bad-env', item, `env '${show(key)}' is set twice`);
      else env.set(key, line.slice(eq + 1));
    }
    return Object.fromEntries(env);
  }
  const map = asMap(value, 'env', problems);
  if (map === undefined) return undefined;
  for (const { key, keyPos, value: v } of map.entries) {
    if (!isEnvKey(key)) {
      problems.add('bad-env', keyPos, envKeyMessage(key));
      continue;
    }
    if (v.kind !== 'scalar') {
      wrongType(v, `env ${show(key)}`, 'a string, number or boolean', problems);
      continue;
    }
    env.set(key, v.value === null ? '' : typeof v.value === 'string' ? v.value : v.text);
  }
  return Object.fromEntries(env);
}

function readScale(value: YNode, problems: ProblemList, maxScale: number): number | undefined {
  const scale = asNumber(value, 'scale', 'an integer', problems);
  if (scale === undefined) return undefined;
  const written = value.kind === 'scalar' ? show(value.text) : String(scale);
  if (!Number.isInteger(scale) || scale < 1) {
    problems.add('bad-scale', value, `scale must be a whole number of at least 1, got ${written}`);
    return undefined;
  }
  if (scale > maxScale) {
    problems.add('bad-scale', value, `scale ${written} is more than the ${maxScale} replicas per node this cluster allows (cluster setting max-scale)`);
    return undefined;
  }
  return scale;
}

function readHealth(value: YNode, node: string, problems: ProblemList): HealthSpec | undefined {
  const checkPath = (raw: string, at: YNode): string | undefined => {
    if (raw.startsWith('/') && !/[\s\u0000-\u001f]/.test(raw)) return raw;
    problems.add('bad-value', at, `health path '${show(raw)}' must be an HTTP path starting with '/', e.g. '/healthz'`);
    return undefined;
  };
  if (value.kind === 'scalar' && typeof value.value === 'string') {
    const path = checkPath(value.value, value);
    return path === undefined ? undefined : { path };
  }
  if (value.kind !== 'map') return wrongType(value, 'health', "an HTTP path like '/healthz' or a mapping {path: /healthz}", problems);
  const fields = readKeys(value, ['path'], `in health of node '${show(node)}'`, problems);
  const entry = fields.get('path');
  if (entry === undefined) return {};
  const raw = asString(entry.value, 'health path', problems);
  const path = raw === undefined ? undefined : checkPath(raw, entry.value);
  return path === undefined ? undefined : { path };
}

function readTags(value: YNode, what: 'tags' | 'prefer', problems: ProblemList): string[] | undefined {
  const tags = readStrings(value, what, problems, (raw, at) => {
    if (isValidName(raw)) return raw;
    problems.add('bad-name', at, nameRuleMessage('host tag', raw));
    return undefined;
  });
  return tags === undefined ? undefined : [...new Set(tags)];
}

function readMemory(value: YNode, problems: ProblemList): number | undefined {
  if (value.kind !== 'scalar' || (typeof value.value !== 'number' && typeof value.value !== 'string')) {
    return wrongType(value, 'memory', "a number of bytes or a size like '256m'", problems);
  }
  const parsed = parseMemory(value.value);
  if (!parsed.ok) problems.add('bad-value', value, parsed.message);
  return parsed.ok ? parsed.value : undefined;
}

function readCpu(value: YNode, problems: ProblemList): number | undefined {
  const cpu = asNumber(value, 'cpu', 'a number of CPUs, e.g. 0.5', problems);
  if (cpu === undefined) return undefined;
  if (!Number.isFinite(cpu) || cpu <= 0) {
    problems.add('bad-value', value, `cpu must be a number of CPUs more than 0, e.g. 0.5, got ${value.kind === 'scalar' ? show(value.text) : cpu}`);
    return undefined;
  }
  return cpu;
}
