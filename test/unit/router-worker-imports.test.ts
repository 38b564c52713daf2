/**
 * A router worker only proxies: it must not load etcd3 and gRPC. Through
 * one import (the ACME answers beside the feed that watched etcd for them)
 * every worker loaded 82 modules of etcd3, gRPC and cockatiel it never
 * used, 18 MiB of each worker's memory (68 against 50 MiB right after the
 * import). This walks the compiled worker's static imports and allows only
 * node: built-ins outside the project.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const worker = path.resolve(here, '../../lib/router/worker.js');

/** Every module the file loads at run time (compiled JS: type-only imports are gone), as [importer, specifier]. */
function staticImports(entry: string): { files: string[]; external: Array<[string, string]> } {
  const seen = new Set([entry]);
  const queue = [entry];
  const external: Array<[string, string]> = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (!spec.startsWith('.')) {
        external.push([path.relative(path.dirname(entry), file), spec]);
        continue;
      }
      const target = path.resolve(path.dirname(file), spec);
      if (!seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return { files: [...seen], external };
}

test('a router worker loads no package outside node: built-ins (no etcd3, no gRPC)', () => {
  const { files, external } = staticImports(worker);
  assert.ok(files.some((f) => f.endsWith('server.js')), `the walk found the router server (${files.length} files)`);
  assert.deepEqual(external.filter(([, spec]) => !spec.startsWith('node:')), [], 'packages imported from the worker graph');
});
