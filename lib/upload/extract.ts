/**
 * Unpacks a pushed source tarball, refusing anything that could write or
 * read outside the upload's directory: absolute names, `..` segments, links
 * that lead out of the tree or nowhere, hard links, devices, FIFOs. The whole
 * archive is checked as it streams; the first bad entry aborts with a clear
 * error and the caller removes the partial directory.
 *
 * Nothing is held in memory: each file streams straight to disk, and the
 * size cap (file content and the raw archive) and the entry cap are enforced
 * while the bytes arrive, so an oversized upload is refused as soon as it
 * crosses the cap, not after it has been read.
 *
 * Symbolic links are created only after every file is written, so no write
 * can go through a link. Each link is then resolved inside the tree as if the
 * tree's root were `/` (lib/upload/tree-links.ts): a link that climbs above
 * the root, is absolute, dangles or loops is refused. Such a check does not
 * depend on where the tree sits, so moving the tree later (uploads/<id> ->
 * stacks/<stack>/<tag>) cannot turn a harmless link into an escape.
 */
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { extract as tarExtract, type Header as Headers } from 'tar-stream';
import { VikingError } from '../errors.js';
import { linkProblem, resolveInTree } from './tree-links.js';

export interface ExtractOptions {
  /** Total bytes of file content allowed. */
  maxBytes: number;
  /** Entries (files, folders, links) allowed; default DEFAULT_MAX_ENTRIES. */
  maxEntries?: number;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

/** Files up to this size are gathered and written in one call; larger ones stream. */
const SMALL_FILE = 256 * 1024;

/** Small files being written at once. */
const WRITES_IN_FLIGHT = 16;

/** Entries an upload may hold unless the host says otherwise. */
export const DEFAULT_MAX_ENTRIES = 50_000;

/**
 * Bytes of the raw archive allowed for a content cap and an entry cap:
 * the content, plus a header and padding per entry, plus slack for long-name
 * records. Past this the archive is refused whatever its content says.
 */
export function rawArchiveCap(maxBytes: number, maxEntries: number): number {
  return maxBytes + maxEntries * 1536 + 1024 * 1024;
}

/** The safe relative path of an entry, or an error saying why not. */
export function safeEntryPath(name: string): string {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || /^[a-zA-Z]:/.test(clean)) throw bad(`entry '${name}' has an absolute path`);
  const parts = clean.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw bad(`entry '${name}' climbs out of the upload with '..'`);
  if (parts.some((p) => p.includes('\0'))) throw bad(`entry '${name}' has a NUL byte`);
  return parts.join('/');
}

function bad(message: string): VikingError {
  return new VikingError('VIKING_E_UPLOAD_INVALID', `unsafe upload: ${message}`);
}

export function tooLarge(maxBytes: number): VikingError {
  return new VikingError('VIKING_E_UPLOAD_TOO_LARGE', `the source is larger than ${Math.round(maxBytes / 1048576)} MiB; add big files to .vikingignore`);
}

function tooMany(maxEntries: number): VikingError {
  return new VikingError(
    'VIKING_E_UPLOAD_TOO_MANY_FILES',
    `the source holds more than ${maxEntries} files, folders and links (the host's limit); add generated folders such as node_modules to .vikingignore`,
  );
}

/** A symlink's text is refused early if it is absolute or climbs out by its own `..` (a cheap first check). */
export function checkLinkTarget(entryPath: string, target: string): void {
  if (target === '') throw bad(`link '${entryPath}' has an empty target`);
  if (path.posix.isAbsolute(target)) throw bad(`link '${entryPath}' points to the absolute path '${target}'`);
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(entryPath), target));
  if (resolved === '..' || resolved.startsWith('../')) throw bad(`link '${entryPath}' points out of the upload ('${target}')`);
}

/** Counts the raw archive's bytes and fails the stream once they pass `cap`. */
function rawCounter(cap: number, onOver: () => VikingError): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > cap) return done(onOver());
      done(null, chunk);
    },
  });
}

