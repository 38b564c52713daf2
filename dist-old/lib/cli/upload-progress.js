/**
 * The upload progress bar of `viking push`: how much of the source has gone
 * out, against the total the ignore rules leave, redrawn in place on a
 * terminal (stderr) and reduced to one summary line anywhere else.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
/** Bytes of file content a push will send (tar headers not counted). */
export async function sourceSize(dir, ignored) {
    let bytes = 0;
    let files = 0;
    const walk = async (at) => {
        for (const entry of await readdir(at, { withFileTypes: true })) {
            const full = path.join(at, entry.name);
            if (ignored(path.relative(dir, full)))
                continue;
            if (entry.isDirectory())
                await walk(full);
            else if (entry.isFile()) {
                bytes += (await lstat(full)).size;
                files++;
            }
        }
    };
    await walk(dir);
    return { bytes, files };
}
export function formatBytes(n) {
    if (n < 1024)
        return `${n} B`;
    if (n < 1024 * 1024)
        return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
/** `[#########...........]  45%  1.2 MiB / 2.6 MiB` */
export function progressBar(sent, total, width = 24) {
    const ratio = total > 0 ? Math.min(1, sent / total) : 1;
    const filled = Math.round(ratio * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(ratio * 100)).padStart(3)}%  ${formatBytes(sent)} / ${formatBytes(total)}`;
}
export class UploadProgress {
    total;
    out;
    sent = 0;
    lastDraw = 0;
    tty;
    constructor(total, out = process.stderr, enabled = true) {
        this.total = total;
        this.out = out;
        this.tty = enabled && Boolean(out.isTTY);
    }
    add(bytes) {
        this.sent += bytes;
        const now = Date.now();
        if (this.tty && now - this.lastDraw > 50) {
            this.lastDraw = now;
            this.out.write(`\ruploading ${progressBar(Math.min(this.sent, this.total), this.total)}`);
        }
    }
    /** Ends the bar; returns the bytes that went out (tar framing included). */
    done() {
        if (this.tty)
            this.out.write(`\ruploading ${progressBar(this.total, this.total)}\n`);
        return this.sent;
    }
}
//# sourceMappingURL=upload-progress.js.map