/**
 * Traffic of the nginx data plane, read back from nginx's request log into
 * the same counters and access log the Node engine fills per request.
 *
 * nginx writes one JSON array per proxied request of a container route
 * (log_format `vk escape=json`, fields in LOG_FIELDS of nginx-config.ts),
 * unbuffered, so a line is in the file once its answer left and counters
 * read on demand are exact: a request costs nginx one write(2) and the host
 * process a split of the line (fieldsOf), read in chunks every 100 ms (and
 * on demand).
 * The first field names the route by `<generation>.<index>`: lines of old
 * workers still finishing after a reload are counted for the route they
 * served. escape=json quotes every byte a client controls, so no request can
 * end a line early or add a field.
 *
 * The file is rotated by size: renamed, nginx told to reopen it (USR1), the
 * old one read to its end once the workers flushed, then removed.
 */
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { ContainerRoute, RoutedEndpoint } from './route-table.js';
import { Field, type TrafficCounters } from './traffic-counters.js';
import { LOG_FIELDS } from './nginx-config.js';

/** Generations of route ids kept for late lines (a reload's old workers may write for up to 30 s). */
const KEEP_GENERATIONS = 16;
/** The file is rotated past this size. */
export const ROTATE_BYTES = 16 * 1024 * 1024;
const CHUNK = 256 * 1024;
/** A line longer than this is no line nginx wrote for us: dropped. */
const MAX_LINE = 64 * 1024;

interface KnownRoute {
  route: ContainerRoute;
  byAddr: Map<string, RoutedEndpoint>;
}

/** One request as nginx logged it. */
export interface NginxRequest {
  route: string;
  /** The upstreams nginx tried (`ip:port`), in order; the last one gave the answer (or failed last). */
  tries: string[];
  /** Per try: whether the app sent an answer head. */
  answeredTries: boolean[];
  status: number;
  /** No answer head came from an app: nginx answered itself (502, 504). */
  own: boolean;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  method: string;
  host: string;
  target: string;
}

/** What JSON writes escaped (a backslash) or forbids raw in a string (control bytes): such lines take JSON.parse. */
const UNSPLITTABLE = /[\\\x00-\x1f]/;

/**
 * The fields of a line: a JSON array of strings. A line without a backslash
 * holds no escaped byte (escape=json writes `"` and `\` and every control
 * byte escaped), so no field contains a quote and splitting at `","` is
 * exact (and equal to JSON.parse's result), at a fraction of its cost (nginx writes a line per
 * request: tens of thousands a second are read on a busy router). Any other
 * line goes through JSON.parse.
 */
export function fieldsOf(line: string): string[] | null {
  if (line.length > 4 && line.charCodeAt(0) === 0x5b && line.charCodeAt(1) === 0x22 && line.endsWith('"]')) {
    const inner = line.slice(2, -2);
    // No escape and no control byte: then a quote can only be part of a `","` separator (checked after the split).
    if (!UNSPLITTABLE.test(inner)) {
      const fields = inner.split('","');
      if (!fields.some((f) => f.includes('"'))) return fields;
    }
  }
  let f: unknown;
  try {
    f = JSON.parse(line);
  } catch {
    return null;
  }
  return Array.isArray(f) && f.every((x) => typeof x === 'string') ? (f as string[]) : null;
}

/** Parses a line; null for anything that is not one of ours. */
export function parseRequestLine(line: string): NginxRequest | null {
  const f = fieldsOf(line);
  if (!f || f.length !== LOG_FIELDS.length) return null;
  const [route, addrs, status, headerTimes, requestTime, length, sent, method, host, target] = f as [string, string, string, string, string, string, string, string, string, string];
  const st = Number(status);
  if (!route || !Number.isInteger(st)) return null;
  const tries = listOf(addrs);
  const times = tries.length === 1 && headerTimes.indexOf(',') === -1 && headerTimes.indexOf(':') === -1 ? [headerTimes.trim()] : listOf(headerTimes);
  const answeredTries = tries.map((_, i) => times[i] !== undefined && times[i] !== '-' && times[i] !== '');
  return {
    route,
    tries,
    answeredTries,
    status: st,
    own: tries.length === 0 || !answeredTries[answeredTries.length - 1],
    ms: (Number(requestTime) || 0) * 1000,
    bytesIn: Number(length) || 0,
    bytesOut: Number(sent) || 0,
    method,
    host,
    target,
  };
}

