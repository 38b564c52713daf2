/**
 * Base images made offline with `docker import`.
 *
 * Nothing can be pulled from a public registry on viking's machines, so the
 * images a Vikingfile starts `FROM` are assembled from what the host already
 * has: `viking/busybox` is Debian's static busybox with its applets linked in
 * /bin, and `viking/node` adds the host's own node binary and the shared
 * libraries it links against (found with ldd). Importing takes seconds and is
 * skipped when the image already exists.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile, stat, realpath } from 'node:fs/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import type Docker from 'dockerode';
import { followProgress } from './client.js';

const run = promisify(execFile);

export const BUSYBOX_IMAGE = 'viking/busybox:latest';
export const NODE_IMAGE = 'viking/node:latest';
const BASE_LABEL = 'viking.base=1';

/** Finds the static busybox binary installed by Debian's busybox-static. */
async function findBusybox(): Promise<string> {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    const isFile = await stat(candidate).then((s) => s.isFile(), () => false);
    // ldd fails on a static binary; a dynamic busybox would need its libraries in the image.
    if (isFile && (await run('ldd', [candidate]).then(() => false, () => true))) return candidate;
  }
  throw new Error('static busybox not found: install the Debian package busybox-static');
}

/** Lists the applets busybox provides so each gets a /bin symlink. */
async function busyboxApplets(binary: string): Promise<string[]> {
  const { stdout } = await run(binary, ['--list']);
  return stdout.split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9_.\[-]+$/.test(s) && s !== 'busybox');
}

/** The shared libraries a binary loads, as absolute paths on this host. */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  const libs = new Set<string>();
  for (const line of stdout.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.add(m[1]);
  }
  return [...libs];
}

function addFile(p: Pack, name: string, content: Buffer, mode = 0o644): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry({ name, mode, size: content.length }, content, (err) => (err ? reject(err) : resolve()));
  });
}

function addDir(p: Pack, name: string, mode = 0o755): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry({ name, type: 'directory', mode }, (err) => (err ? reject(err) : resolve()));
  });
}

function addSymlink(p: Pack, name: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    p.entry({ name, type: 'symlink', linkname: target }, (err) => (err ? reject(err) : resolve()));
  });
}

async function addHostFile(p: Pack, hostPath: string, name = hostPath.replace(/^\//, '')): Promise<void> {
  const real = await realpath(hostPath);
  const st = await stat(real);
  await addFile(p, name, await readFile(real), st.mode & 0o777);
}

/** Writes the filesystem skeleton every base image shares: /bin with busybox, /etc, /tmp. */
async function addSkeleton(p: Pack, busybox: string): Promise<void> {
  for (const dir of ['bin', 'etc', 'tmp', 'root', 'usr', 'usr/bin', 'usr/local', 'usr/local/bin', 'lib', 'lib64', 'lib/x86_64-linux-gnu', 'srv', 'var', 'proc', 'sys', 'dev']) {
    await addDir(p, dir, dir === 'tmp' ? 0o1777 : 0o755);
  }
  await addHostFile(p, busybox, 'bin/busybox');
  for (const applet of await busyboxApplets(busybox)) await addSymlink(p, `bin/${applet}`, 'busybox');
  await addFile(p, 'etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'));
  await addFile(p, 'etc/group', Buffer.from('root:x:0:\nnogroup:x:65534:\n'));
  await addFile(p, 'etc/hosts', Buffer.from('127.0.0.1 localhost\n'));
}

async function importTar(docker: Docker, p: Pack, image: string, changes: string[]): Promise<void> {
  const [repo, tag] = image.split(':') as [string, string];
  const stream = await docker.importImage(p as unknown as NodeJS.ReadableStream, {
    repo,
    tag,
    changes: [...changes, `LABEL ${BASE_LABEL}`],
  } as object);
  await followProgress(docker, stream);
}

/**
 * Whether the image is there. Only a 404 means it is missing: any other error
 * (a daemon too busy to answer in time) is thrown, because taking it for
 * "missing" re-imports the image and leaves the old one dangling (~106 MB).
 */
async function imageExists(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Creates `viking/busybox`: a shell and the usual tools, nothing else. */
export async function makeBusyboxImage(docker: Docker): Promise<void> {
  const busybox = await findBusybox();
  const p = tarPack();
  const importing = importTar(docker, p, BUSYBOX_IMAGE, ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'CMD ["/bin/sh"]']);
  await addSkeleton(p, busybox);
  p.finalize();
  await importing;
}

/** Creates `viking/node`: busybox plus this host's node binary and its libraries. */
export async function makeNodeImage(docker: Docker, nodeBinary = process.execPath): Promise<void> {
  const busybox = await findBusybox();
  const node = await realpath(nodeBinary);
  const libs = await sharedLibraries(node);
  const p = tarPack();
  const importing = importTar(docker, p, NODE_IMAGE, [
    'ENV PATH=/usr/local/bin:/usr/bin:/bin',
    'ENV NODE_ENV=production',
    'WORKDIR /srv/app',
    'CMD ["node"]',
  ]);
  await addSkeleton(p, busybox);
  await addHostFile(p, node, 'usr/local/bin/node');
  for (const lib of libs) await addHostFile(p, lib, lib.replace(/^\//, ''));
  p.finalize();
  await importing;
}

export interface EnsureResult {
  image: string;
  created: boolean;
}

/** Makes both base images unless they exist already; safe to call every start. */
export async function ensureBaseImages(docker: Docker, force = false): Promise<EnsureResult[]> {
  const results: EnsureResult[] = [];
  for (const [image, make] of [
    [BUSYBOX_IMAGE, makeBusyboxImage],
    [NODE_IMAGE, makeNodeImage],
  ] as const) {
    if (!force && (await imageExists(docker, image))) {
      results.push({ image, created: false });
      continue;
    }
    await make(docker);
    results.push({ image, created: true });
  }
  return results;
}
