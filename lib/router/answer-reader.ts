/**
 * How an answer from an app is read and framed, in one place for both proxy
 * engines (fast-exchange.ts, the raw-socket fast path, and
 * general-exchange.ts, the node:http path). Both read the app's answer from
 * a raw socket with http1.ts's parser, and they must agree on every rule of
 * it — how large a head may grow, which informational answers are skipped,
 * where a body ends, when the app connection is out of step and must not be
 * reused — or one engine could be smuggled past where the other is not.
 * What differs between the engines stays in them: how they write to their
 * client (a raw socket with the app's own framing, or a ServerResponse that
 * frames for itself), timers, retries.
 *
 * The reader is one object per exchange, with no closures and no allocation
 * per chunk (body() returns a view of the bytes it was given and sets
 * `done`), because the fast path runs through it for every request.
 */
import type net from 'node:net';
import { ChunkedScanner, headTextEnd, parseResponseHead, responseHeadEnd, type BodyFraming, type ResponseHead } from './http1.js';

/** An answer head larger than this is refused. */
export const MAX_RESPONSE_HEAD = 64 * 1024;
/** Idle app connections are trusted this long when the app does not say (Node apps close after 5 s; the clock is coarse, 1 s). */
export const DEFAULT_UPSTREAM_IDLE_MS = 3000;
/** The end of a chunked body without trailers. */
export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

const NO_BODY: BodyFraming = { kind: 'none' };

/** Reads one app answer: its head (after any informational ones), then its body up to where the framing ends it. */
export class AnswerReader {
  /** Head bytes that arrived without the end of the head yet (null: none). */
  partial: Buffer | null = null;
  /** How the body of the final answer is delimited. */
  framing: BodyFraming = NO_BODY;
  /** The app connection must not be reused: the app says it closes, or it sent bytes past the end of its answer. */
  appWillClose = false;
  /** How long the app keeps its idle connection open, less a margin. */
  keepAliveMs = DEFAULT_UPSTREAM_IDLE_MS;
  /** Body bytes that arrived with the final head (null: none); give them to body() unless `done`. */
  rest: Buffer | null = null;
  /** The answer is complete (a bodiless answer is complete with its head). */
  done = false;
  /** Why head() or body() refused the answer: an error code for forwarding.ts's rules, and words for the log and error page. */
  failCode = '';
  failMessage = '';
  private left = 0;
  private scanner: ChunkedScanner | null = null;

  /** `method`: the request's, which decides whether a body follows (HEAD: never). */
  constructor(private readonly method: string) {}

  /** Forgets a partial head, before the request is tried again on another connection. */
  reset(): void {
    this.partial = null;
  }

  /**
   * Feeds answer bytes before the final head. Returns the final head once it
   * is complete (`framing`, `appWillClose`, `keepAliveMs`, `rest` and `done`
   * are then set), null while more bytes are needed, false if the answer is
   * refused (`failCode`, `failMessage`).
   */
  head(d: Buffer): ResponseHead | null | false {
    let buf = this.partial === null ? d : Buffer.concat([this.partial, d]);
    for (;;) {
      const bodyStart = responseHeadEnd(buf);
      if (bodyStart === -1) {
        if (buf.length > MAX_RESPONSE_HEAD) return this.fail('EHEAD', 'the answer head is too large');
        this.partial = buf;
        return null;
      }
      const head = parseResponseHead(buf.toString('latin1', 0, headTextEnd(buf, bodyStart)), this.method);
      if (typeof head === 'string') return this.fail('EPROTO', `invalid answer: ${head}`);
      const rest = bodyStart < buf.length ? buf.subarray(bodyStart) : null;
      if (head.status < 200) {
        // Informational answers (103 Early Hints...) are not needed by the client; the final one follows.
        if (head.status === 101) return this.fail('EPROTO', 'switched protocols without being asked');
        if (rest === null) {
          this.partial = null;
          return null;
        }
        buf = rest;
        continue;
      }
      this.partial = null;
      this.framing = head.framing;
      this.appWillClose = head.close;
      if (head.keepAliveSeconds !== null) this.keepAliveMs = Math.max(0, head.keepAliveSeconds * 1000 - 2000);
      if (head.framing.kind === 'length') this.left = head.framing.length;
      else if (head.framing.kind === 'chunked') this.scanner = new ChunkedScanner();
      this.rest = rest;
      this.done = head.framing.kind === 'none' || (head.framing.kind === 'length' && head.framing.length === 0);
      // Bytes after a bodiless answer: the connection is out of step, do not trust it.
      if (this.done && rest !== null) this.appWillClose = true;
      return head;
    }
  }

  /**
   * The part of `d` that belongs to the body, as the app framed it (a view,
   * not a copy); sets `done` when the body ends in it, and `appWillClose`
   * when bytes follow the end. Null if the framing is broken (`failCode`,
   * `failMessage`). `decoded`, for a chunked body, gets the chunk data.
   */
  body(d: Buffer, decoded?: (piece: Buffer) => void): Buffer | null {
    switch (this.framing.kind) {
      case 'length': {
        const take = Math.min(this.left, d.length);
        this.left -= take;
        if (take < d.length) this.appWillClose = true;
        if (this.left === 0) this.done = true;
        return take === d.length ? d : d.subarray(0, take);
      }
      case 'chunked': {
        let end: number;
        try {
          end = this.scanner!.feed(d, 0, decoded);
        } catch (err) {
          this.fail('EPROTO', `invalid chunked answer: ${(err as Error).message}`);
          return null;
        }
        if (end === -1) return d;
        if (end < d.length) this.appWillClose = true;
        this.done = true;
        return end === d.length ? d : d.subarray(0, end);
      }
      default:
        return d;
    }
  }

  /** The body ends when the app closes the connection: the app's end is the answer's end. */
  get endsAtClose(): boolean {
    return this.framing.kind === 'close';
  }

  private fail(code: string, message: string): false {
    this.failCode = code;
    this.failMessage = message;
    return false;
  }
}

/**
 * The Transfer-Encoding line for an answer whose body ends at close and that
 * the router re-chunks for an HTTP/1.1 client (as nginx does), so the client
 * connection can stay open; the app's own codings (gzip...) come first.
 */
export function rechunkedLine(head: ResponseHead): string {
  return `transfer-encoding: ${head.codings === null ? '' : `${head.codings}, `}chunked\r\n`;
}

/** Writes `chunk` to `s` as one chunk of a chunked body, in one write; the result of the write (false: buffer full). */
export function writeChunk(s: net.Socket, chunk: Buffer): boolean {
  // An empty chunk would read as the last one.
  if (chunk.length === 0) return true;
  s.cork();
  s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
  s.write(chunk);
  const flowing = s.write('\r\n', 'latin1');
  s.uncork();
  return flowing;
}
