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
 * lives. The head is rewritten in the same pass: hop-by-hop headers out,
 * X-Forwarded-* set by the caller.
 *
 * Responses from apps are parsed for framing (Content-Length, chunked, or
 * until close) and rewritten the same way; ChunkedScanner finds the end of
 * a chunked body without decoding it, so it passes through byte for byte.
 */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\/[^\x00-\x20\x7f]*) HTTP\/1\.1$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const DIGITS = /^\d{1,15}$/;
/** Request headers never forwarded: hop-by-hop, or set by the router itself. */
const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-for', 'host']);
/** Response headers never forwarded (Transfer-Encoding is handled with the framing). */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'transfer-encoding']);
/** Connection options that are not header names. */
const CONNECTION_OPTIONS = new Set(['close', 'keep-alive', 'upgrade', '']);
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEADERS = 100;
/** Extra header names a Connection header lists (beyond close/keep-alive/upgrade). */
function listedHeaders(value, into) {
    for (const raw of value.split(',')) {
        const t = raw.trim().toLowerCase();
        if (CONNECTION_OPTIONS.has(t))
            continue;
        (into ??= new Set()).add(t);
    }
    return into;
}
/** Keeps the lines whose header name is not listed. */
function dropListed(lines, names, listed) {
    let out = '';
    for (let i = 0; i < lines.length; i++)
        if (!listed.has(names[i]))
            out += lines[i];
    return out;
}
/**
 * Parses and rewrites a request head (`text` is the head without its final
 * CRLFCRLF, decoded as latin1). Null means: not for the fast path.
 */
export function parseRequestHead(text) {
    const lines = text.split('\r\n');
    const m = REQUEST_LINE.exec(lines[0]);
    if (!m || lines.length > MAX_HEADERS + 1)
        return null;
    let head = `${lines[0]}\r\n`;
    let host = null;
    let contentLength = -1;
    let close = false;
    let forwardedFor = null;
    let wantsHtml = false;
    let listed = null;
    const kept = [];
    const keptNames = [];
    for (let i = 1; i < lines.length; i++) {
        const line = lines[i];
        const colon = line.indexOf(':');
        if (colon <= 0)
            return null;
        const name = line.slice(0, colon);
        if (!TOKEN.test(name))
            return null;
        const value = line.slice(colon + 1).trim();
        if (BAD_VALUE.test(value))
            return null;
        const lower = name.toLowerCase();
        switch (lower) {
            case 'host':
                if (host !== null || value === '')
                    return null;
                host = value;
                continue;
            case 'content-length':
                if (contentLength !== -1 || !DIGITS.test(value))
                    return null;
                contentLength = Number(value);
                break;
            case 'transfer-encoding':
            case 'upgrade':
            case 'expect':
                return null;
            case 'connection': {
                const v = value.toLowerCase();
                if (v.includes('upgrade'))
                    return null;
                if (/(^|,)\s*close\s*(,|$)/.test(v))
                    close = true;
                listed = listedHeaders(value, listed);
                continue;
            }
            case 'x-forwarded-for':
                forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
                continue;
            case 'accept':
                if (value.includes('text/html'))
                    wantsHtml = true;
                break;
        }
        if (REQUEST_DROP.has(lower))
            continue;
        const l = `${line}\r\n`;
        if (listed === null)
            head += l;
        kept.push(l);
        keptNames.push(lower);
    }
    if (host === null)
        return null;
    if (listed !== null)
        head = `${lines[0]}\r\n${dropListed(kept, keptNames, listed)}`;
    return { method: m[1], target: m[2], host, contentLength: contentLength === -1 ? 0 : contentLength, close, forwardedFor, wantsHtml, head };
}
/**
 * Parses and rewrites an app's response head. Returns an error message for
 * a malformed one. `method` decides whether a body follows (HEAD: never).
 */
