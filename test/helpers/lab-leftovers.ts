/**
 * What a lab (netns-lab.ts) may leave on the machine, found by its id: for
 * tests that check a teardown removed everything.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, readdir, stat } from 'node:fs/promises';

const run = promisify(execFile);

/** Everything on the machine that carries the lab's id. */
export async function labLeftovers(id: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  const tag = `vkl${id}`;
  const netns = (await run('ip', ['netns', 'list'])).stdout;
  if (netns.includes(tag)) found.push(`netns: ${netns}`);
  const links = (await run('ip', ['-o', 'link'])).stdout.split('\n').filter((l) => l.includes(tag));
  found.push(...links.map((l) => `link: ${l}`));
  const rules = (await run('iptables', ['-S', 'FORWARD'])).stdout.split('\n').filter((l) => l.includes(tag));
  found.push(...rules.map((r) => `iptables: ${r}`));
  for (const h of await readdir('/sys/fs/cgroup')) {
    for (const e of await readdir(`/sys/fs/cgroup/${h}`).catch(() => [] as string[])) if (e.startsWith(tag)) found.push(`cgroup: ${h}/${e}`);
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(tag));
  found.push(...mounts.map((m) => `mount: ${m}`));
  if (await stat(dir).then(() => true, () => false)) found.push(`dir: ${dir}`);
  const procs = (await run('ps', ['-eo', 'pid,args'])).stdout.split('\n').filter((l) => l.includes(tag));
  found.push(...procs.map((p) => `process: ${p}`));
  // Processes started with the lab's paths in their environment (VIKING_DATA, DOCKER_HOST), e.g. a supervisor loop.
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    const statLine = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (environ.includes(tag) && !/\) Z /.test(statLine) && !procs.some((p) => p.trim().startsWith(`${pid} `))) found.push(`process ${pid} with the lab in its environment: ${statLine.slice(0, 80)}`);
  }
  return found;
}

