import { LABEL } from '../slave/containers.js';
const STREAMS = { 1: 'stdout', 2: 'stderr' };
/** Turns Docker's framed log bytes into lines, keeping partial frames and lines between chunks. */
export class FrameSplitter {
    onLine;
    timestamps;
    pending = Buffer.alloc(0);
    partial = { stdout: '', stderr: '' };
    constructor(onLine, timestamps = true) {
        this.onLine = onLine;
        this.timestamps = timestamps;
    }
    push(chunk) {
        this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
        let i = 0;
        while (this.pending.length - i >= 8) {
            const kind = this.pending[i];
            const size = this.pending.readUInt32BE(i + 4);
            if (this.pending.length - i - 8 < size)
                break;
            const stream = STREAMS[kind] ?? 'stdout';
            this.text(stream, this.pending.subarray(i + 8, i + 8 + size).toString('utf8'));
            i += 8 + size;
        }
        this.pending = this.pending.subarray(i);
    }
    /** Emits what is left of unterminated lines (the stream ended). */
    end() {
        for (const stream of ['stdout', 'stderr']) {
            if (this.partial[stream] !== '')
                this.emit(stream, this.partial[stream]);
            this.partial[stream] = '';
        }
    }
    text(stream, text) {
        const parts = (this.partial[stream] + text).split('\n');
        this.partial[stream] = parts.pop() ?? '';
        for (const p of parts)
            this.emit(stream, p);
    }
    emit(stream, raw) {
        const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
        if (!this.timestamps)
            return this.onLine({ time: '', stream, line: text });
        const space = text.indexOf(' ');
        const stamp = space > 0 ? text.slice(0, space) : '';
        if (/^\d{4}-\d\d-\d\dT/.test(stamp))
            this.onLine({ time: stamp, stream, line: text.slice(space + 1) });
        else
            this.onLine({ time: '', stream, line: text });
    }
}
/** The container of a job on this host: the running one, else the newest. */
export async function findJobContainer(docker, host, job) {
    const list = await docker.listContainers({
        all: true,
        filters: {
            label: [
                `${LABEL.host}=${host}`,
                `${LABEL.stack}=${job.stack}`,
                `${LABEL.tag}=${job.tag}`,
                `${LABEL.node}=${job.node}`,
                `${LABEL.instance}=${job.instance}`,
            ],
        },
    });
    const sorted = [...list].sort((a, b) => Number(b.State === 'running') - Number(a.State === 'running') || b.Created - a.Created);
    return sorted[0]?.Id;
}
/** Reads a container's log; resolves when it ends (follow: when the container stops or the signal aborts). */
export async function readContainerLogs(docker, id, o, onLine) {
    const splitter = new FrameSplitter(onLine);
    const c = docker.getContainer(id);
    // Docker takes tail=all; dockerode's types only know numbers.
    const tail = o.tail;
    if (!o.follow) {
        const buf = (await c.logs({ stdout: true, stderr: true, timestamps: true, tail, follow: false }));
        splitter.push(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
        splitter.end();
        return;
    }
    const stream = (await c.logs({ stdout: true, stderr: true, timestamps: true, tail, follow: true }));
    await new Promise((resolve) => {
        const finish = () => {
            splitter.end();
            o.signal?.removeEventListener('abort', abort);
            resolve();
        };
        const abort = () => {
            stream.destroy();
            finish();
        };
        if (o.signal?.aborted)
            return abort();
        o.signal?.addEventListener('abort', abort, { once: true });
        stream.on('data', (chunk) => splitter.push(chunk));
        stream.on('end', finish);
        stream.on('close', finish);
        stream.on('error', finish);
    });
}
//# sourceMappingURL=container-logs.js.map