export function parseResponseHead(text, method) {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]);
    if (!m)
        return `malformed status line ${JSON.stringify(lines[0].slice(0, 80))}`;
    const status = Number(m[2]);
    const http10 = m[1] === '0';
    const statusLine = `HTTP/1.1 ${m[2]} ${m[3] ?? ''}\r\n`;
    let head = statusLine;
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = null;
    let close = http10;
    let keepAliveSeconds = null;
    let listed = null;
    const kept = [];
    const keptNames = [];
    for (let i = 1; i < lines.length; i++) {
        const line = lines[i];
        const colon = line.indexOf(':');
        if (colon <= 0 || !TOKEN.test(line.slice(0, colon)))
            return `malformed header line ${JSON.stringify(line.slice(0, 80))}`;
        const lower = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (BAD_VALUE.test(value))
            return `control character in header ${lower}`;
        switch (lower) {
            case 'content-length':
                if (!DIGITS.test(value) || (contentLength !== -1 && contentLength !== Number(value)))
                    return `bad content-length ${JSON.stringify(value)}`;
                contentLength = Number(value);
                break;
            case 'transfer-encoding':
                transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
                chunked = /(^|,)\s*chunked\s*$/i.test(transferEncoding);
                continue;
            case 'connection': {
                const v = value.toLowerCase();
                if (v === 'keep-alive') {
                    if (http10)
                        close = false;
                    continue;
                }
                if (/(^|,)\s*close\s*(,|$)/.test(v))
                    close = true;
                else if (http10 && /(^|,)\s*keep-alive\s*(,|$)/.test(v))
                    close = false;
                listed = listedHeaders(value, listed);
                continue;
            }
            case 'keep-alive': {
                const t = /timeout=(\d+)/i.exec(value);
                if (t)
                    keepAliveSeconds = Number(t[1]);
                continue;
            }
        }
        if (RESPONSE_DROP.has(lower))
            continue;
        const l = `${line}\r\n`;
        if (listed === null)
            head += l;
        kept.push(l);
        keptNames.push(lower);
    }
    if (listed !== null)
        head = `${statusLine}${dropListed(kept, keptNames, listed)}`;
    let framing;
    if (method === 'HEAD' || status < 200 || status === 204 || status === 304)
        framing = { kind: 'none' };
    else if (transferEncoding !== null)
        framing = chunked ? { kind: 'chunked' } : { kind: 'close' };
    else if (contentLength !== -1)
        framing = { kind: 'length', length: contentLength };
    else
        framing = { kind: 'close' };
    if (framing.kind === 'close')
        close = true;
    if (transferEncoding !== null) {
        // A Content-Length next to Transfer-Encoding is dropped (RFC 9112 §6.3); the coding passes through.
        head = head.replace(/^content-length:[^\r]*\r\n/gim, '');
        if (framing.kind === 'chunked')
            head += `Transfer-Encoding: ${transferEncoding}\r\n`;
    }
    return { status, head, framing, close, keepAliveSeconds };
}
var ChunkState;
(function (ChunkState) {
    ChunkState[ChunkState["Size"] = 0] = "Size";
    ChunkState[ChunkState["Extension"] = 1] = "Extension";
    ChunkState[ChunkState["SizeLf"] = 2] = "SizeLf";
    ChunkState[ChunkState["Data"] = 3] = "Data";
    ChunkState[ChunkState["DataCr"] = 4] = "DataCr";
    ChunkState[ChunkState["DataLf"] = 5] = "DataLf";
    ChunkState[ChunkState["TrailerStart"] = 6] = "TrailerStart";
    ChunkState[ChunkState["TrailerLine"] = 7] = "TrailerLine";
    ChunkState[ChunkState["TrailerLf"] = 8] = "TrailerLf";
    ChunkState[ChunkState["FinalLf"] = 9] = "FinalLf";
    ChunkState[ChunkState["Done"] = 10] = "Done";
})(ChunkState || (ChunkState = {}));
/**
 * Follows a chunked body as it streams, without decoding it: feed() says
 * where in a buffer the body ends (or -1 if it goes on), so the bytes pass
 * through unchanged and the connection can be reused right after.
 */
