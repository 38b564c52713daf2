/**
 * Removing a whole tree (a refused upload, an old release) without holding
 * the host's event loop: `fs.rm({ recursive })` of 50,000 files stalled the
 * loop for over a second here (measured), long enough to matter for lease
 * keepalives. `rm -rf` in a child process does the same work off the loop.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';

export async function removeTree(dir: string): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn('rm', ['-rf', '--', dir], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
  // No rm binary (or it failed): fall back to Node's own.
  if (!ok) await rm(dir, { recursive: true, force: true });
}
