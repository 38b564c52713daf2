/**
 * The small, strict HTTP/1.1 message parsing the router's fast path needs,
 * as pure functions over bytes.
 *
 * Requests: only plain, unambiguous HTTP/1.1 heads are accepted (origin-form
 * target, token header names, no obs-fold, no bare CR or LF, one Host, at
 * most one numeric Content-Length, no Transfer-Encoding, Upgrade or Expect).
 * Anything else returns null and the connection is handed to node:http,
 * whose llhttp parser answers it (or rejects it with 400): the fast path
 * never has to decide an ambiguous case, which is where request smuggling
 * lives (test/security/router-differential.test.ts holds this against
 * llhttp). The head is rewritten in the same pass by the rules of
 * forwarding.ts: hop-by-hop headers out, never the framing ones,
 * X-Forwarded-* set by the caller.
 *
 * Responses from apps are read liberally, as nginx does (bare-LF lines,
 * HTTP/1.0, bodies until close), parsed for framing (Content-Length,
 * chunked, or until close) and rewritten the same way; ChunkedScanner finds
 * the end of a chunked body without decoding it, so it passes through byte
 * for byte.
 */

import { connectionListed, HOP_BY_HOP, ROUTER_SET } from './forwarding.js';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Bytes llhttp refuses in a header value (HTAB, SP, VCHAR and obs-text are allowed). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Origin-form target of printable ASCII only, as llhttp's strict mode wants it. */
const REQUEST_LINE = /^([A-Z]+) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const DIGITS = /^\d{1,15}$/;

/** Methods the fast path takes; any other goes to node:http, which knows which llhttp accepts. */
const FAST_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

export const MAX_HEAD_BYTES = 16 * 1024;
/** Most header lines in a request head; more get 431 (from node:http, which the fast path hands them to). */
export const MAX_HEADERS = 100;

export interface RequestHead {
  method: string;
  target: string;
  host: string;
  /** Body length in bytes (0 when there is none). */
  contentLength: number;
  /** The client asked to close after this exchange. */
  close: boolean;
  /** Prior X-Forwarded-For, extended only when the client is a trusted proxy. */
  forwardedFor: string | null;
  /** The client prefers HTML error pages. */
  wantsHtml: boolean;
  /** Request line and kept header lines, each ending in CRLF (no final blank line). */
  head: string;
  /** Where in the client's bytes the body starts (set by frameRequest). */
  bodyStart: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * The fast path's framing of the next request in a client's bytes: the
 * parsed head (its body is the `contentLength` bytes from `bodyStart`),
 * null when the request is not for the fast path (node:http takes the
 * connection from here), or undefined when the head is not complete yet.
 * This is what the differential test holds against llhttp.
 */
export function frameRequest(buf: Buffer): RequestHead | null | undefined {
  const end = buf.indexOf(CRLFCRLF);
  if (end === -1) return buf.length > MAX_HEAD_BYTES ? null : undefined;
  if (end > MAX_HEAD_BYTES) return null;
  const head = parseRequestHead(buf.toString('latin1', 0, end));
  if (head !== null) head.bodyStart = end + 4;
  return head;
}

/** Keeps the lines whose header name is not listed. */
function dropListed(lines: string[], names: string[], listed: Set<string>): string {
  let out = '';
  for (let i = 0; i < lines.length; i++) if (!listed.has(names[i]!)) out += lines[i]!;
  return out;
}

/**
 * A header value without the optional whitespace around it. Only SP and
 * HTAB are optional whitespace (RFC 9110 §5.6.3); String#trim would also eat
 * \v, \f, NBSP and friends and turn `5\v` into a length llhttp refuses.
 */
export function owsTrim(line: string, from: number): string {
  let a = from;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === 0x20 || line.charCodeAt(a) === 0x09)) a++;
  while (b > a && (line.charCodeAt(b - 1) === 0x20 || line.charCodeAt(b - 1) === 0x09)) b--;
  return line.slice(a, b);
}

/**
 * Parses and rewrites a request head (`text` is the head without its final
 * CRLFCRLF, decoded as latin1). Null means: not for the fast path.
 */