/** The tries of nginx's `a, b : c` lists (tries are separated by ', ', internal redirects by ' : ': the last group counts). */
function listOf(list: string): string[] {
  // One try, no redirect: the common case, without a split.
  if (list.indexOf(',') === -1 && list.indexOf(' : ') === -1) {
    const one = list.trim();
    return one === '' || one === '-' ? [] : [one];
  }
  const redirect = list.lastIndexOf(' : ');
  const group = (redirect === -1 ? list : list.slice(redirect + 3)).trim();
  return group === '' || group === '-' ? [] : group.split(', ').map((x) => x.trim());
}

const addrOf = (e: { ip: string; hostPort: number }): string => (e.ip.includes(':') ? `[${e.ip}]:${e.hostPort}` : `${e.ip}:${e.hostPort}`);

export class NginxTraffic {
  private readonly generations = new Map<number, Map<string, KnownRoute>>();
  /** Lines that named no known route or did not parse (tests, diagnosis). */
  unknown = 0;
  counted = 0;

  constructor(private readonly counters: TrafficCounters | null) {}

  /** The route ids of a rendering (nginx-config.ts), from the generation it numbers. */
  register(generation: number, routes: Map<string, ContainerRoute>): void {
    const known = new Map<string, KnownRoute>();
    for (const [id, route] of routes) known.set(id, { route, byAddr: new Map(route.endpoints.map((e) => [addrOf(e), e])) });
    this.generations.set(generation, known);
    for (const g of this.generations.keys()) if (g <= generation - KEEP_GENERATIONS) this.generations.delete(g);
  }

  /** Counts one logged request. */
  line(text: string): void {
    const r = parseRequestLine(text);
    const gen = r ? Number(r.route.slice(0, r.route.indexOf('.'))) : NaN;
    const known = r ? this.generations.get(gen)?.get(r.route) : undefined;
    if (!r || !known) {
      this.unknown++;
      return;
    }
    this.counted++;
    const c = this.counters;
    const slotOf = (addr: string | undefined): number => (addr !== undefined ? known.byAddr.get(addr)?.slot : undefined) ?? known.route.slot;
    // As the Node engine counts: a connect error on each replica that took no connection, a retry on the one that answered.
    for (let i = 0; i < r.tries.length; i++) if (!r.answeredTries[i]) c?.add(slotOf(r.tries[i]), Field.ConnectErrors);
    const last = r.tries[r.tries.length - 1];
    if (!r.own && r.tries.length > 1) c?.add(slotOf(last), Field.Retries, r.tries.length - 1);
    // nginx's own 502/504 counts on the replica it tried last, the app's answer on the replica that gave it.
    c?.answered(slotOf(last), r.status, r.own, r.ms, r.bytesIn, r.bytesOut);
    const e = r.own || last === undefined ? undefined : known.byAddr.get(last);
    known.route.access?.record(known.route, e, r.method, r.target, r.host, r.status, r.ms, r.bytesIn, r.bytesOut, r.own);
  }
}

/**
 * Follows the log file: reads what was appended since the last call, hands
 * whole lines on, keeps a cut last line for the next read.
 */
export class LogFollower {
  private fh: FileHandle | undefined;
  private offset = 0;
  private rest = '';
  /** Keeps the bytes of a character cut at the end of a read for the next one. */
  private decoder = new StringDecoder('utf8');
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(
    private readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Reads to the current end; returns the bytes read. */
  async poll(): Promise<number> {
    if (!this.fh) {
      try {
        this.fh = await open(this.file, 'r');
      } catch {
        return 0; // nginx has not created it yet
      }
      this.offset = 0;
      this.rest = '';
      this.decoder = new StringDecoder('utf8');
    }
    let total = 0;
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buf, 0, CHUNK, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      total += bytesRead;
      const text = this.rest + this.decoder.write(this.buf.subarray(0, bytesRead));
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      if (this.rest.length > MAX_LINE) this.rest = '';
      for (const l of lines) if (l !== '') this.onLine(l);
    }
    return total;
  }

  /** The size read so far of the current file. */
  get position(): number {
    return this.offset;
  }

  /**
   * Rotates: renames the file, has nginx reopen its logs (`reopen`), waits
   * `settleMs` for the workers to flush into the old one, reads it to its end
   * and removes it. The next poll opens the new file.
   */
  async rotate(reopen: () => void, settleMs: number): Promise<void> {
    const old = `${this.file}.old`;
    // Open it first (if no poll did yet): what is read after the rename must be the old file.
    if (!this.fh) await this.poll();
    await rename(this.file, old);
    reopen();
    await new Promise((r) => setTimeout(r, settleMs));
    await this.poll();
    await this.fh?.close();
    this.fh = undefined;
    await rm(old, { force: true });
  }

  async close(): Promise<void> {
    await this.poll().catch(() => 0);
    await this.fh?.close();
    this.fh = undefined;
  }
}

/** The file's size now (0 when missing). */
export async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}
