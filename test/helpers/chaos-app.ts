/**
 * Copies of the chaos tests' app (test/fixtures/chaos-echo) under a unique
 * stack name, with the domain, the scale of `web` and the collector its
 * POSTs report to filled in. Its `web` answers GETs with the replica's name
 * and reports every POST's x-request-id to the collector before answering;
 * its `keeper` is a job pinned to a volume.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHAOS_APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/chaos-echo');

export interface ChaosApp {
  dir: string;
  stack: string;
  domain: string;
  collectorUrl: string;
  /** Replicas of `web` (default 3). */
  scale?: number;
  /** Keep the volume-pinned `keeper` job (default true). */
  keeper?: boolean;
}

export async function chaosAppCopy(o: ChaosApp): Promise<string> {
  await cp(CHAOS_APP_DIR, o.dir, { recursive: true });
  const file = path.join(o.dir, 'Vikingfile');
  let vf = (await readFile(file, 'utf8'))
    .replace('name: chaos', `name: ${o.stack}`)
    .replaceAll('viking:chaos/app', `viking:${o.stack}/app`)
    .replace('- chaos.local', `- ${o.domain}`)
    .replace('COLLECTOR_URL: http://127.0.0.1:9/', `COLLECTOR_URL: ${o.collectorUrl}`)
    .replace('scale: 3', `scale: ${o.scale ?? 3}`);
  if (o.keeper === false) vf = vf.slice(0, vf.indexOf('  # A job pinned to its volume'));
  await writeFile(file, vf);
  return o.dir;
}
