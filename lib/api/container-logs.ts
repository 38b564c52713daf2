/**
 * Reading one container's log from the local Docker Engine, line by line.
 *
 * Docker frames a non-TTY container's log: 8 bytes (stream id, 3 zero bytes,
 * big-endian length) then the payload, and a frame may hold half a line or
 * several. FrameSplitter undoes both, incrementally, so a followed log is
 * turned into whole lines as they arrive. Lines carry Docker's own
 * timestamp, which is what lets logs of several replicas be merged in order.
 */
import type Docker from 'dockerode';
import { LABEL, ownerLabels, type Owner } from '../slave/containers.js';
import type { JobId } from '../store/records.js';

export interface LogLine {
  /** RFC 3339 with nanoseconds, as Docker wrote it ('' when unknown). */
  time: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

const STREAMS = { 1: 'stdout', 2: 'stderr' } as const;

/** Turns Docker's framed log bytes into lines, keeping partial frames and lines between chunks. */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);
  private readonly partial = { stdout: '', stderr: '' };

  constructor(
    private readonly onLine: (l: LogLine) => void,
    private readonly timestamps = true,
  ) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let i = 0;
    while (this.pending.length - i >= 8) {
      const kind = this.pending[i]!;
      const size = this.pending.readUInt32BE(i + 4);
      if (this.pending.length - i - 8 < size) break;
      const stream = STREAMS[kind as 1 | 2] ?? 'stdout';
      this.text(stream, this.pending.subarray(i + 8, i + 8 + size).toString('utf8'));
      i += 8 + size;
    }
    this.pending = this.pending.subarray(i);
  }

  /** Emits what is left of unterminated lines (the stream ended). */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.emit(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  private text(stream: 'stdout' | 'stderr', text: string): void {
    const parts = (this.partial[stream] + text).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const p of parts) this.emit(stream, p);
  }

  private emit(stream: 'stdout' | 'stderr', raw: string): void {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!this.timestamps) return this.onLine({ time: '', stream, line: text });
    const space = text.indexOf(' ');
    const stamp = space > 0 ? text.slice(0, space) : '';
    if (/^\d{4}-\d\d-\d\dT/.test(stamp)) this.onLine({ time: stamp, stream, line: text.slice(space + 1) });
    else this.onLine({ time: '', stream, line: text });
  }
}

/** The container of a job on this host: the running one, else the newest. */
export async function findJobContainer(docker: Docker, owner: Owner, job: JobId): Promise<string | undefined> {
  const list = await docker.listContainers({
    all: true,
    filters: {
      label: [
        ...ownerLabels(owner),
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

export interface ReadLogsOptions {
  follow: boolean;
  /** Lines from the end to start with; 'all' for everything. */
  tail: number | 'all';
  signal?: AbortSignal;
}

/**
 * A container's log as lines, read from Docker as the caller asks for them:
 * with a finite log (`-n all` of a big one) as well as a followed one, the
 * Docker socket is read only as fast as the lines are taken, so memory stays
 * at one socket chunk and a reader that stops reading pauses Docker. Ends
 * when the log ends (follow: the container stops) or the signal aborts.
 */
export async function* containerLogLines(docker: Docker, id: string, o: ReadLogsOptions): AsyncGenerator<LogLine> {
  const c = docker.getContainer(id);
  const stream = await new Promise<NodeJS.ReadableStream & { destroy(): void }>((resolve, reject) => {
    c.modem.dial(
      {
        path: `/containers/${id}/logs?`,
        method: 'GET',
        isStream: true,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
        // Docker takes tail=all; dockerode's types only know numbers.
        options: { stdout: true, stderr: true, timestamps: true, tail: o.tail, follow: o.follow },
      },
      (err: unknown, data: unknown) => (err ? reject(err as Error) : resolve(data as NodeJS.ReadableStream & { destroy(): void })),
    );
  });
  const abort = (): void => stream.destroy();
  if (o.signal?.aborted) abort();
  o.signal?.addEventListener('abort', abort, { once: true });
  let batch: LogLine[] = [];
  const splitter = new FrameSplitter((l) => batch.push(l));
  try {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        splitter.push(chunk);
        const lines = batch;
        batch = [];
        for (const l of lines) yield l;
      }
    } catch (err) {
      if (!o.signal?.aborted) throw err;
    }
    splitter.end();
    for (const l of batch) yield l;
  } finally {
    o.signal?.removeEventListener('abort', abort);
    stream.destroy();
  }
}