export function parseRequestHead(text: string): RequestHead | null {
  const lines = text.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m || lines.length > MAX_HEADERS + 1 || !FAST_METHODS.has(m[1]!)) return null;
  let head = `${lines[0]}\r\n`;
  let host: string | null = null;
  let contentLength = -1;
  let close = false;
  let forwardedFor: string | null = null;
  let wantsHtml = false;
  let listed: Set<string> | null = null;
  const kept: string[] = [];
  const keptNames: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null;
    const value = owsTrim(line, colon + 1);
    if (BAD_VALUE.test(value)) return null;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        if (host !== null || value === '') return null;
        host = value;
        continue;
      case 'content-length':
        // llhttp allows SP but not HTAB after the digits: take only what it takes the same way.
        if (contentLength !== -1 || !DIGITS.test(value) || line.charCodeAt(line.length - 1) === 0x09) return null;
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return null;
      case 'connection': {
        const v = value.toLowerCase();
        if (v.includes('upgrade')) return null;
        if (/(^|,)[ \t]*close[ \t]*(,|$)/.test(v)) close = true;
        listed = connectionListed(value, listed);
        continue;
      }
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'accept':
        if (value.includes('text/html')) wantsHtml = true;
        break;
    }
    if (HOP_BY_HOP.has(lower) || ROUTER_SET.has(lower)) continue;
    const l = `${line}\r\n`;
    if (listed === null) head += l;
    kept.push(l);
    keptNames.push(lower);
  }
  if (host === null) return null;
  if (listed !== null) head = `${lines[0]}\r\n${dropListed(kept, keptNames, listed)}`;
  return { method: m[1]!, target: m[2]!, host, contentLength: contentLength === -1 ? 0 : contentLength, close, forwardedFor, wantsHtml, head, bodyStart: 0 };
}

export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export interface ResponseHead {
  status: number;
  /** Status line and kept header lines, each ending in CRLF (no final blank line, no Connection, no Transfer-Encoding unless chunked). */
  head: string;
  framing: BodyFraming;
  /** The app will close this connection after the response. */
  close: boolean;
  /** Seconds the app keeps an idle connection open, from its Keep-Alive header. */
  keepAliveSeconds: number | null;
  /** Transfer codings of a body that ends at close (e.g. `gzip`), to announce before a `chunked` the router adds. */
  codings: string | null;
}

/**
 * Where the body after an app's response head starts in `buf`, or -1 if the
 * blank line has not arrived. Lines may end in CRLF or a bare LF, as nginx
 * and curl accept (busybox httpd's CGI answers with bare LFs after its
 * status line). headTextEnd() gives the end of the head text.
 */
export function responseHeadEnd(buf: Buffer): number {
  let i = buf.indexOf(0x0a);
  while (i !== -1) {
    const n = buf[i + 1];
    if (n === 0x0a) return i + 2;
    if (n === 0x0d) {
      const n2 = buf[i + 2];
      if (n2 === 0x0a) return i + 3;
      if (n2 === undefined) return -1;
    }
    if (n === undefined) return -1;
    i = buf.indexOf(0x0a, i + 1);
  }
  return -1;
}

/** The end of the head text (its last line, without line end) given where the body starts. */
export function headTextEnd(buf: Buffer, bodyStart: number): number {
  // The blank line is LF or CRLF; the line before it ends in LF or CRLF too.
  const lf = buf[bodyStart - 2] === 0x0d ? bodyStart - 3 : bodyStart - 2;
  return buf[lf - 1] === 0x0d ? lf - 1 : lf;
}

/**
 * Parses and rewrites an app's response head (without its blank line;
 * lines end in CRLF or LF). Returns an error message for a malformed one.
 * `method` decides whether a body follows (HEAD: never).
 */
export function parseResponseHead(text: string, method: string): ResponseHead | string {
  let lines = text.split('\r\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.includes('\n')) {
      // Bare LFs (rare): split again on LF alone.
      lines = text.split('\n');
      for (let j = 0; j < lines.length; j++) {
        const l = lines[j]!;
        if (l.charCodeAt(l.length - 1) === 0x0d) lines[j] = l.slice(0, -1);
      }
      break;
    }
  }
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m) return `malformed status line ${JSON.stringify(lines[0]!.slice(0, 80))}`;
  const status = Number(m[2]);
  const http10 = m[1] === '0';
  const statusLine = `HTTP/1.1 ${m[2]} ${m[3] ?? ''}\r\n`;
  let head = statusLine;
  let contentLength = -1;
  let chunked = false;
  let transferEncoding: string | null = null;
  let close = http10;
  let keepAliveSeconds: number | null = null;
  let listed: Set<string> | null = null;
  const kept: string[] = [];
  const keptNames: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return `malformed header line ${JSON.stringify(line.slice(0, 80))}`;
    const lower = line.slice(0, colon).toLowerCase();
    const value = owsTrim(line, colon + 1);
    if (BAD_VALUE.test(value)) return `control character in header ${lower}`;
    switch (lower) {
      case 'content-length':
        if (!DIGITS.test(value) || (contentLength !== -1 && contentLength !== Number(value))) return `bad content-length ${JSON.stringify(value)}`;
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
        chunked = /(^|,)[ \t]*chunked[ \t]*$/i.test(transferEncoding);
        continue;
      case 'connection': {
        const v = value.toLowerCase();
        if (v === 'keep-alive') {
          if (http10) close = false;
          continue;
        }
        if (/(^|,)[ \t]*close[ \t]*(,|$)/.test(v)) close = true;
        else if (http10 && /(^|,)[ \t]*keep-alive[ \t]*(,|$)/.test(v)) close = false;
        listed = connectionListed(value, listed);
        continue;
      }
      case 'keep-alive': {
        const t = /timeout=(\d+)/i.exec(value);
        if (t) keepAliveSeconds = Number(t[1]);
        continue;
      }
    }
    if (HOP_BY_HOP.has(lower)) continue;
    const l = `${line}\r\n`;
    if (listed === null) head += l;
    kept.push(l);
    keptNames.push(lower);
  }
  if (listed !== null) head = `${statusLine}${dropListed(kept, keptNames, listed)}`;
  let framing: BodyFraming;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = { kind: 'none' };
  else if (transferEncoding !== null) framing = chunked ? { kind: 'chunked' } : { kind: 'close' };
  else if (contentLength !== -1) framing = { kind: 'length', length: contentLength };
  else framing = { kind: 'close' };
  if (framing.kind === 'close') close = true;
  if (transferEncoding !== null) {
    // A Content-Length next to Transfer-Encoding is dropped (RFC 9112 §6.3); the coding passes through.
    head = head.replace(/^content-length:[^\r]*\r\n/gim, '');
    if (framing.kind === 'chunked') head += `Transfer-Encoding: ${transferEncoding}\r\n`;
  }
  const codings = framing.kind === 'close' && transferEncoding !== null ? transferEncoding : null;
  return { status, head, framing, close, keepAliveSeconds, codings };
}