export class ChunkedScanner {
    state = ChunkState.Size;
    size = 0;
    digits = 0;
    remaining = 0;
    /** Index just past the end of the body in `buf` (from `start`), -1 if not there yet; throws on malformed framing. */
    feed(buf, start = 0) {
        let i = start;
        const n = buf.length;
        while (i < n) {
            const c = buf[i];
            switch (this.state) {
                case ChunkState.Size: {
                    const v = hexValue(c);
                    if (v >= 0) {
                        if (++this.digits > 15)
                            throw new Error('chunk size too large');
                        this.size = this.size * 16 + v;
                    }
                    else if (this.digits === 0) {
                        throw new Error('chunk size expected');
                    }
                    else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
                        this.state = ChunkState.Extension;
                    }
                    else if (c === 0x0d) {
                        this.state = ChunkState.SizeLf;
                    }
                    else
                        throw new Error('bad character in chunk size');
                    i++;
                    break;
                }
                case ChunkState.Extension:
                    if (c === 0x0d)
                        this.state = ChunkState.SizeLf;
                    else if (c === 0x0a)
                        throw new Error('bare LF in chunk extension');
                    i++;
                    break;
                case ChunkState.SizeLf:
                    if (c !== 0x0a)
                        throw new Error('CR without LF after chunk size');
                    i++;
                    if (this.size === 0)
                        this.state = ChunkState.TrailerStart;
                    else {
                        this.remaining = this.size;
                        this.state = ChunkState.Data;
                    }
                    this.size = 0;
                    this.digits = 0;
                    break;
                case ChunkState.Data: {
                    const take = Math.min(this.remaining, n - i);
                    this.remaining -= take;
                    i += take;
                    if (this.remaining === 0)
                        this.state = ChunkState.DataCr;
                    break;
                }
                case ChunkState.DataCr:
                    if (c !== 0x0d)
                        throw new Error('chunk data longer than its size');
                    this.state = ChunkState.DataLf;
                    i++;
                    break;
                case ChunkState.DataLf:
                    if (c !== 0x0a)
                        throw new Error('CR without LF after chunk data');
                    this.state = ChunkState.Size;
                    i++;
                    break;
                case ChunkState.TrailerStart:
                    this.state = c === 0x0d ? ChunkState.FinalLf : ChunkState.TrailerLine;
                    if (c === 0x0a)
                        throw new Error('bare LF in trailers');
                    i++;
                    break;
                case ChunkState.TrailerLine:
                    if (c === 0x0d)
                        this.state = ChunkState.TrailerLf;
                    else if (c === 0x0a)
                        throw new Error('bare LF in trailers');
                    i++;
                    break;
                case ChunkState.TrailerLf:
                    if (c !== 0x0a)
                        throw new Error('CR without LF in trailers');
                    this.state = ChunkState.TrailerStart;
                    i++;
                    break;
                case ChunkState.FinalLf:
                    if (c !== 0x0a)
                        throw new Error('CR without LF at the end of the body');
                    this.state = ChunkState.Done;
                    return i + 1;
                case ChunkState.Done:
                    return i;
            }
        }
        return -1;
    }
    get done() {
        return this.state === ChunkState.Done;
    }
}
function hexValue(c) {
    if (c >= 0x30 && c <= 0x39)
        return c - 0x30;
    if (c >= 0x61 && c <= 0x66)
        return c - 0x57;
    if (c >= 0x41 && c <= 0x46)
        return c - 0x37;
    return -1;
}
//# sourceMappingURL=http1.js.map
export function frameRequest(buf) {
  const end = buf.indexOf(Buffer.from('\r\n\r\n'));
  if (end === -1) return buf.length > MAX_HEAD_BYTES ? null : undefined;
  if (end > MAX_HEAD_BYTES) return null;
  const head = parseRequestHead(buf.toString('latin1', 0, end));
  if (head !== null) head.bodyStart = end + 4;
  return head;
}
