/**
 * Unpacks a pushed source tarball, refusing anything that could write
 * outside the upload's directory: absolute names, `..` segments, links that
 * point out of the tree, hard links, devices, FIFOs. The whole archive is
 * checked as it streams; the first bad entry aborts with a clear error and
 * the caller removes the partial directory.
 *
 * Symbolic links are created only after every file is written, so no write
 * can go through a link; each link is then resolved by the kernel
 * (realpath), which also catches chains like `d/b -> ..`, `a -> d/b/..`.
 */
import { mkdir, writeFile, symlink, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { extract as tarExtract } from 'tar-stream';
import { VikingError } from '../errors.js';
/** The safe relative path of an entry, or an error saying why not. */
export function safeEntryPath(name) {
    const clean = name.replace(/\\/g, '/');
    if (clean.startsWith('/') || /^[a-zA-Z]:/.test(clean))
        throw bad(`entry '${name}' has an absolute path`);
    const parts = clean.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.some((p) => p === '..'))
        throw bad(`entry '${name}' climbs out of the upload with '..'`);
    if (parts.some((p) => p.includes('\0')))
        throw bad(`entry '${name}' has a NUL byte`);
    return parts.join('/');
}
function bad(message) {
    return new VikingError('VIKING_E_UPLOAD_INVALID', `unsafe upload: ${message}`);
}
/** A symlink is kept only if its target, resolved from the link's folder, stays inside the tree. */
export function checkLinkTarget(entryPath, target) {
    if (path.posix.isAbsolute(target))
        throw bad(`link '${entryPath}' points to the absolute path '${target}'`);
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(entryPath), target));
    if (resolved === '..' || resolved.startsWith('../'))
        throw bad(`link '${entryPath}' points out of the upload ('${target}')`);
}
export async function extractUpload(input, dir, opts) {
    await mkdir(dir, { recursive: true });
    const root = path.resolve(dir);
    const ex = tarExtract();
    let bytes = 0;
    let files = 0;
    const links = [];
    const handle = async (header, stream) => {
        const rel = safeEntryPath(header.name);
        const target = path.join(root, rel);
        if (rel === '') {
            stream.resume();
            return;
        }
        switch (header.type) {
            case 'directory':
                await mkdir(target, { recursive: true });
                stream.resume();
                return;
            case 'file':
            case 'contiguous-file': {
                const chunks = [];
                for await (const chunk of stream) {
                    bytes += chunk.length;
                    if (bytes > opts.maxBytes) {
                        throw new VikingError('VIKING_E_UPLOAD_TOO_LARGE', `the source is larger than ${Math.round(opts.maxBytes / 1048576)} MiB; add big files to .vikingignore`);
                    }
                    chunks.push(chunk);
                }
                await mkdir(path.dirname(target), { recursive: true });
                await writeFile(target, Buffer.concat(chunks), { mode: (header.mode ?? 0o644) & 0o777, flag: 'wx' });
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
    return new Promise((resolve, reject) => {
        let failed = false;
        ex.on('entry', (header, stream, next) => {
            handle(header, stream).then(() => next(), (err) => {
                failed = true;
                stream.resume();
                ex.destroy();
                reject(err instanceof VikingError ? err : bad(`could not write '${header.name}': ${err.message}`));
            });
        });
        ex.on('finish', () => {
            if (failed)
                return;
            createLinks(root, links).then(() => resolve({ files, bytes }), reject);
        });
        ex.on('error', (err) => {
            if (!failed) {
                failed = true;
                reject(new VikingError('VIKING_E_UPLOAD_INVALID', `the upload is not a valid tar archive: ${err.message}`));
            }
        });
        input.on('error', (err) => ex.destroy(err));
        input.pipe(ex);
    });
}
function inside(root, p) {
    return p === root || p.startsWith(root + path.sep);
}
/** Creates the links last, each checked where the kernel really resolves it. */
async function createLinks(root, links) {
    const realRoot = await realpath(root);
    for (const link of links) {
        const at = path.join(root, link.rel);
        await mkdir(path.dirname(at), { recursive: true });
        const parent = await realpath(path.dirname(at));
        if (!inside(realRoot, parent))
            throw bad(`link '${link.rel}' sits in a folder outside the upload`);
        try {
            await symlink(link.target, at);
        }
        catch (err) {
            throw bad(`could not create link '${link.rel}': ${err.message}`);
        }
        const resolved = await realpath(at).catch(() => undefined);
        // A dangling link resolves nowhere and is harmless: nothing is written after this point.
        if (resolved !== undefined && !inside(realRoot, resolved)) {
            await unlink(at).catch(() => { });
            throw bad(`link '${link.rel}' resolves out of the upload ('${link.target}')`);
        }
    }
}
//# sourceMappingURL=extract.js.map