const enum ChunkState {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

/**
 * Follows a chunked body as it streams, without decoding it: feed() says
 * where in a buffer the body ends (or -1 if it goes on), so the bytes pass
 * through unchanged and the connection can be reused right after.
 */
export class ChunkedScanner {
  private state = ChunkState.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;

  /**
   * Index just past the end of the body in `buf` (from `start`), -1 if not
   * there yet; throws on malformed framing. `data`, when given, gets each
   * piece of chunk data (the decoded body).
   */
  feed(buf: Buffer, start = 0, data?: (piece: Buffer) => void): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      const c = buf[i]!;
      switch (this.state) {
        case ChunkState.Size: {
          const v = hexValue(c);
          if (v >= 0) {
            // Beyond 2^53 a number loses bytes: refuse rather than miscount (llhttp refuses past 2^64).
            if (this.size > (Number.MAX_SAFE_INTEGER - v) / 16) throw new Error('chunk size too large');
            this.size = this.size * 16 + v;
            this.digits++;
          } else if (this.digits === 0) {
            throw new Error('chunk size expected');
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.state = ChunkState.Extension;
          } else if (c === 0x0d) {
            this.state = ChunkState.SizeLf;
          } else throw new Error('bad character in chunk size');
          i++;
          break;
        }
        case ChunkState.Extension:
          if (c === 0x0d) this.state = ChunkState.SizeLf;
          else if (c === 0x0a) throw new Error('bare LF in chunk extension');
          i++;
          break;
        case ChunkState.SizeLf:
          if (c !== 0x0a) throw new Error('CR without LF after chunk size');
          i++;
          if (this.size === 0) this.state = ChunkState.TrailerStart;
          else {
            this.remaining = this.size;
            this.state = ChunkState.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case ChunkState.Data: {
          const take = Math.min(this.remaining, n - i);
          if (data !== undefined && take > 0) data(buf.subarray(i, i + take));
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = ChunkState.DataCr;
          break;
        }
        case ChunkState.DataCr:
          if (c !== 0x0d) throw new Error('chunk data longer than its size');
          this.state = ChunkState.DataLf;
          i++;
          break;
        case ChunkState.DataLf:
          if (c !== 0x0a) throw new Error('CR without LF after chunk data');
          this.state = ChunkState.Size;
          i++;
          break;
        case ChunkState.TrailerStart:
          this.state = c === 0x0d ? ChunkState.FinalLf : ChunkState.TrailerLine;
          if (c === 0x0a) throw new Error('bare LF in trailers');
          i++;
          break;
        case ChunkState.TrailerLine:
          if (c === 0x0d) this.state = ChunkState.TrailerLf;
          else if (c === 0x0a) throw new Error('bare LF in trailers');
          i++;
          break;
        case ChunkState.TrailerLf:
          if (c !== 0x0a) throw new Error('CR without LF in trailers');
          this.state = ChunkState.TrailerStart;
          i++;
          break;
        case ChunkState.FinalLf:
          if (c !== 0x0a) throw new Error('CR without LF at the end of the body');
          this.state = ChunkState.Done;
          return i + 1;
        case ChunkState.Done:
          return i;
      }
    }
    return -1;
  }

  get done(): boolean {
    return this.state === ChunkState.Done;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