export async function extractUpload(input: NodeJS.ReadableStream, dir: string, opts: ExtractOptions): Promise<ExtractResult> {
  await mkdir(dir, { recursive: true });
  const root = path.resolve(dir);
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const ex = tarExtract();
  let bytes = 0;
  let files = 0;
  let entries = 0;
  let lastYield = performance.now();
  const links: Array<{ rel: string; target: string }> = [];
  // Folders already made: most entries share one, and a mkdir each costs a trip to the thread pool.
  const made = new Set<string>([root]);
  const writing = new Set<Promise<void>>();
  let writeError: VikingError | undefined;
  const folder = async (dir: string): Promise<void> => {
    if (made.has(dir)) return;
    await mkdir(dir, { recursive: true });
    made.add(dir);
  };
  const handle = async (header: Headers, stream: NodeJS.ReadableStream): Promise<void> => {
    const rel = safeEntryPath(header.name);
    const target = path.join(root, rel);
    if (rel === '') {
      stream.resume();
      return;
    }
    if (writeError) throw writeError;
    if (++entries > maxEntries) throw tooMany(maxEntries);
    // Many tiny entries can arrive in one chunk and be handled in microtasks only: let timers run.
    if (performance.now() - lastYield > 20) {
      await yieldToLoop();
      lastYield = performance.now();
    }
    switch (header.type) {
      case 'directory':
        await folder(target);
        stream.resume();
        return;
      case 'file':
      case 'contiguous-file': {
        // The header says the size: refuse at once what cannot fit.
        if (bytes + (header.size ?? 0) > opts.maxBytes) throw tooLarge(opts.maxBytes);
        await folder(path.dirname(target));
        const mode = (header.mode ?? 0o644) & 0o777;
        try {
          if ((header.size ?? 0) <= SMALL_FILE) {
            // One open-write-close: most of a source tree is small files.
            const chunks: Buffer[] = [];
            for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
            const body = Buffer.concat(chunks);
            bytes += body.length;
            if (bytes > opts.maxBytes) throw tooLarge(opts.maxBytes);
            // Written while the next entries are read, a few at a time (the thread pool has 4 threads).
            if (writing.size >= WRITES_IN_FLIGHT) await Promise.race(writing);
            const write: Promise<void> = writeFile(target, body, { mode, flag: 'wx' }).then(
              () => void writing.delete(write),
              (err: Error) => {
                writing.delete(write);
                writeError ??= bad(`could not write '${rel}': ${err.message}`);
              },
            );
            writing.add(write);
            files++;
            return;
          } else {
            const counted = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
              for await (const chunk of src) {
                bytes += chunk.length;
                if (bytes > opts.maxBytes) throw tooLarge(opts.maxBytes);
                yield chunk;
              }
            };
            await pipeline(stream as unknown as AsyncIterable<Buffer>, counted, createWriteStream(target, { mode, flags: 'wx' }));
          }
        } catch (err) {
          // A half-written file is not left behind (the caller removes the folder too).
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(target).catch(() => {});
          throw err;
        }
        files++;
        return;
      }
      case 'symlink':
        checkLinkTarget(rel, header.linkname ?? '');
        links.push({ rel, target: header.linkname ?? '' });
        stream.resume();
        return;
      default:
        throw bad(`entry '${header.name}' is a ${header.type ?? 'unknown'}, only files, folders and links inside the tree are accepted`);
    }
  };
  return new Promise<ExtractResult>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      ex.destroy();
      // Settle the writes still running before the caller removes the folder.
      void Promise.allSettled(writing).then(() => reject(err));
    };
    ex.on('entry', (header, stream, next) => {
      handle(header, stream as unknown as NodeJS.ReadableStream).then(
        () => next(),
        (err: unknown) => {
          stream.resume();
          fail(err instanceof VikingError ? err : bad(`could not write '${header.name}': ${(err as Error).message}`));
        },
      );
    });
    ex.on('finish', () => {
      if (failed) return;
      Promise.all(writing)
        .then(() => {
          if (writeError) throw writeError;
          return createLinks(root, links);
        })
        .then(() => resolve({ files, bytes }), fail);
    });
    ex.on('error', (err: Error) => fail(new VikingError('VIKING_E_UPLOAD_INVALID', `the upload is not a valid tar archive: ${err.message}`)));
    const counter = rawCounter(rawArchiveCap(opts.maxBytes, maxEntries), () => tooLarge(opts.maxBytes));
    counter.on('error', (err: Error) => fail(err));
    input.on('error', (err: Error) => fail(bad(`the upload was cut off: ${err.message}`)));
    input.pipe(counter).pipe(ex);
  });
}

/**
 * Creates the links last, each in a real folder of the tree (never through
 * another link), then judges every one inside the tree (a link may lead to a
 * link created after it, so all exist before any is judged).
 */
async function createLinks(root: string, links: Array<{ rel: string; target: string }>): Promise<void> {
  for (const link of links) {
    await realFolder(root, link.rel);
    try {
      await symlink(link.target, path.join(root, link.rel));
    } catch (err) {
      throw bad(`could not create link '${link.rel}': ${(err as Error).message}`);
    }
  }
  let lastYield = performance.now();
  for (const link of links) {
    const problem = linkProblem(link.rel, link.target, await resolveInTree(root, link.rel));
    if (problem) throw bad(problem.replace('out of the tree', 'out of the upload').replace('not in the tree', 'not in the upload'));
    if (performance.now() - lastYield > 20) {
      await yieldToLoop();
      lastYield = performance.now();
    }
  }
}

/** Makes sure the folders holding `rel` are real folders of the tree, creating missing ones, never following a link. */
async function realFolder(root: string, rel: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let at = root;
  for (const [i, p] of parts.entries()) {
    at = path.join(at, p);
    const st = await lstat(at).catch(() => undefined);
    if (!st) {
      await mkdir(at);
      continue;
    }
    if (!st.isDirectory()) throw bad(`link '${rel}' sits under '${parts.slice(0, i + 1).join('/')}', which is not a folder`);
  }
}
