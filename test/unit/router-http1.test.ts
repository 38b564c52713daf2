/**
 * The fast path's HTTP/1.1 parsing: which request heads it takes (and how
 * it rewrites them), which it leaves to node:http, how app responses are
 * framed and rewritten, and the chunked-body scanner on every split.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedScanner, headTextEnd, parseRequestHead, parseResponseHead, responseHeadEnd } from '../../lib/router/http1.js';

const head = (...lines: string[]): string => lines.join('\r\n');

describe('parseRequestHead: taken and rewritten', () => {
  test('a plain GET keeps its headers and drops the hop-by-hop and replaced ones', () => {
    const r = parseRequestHead(head(
      'GET /a?b=1 HTTP/1.1', 'Host: Shop.Example.com:8080', 'User-Agent: t', 'Connection: keep-alive, X-Hop', 'X-Hop: secret', 'Keep-Alive: 5',
      'TE: trailers', 'X-Forwarded-Proto: gopher', 'X-Forwarded-Host: evil', 'X-Forwarded-For: 1.2.3.4', 'x-forwarded-for: 5.6.7.8', 'Accept: text/html', 'Cookie: a=1',
    ));
    assert.ok(r);
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/a?b=1');
    assert.equal(r.host, 'Shop.Example.com:8080');
    assert.equal(r.contentLength, 0);
    assert.equal(r.close, false);
    assert.equal(r.forwardedFor, '1.2.3.4, 5.6.7.8');
    assert.equal(r.wantsHtml, true);
    assert.equal(r.head, 'GET /a?b=1 HTTP/1.1\r\nUser-Agent: t\r\nAccept: text/html\r\nCookie: a=1\r\n');
  });

  test('Connection: close is seen; a Content-Length body is announced and forwarded', () => {
    const r = parseRequestHead(head('POST /x HTTP/1.1', 'Host: a', 'Content-Length: 42', 'Connection: close'));
    assert.ok(r);
    assert.equal(r.close, true);
    assert.equal(r.contentLength, 42);
    assert.equal(r.head, 'POST /x HTTP/1.1\r\nContent-Length: 42\r\n');
  });

  test('a header listed in Connection before it appears is still dropped', () => {
    const r = parseRequestHead(head('GET / HTTP/1.1', 'Connection: x-late', 'Host: a', 'X-Late: 1', 'X-Keep: 2'));
    assert.equal(r?.head, 'GET / HTTP/1.1\r\nX-Keep: 2\r\n');
  });
});

describe('parseRequestHead: left to node:http (null)', () => {
  const cases: Array<[string, string]> = [
    ['HTTP/1.0', head('GET / HTTP/1.0', 'Host: a')],
    ['absolute-form target', head('GET http://a/ HTTP/1.1', 'Host: a')],
    ['asterisk target', head('OPTIONS * HTTP/1.1', 'Host: a')],
    ['two spaces in the request line', head('GET  / HTTP/1.1', 'Host: a')],
    ['no Host', head('GET / HTTP/1.1', 'Accept: */*')],
    ['two Hosts', head('GET / HTTP/1.1', 'Host: a', 'Host: b')],
    ['empty Host', head('GET / HTTP/1.1', 'Host: ')],
    ['Transfer-Encoding', head('POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked')],
    ['Content-Length and Transfer-Encoding', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Transfer-Encoding: chunked')],
    ['two Content-Lengths', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 3')],
    ['a signed Content-Length', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: +3')],
    ['a Content-Length list', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 3, 3')],
    ['Upgrade', head('GET / HTTP/1.1', 'Host: a', 'Upgrade: websocket', 'Connection: Upgrade')],
    ['Connection: upgrade alone', head('GET / HTTP/1.1', 'Host: a', 'Connection: Upgrade')],
    ['Expect', head('POST / HTTP/1.1', 'Host: a', 'Content-Length: 1', 'Expect: 100-continue')],
    ['obs-fold', head('GET / HTTP/1.1', 'Host: a', 'X-A: 1', ' folded')],
    ['space before the colon', head('GET / HTTP/1.1', 'Host : a')],
    ['no colon', head('GET / HTTP/1.1', 'Host: a', 'Nonsense')],
    ['a bare LF inside', 'GET / HTTP/1.1\r\nHost: a\nX-Smuggled: 1'],
    ['a bare CR inside', 'GET / HTTP/1.1\r\nHost: a\rX: 1'],
    ['a NUL in a value', head('GET / HTTP/1.1', 'Host: a', 'X: a\u0000b')],
    ['a bad method', head('GE(T / HTTP/1.1', 'Host: a')],
    ['a control character in the target', head('GET /a\u0001 HTTP/1.1', 'Host: a')],
  ];
  for (const [name, text] of cases) test(name, () => assert.equal(parseRequestHead(text), null));

  test('more than 100 headers', () => {
    const lines = ['GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 100 }, (_, i) => `X-${i}: ${i}`)];
    assert.equal(parseRequestHead(head(...lines)), null);
  });
});

describe('parseResponseHead', () => {
  const parse = (text: string, method = 'GET') => {
    const r = parseResponseHead(text, method);
    assert.notEqual(typeof r, 'string', String(r));
    return r as Exclude<ReturnType<typeof parseResponseHead>, string>;
  };

  test('Content-Length framing; hop-by-hop dropped; the app keep-alive timeout read', () => {
    const r = parse(head('HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Content-Length: 5', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'Set-Cookie: a=1', 'Set-Cookie: b=2'));
    assert.deepEqual(r.framing, { kind: 'length', length: 5 });
    assert.equal(r.close, false);
    assert.equal(r.keepAliveSeconds, 5);
    assert.equal(r.head, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n');
  });

  test('chunked passes through with its Transfer-Encoding; a Content-Length beside it is dropped', () => {
    const r = parse(head('HTTP/1.1 200 OK', 'Content-Length: 99', 'Transfer-Encoding: chunked', 'X-A: 1'));
    assert.deepEqual(r.framing, { kind: 'chunked' });
    assert.equal(r.head, 'HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n');
  });

  const framing: Array<[string, string, string, string]> = [
    ['no length: until close', head('HTTP/1.1 200 OK', 'X: 1'), 'GET', 'close'],
    ['HTTP/1.0 with a Content-Length is framed by its length', head('HTTP/1.0 200 OK', 'Content-Length: 2'), 'GET', 'length'],
    ['a coding other than chunked last: until close', head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, gzip'), 'GET', 'close'],
    ['HEAD has no body', head('HTTP/1.1 200 OK', 'Content-Length: 10'), 'HEAD', 'none'],
    ['204 has no body', head('HTTP/1.1 204 No Content'), 'GET', 'none'],
    ['304 has no body', head('HTTP/1.1 304 Not Modified', 'Content-Length: 10'), 'GET', 'none'],
    ['1xx has no body', head('HTTP/1.1 103 Early Hints', 'Link: </a.css>'), 'GET', 'none'],
  ];
  for (const [name, text, method, kind] of framing) test(name, () => assert.equal(parse(text, method).framing.kind, kind));

  test('Connection: close and HTTP/1.0 mean the app connection is not reused', () => {
    assert.equal(parse(head('HTTP/1.1 200 OK', 'Content-Length: 0', 'Connection: close')).close, true);
    assert.equal(parse(head('HTTP/1.0 200 OK', 'Content-Length: 0')).close, true);
    assert.equal(parse(head('HTTP/1.0 200 OK', 'Content-Length: 0', 'Connection: keep-alive')).close, false);
    assert.equal(parse(head('HTTP/1.0 200 OK', 'Content-Length: 0')).head.startsWith('HTTP/1.1 200 OK\r\n'), true);
  });

  const bad: Array<[string, string]> = [
    ['status line', head('HTTP/2 200 OK', 'Content-Length: 0')],
    ['status code', head('HTTP/1.1 20 OK')],
    ['conflicting lengths', head('HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2')],
    ['non-numeric length', head('HTTP/1.1 200 OK', 'Content-Length: 1x')],
    ['header without colon', head('HTTP/1.1 200 OK', 'Broken')],
  ];
  for (const [name, text] of bad) test(`malformed: ${name}`, () => assert.equal(typeof parseResponseHead(text, 'GET'), 'string'));
});

describe('ChunkedScanner', () => {
  const body = '4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: yes\r\n\r\n';
  const next = 'HTTP/1.1 200 OK\r\n';

  test('finds the end in one piece, leaving what follows', () => {
    const buf = Buffer.from(body + next);
    assert.equal(new ChunkedScanner().feed(buf), body.length);
  });

  test('finds the same end whatever the split', () => {
    const buf = Buffer.from(body);
    for (let cut = 1; cut < buf.length; cut++) {
      const s = new ChunkedScanner();
      assert.equal(s.feed(buf.subarray(0, cut)), -1, `cut at ${cut}`);
      assert.equal(s.feed(buf.subarray(cut)), buf.length - cut, `cut at ${cut}`);
      assert.ok(s.done);
    }
  });

  test('byte by byte', () => {
    const s = new ChunkedScanner();
    const buf = Buffer.from(body);
    for (let i = 0; i < buf.length - 1; i++) assert.equal(s.feed(buf.subarray(i, i + 1)), -1);
    assert.equal(s.feed(buf.subarray(buf.length - 1)), 1);
  });

  const bad: Array<[string, string]> = [
    ['no size', '\r\n'],
    ['bad size character', '4x\r\nWiki\r\n0\r\n\r\n'],
    ['data longer than its size', '2\r\nabc\r\n0\r\n\r\n'],
    ['bare LF after size', '2\nab\r\n0\r\n\r\n'],
    ['huge size', 'ffffffffffffffff\r\n'],
    ['a size of 2^53 (no longer exact as a number)', '20000000000000\r\n'],
    ['a size past 2^53 in 15 digits', 'fffffffffffffff\r\n'],
    ['bare LF in trailers', '0\r\nX: 1\n\r\n'],
  ];
  for (const [name, text] of bad) test(`malformed: ${name}`, () => assert.throws(() => new ChunkedScanner().feed(Buffer.from(text))));

  test('the largest exact size (2^53 - 1) and leading zeros are taken', () => {
    assert.equal(new ChunkedScanner().feed(Buffer.from('1fffffffffffff\r\nab')), -1);
    assert.equal(new ChunkedScanner().feed(Buffer.from('00000000000000000002\r\nab\r\n0\r\n\r\n')), 31);
  });
});

describe('issue 9: framing headers and whitespace', () => {
  test('a Connection list never removes Content-Length or Host; it still removes what it names otherwise', () => {
    const r = parseRequestHead(head('POST / HTTP/1.1', 'Host: a', 'Connection: content-length, host, transfer-encoding, x-hop', 'Content-Length: 3', 'X-Hop: 1', 'X-Keep: 2'));
    assert.ok(r);
    assert.equal(r.contentLength, 3);
    assert.equal(r.host, 'a');
    assert.equal(r.head, 'POST / HTTP/1.1\r\nContent-Length: 3\r\nX-Keep: 2\r\n');
  });

  const refused: Array<[string, string]> = [
    ['Content-Length: 5\\v', '5\v'],
    ['Content-Length: 5\\f', '5\f'],
    ['Content-Length: 5\\xA0', '5\xa0'],
    ['Content-Length: 5\\x85', '5\x85'],
    ['Content-Length: \\v5', '\v5'],
    ['Content-Length: 5 then a tab (llhttp refuses a trailing tab)', '5\t'],
  ];
  for (const [name, value] of refused) test(`left to node:http: ${name}`, () => assert.equal(parseRequestHead(head('POST / HTTP/1.1', 'Host: a', `Content-Length: ${value}`)), null));

  test('only SP and HTAB are trimmed; \\v or \\f elsewhere is refused, obs-text kept', () => {
    assert.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'X-A: 1\v')), null);
    assert.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a\f')), null);
    assert.equal(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'X-A: \xa0b\x85'))?.head, 'GET / HTTP/1.1\r\nX-A: \xa0b\x85\r\n');
  });

  test('methods llhttp may not know and non-ASCII targets are left to node:http', () => {
    assert.equal(parseRequestHead(head('FOO / HTTP/1.1', 'Host: a')), null);
    assert.equal(parseRequestHead(head('GET /\x80 HTTP/1.1', 'Host: a')), null);
  });
});

describe('issue 9: liberal app answers', () => {
  const cases: Array<[string, string, number]> = [
    ['CRLF', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody', 25],
    ['bare LF', 'HTTP/1.0 200 OK\nA: 1\n\nbody', 22],
    ['CRLF then a bare-LF blank line', 'HTTP/1.0 200 OK\r\nA: 1\n\nbody', 23],
    ['bare LF then a CRLF blank line', 'HTTP/1.0 200 OK\nA: 1\r\n\r\nbody', 24],
  ];
  for (const [name, text, bodyStart] of cases) {
    test(`head end and headers: ${name}`, () => {
      const buf = Buffer.from(text, 'latin1');
      assert.equal(responseHeadEnd(buf), bodyStart);
      const r = parseResponseHead(buf.toString('latin1', 0, headTextEnd(buf, bodyStart)), 'GET');
      assert.notEqual(typeof r, 'string', String(r));
      const h = r as Exclude<typeof r, string>;
      assert.equal(h.head.endsWith('A: 1\r\n'), true, JSON.stringify(h.head));
      assert.equal(h.framing.kind, 'close');
    });
  }

  test('an incomplete head is not ended early', () => {
    for (const t of ['HTTP/1.1 200 OK\r\nA: 1\r\n', 'HTTP/1.1 200 OK\nA: 1\n', 'HTTP/1.1 200 OK\r\nA: 1\r\n\r']) assert.equal(responseHeadEnd(Buffer.from(t)), -1, JSON.stringify(t));
  });

  test('a body that ends at close keeps its codings to announce before chunked', () => {
    const r = parseResponseHead(head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip'), 'GET');
    assert.ok(typeof r !== 'string');
    assert.equal(r.framing.kind, 'close');
    assert.equal(r.codings, 'gzip');
  });

  test('a response Connection list cannot remove Content-Length', () => {
    const r = parseResponseHead(head('HTTP/1.1 200 OK', 'Connection: content-length', 'Content-Length: 3'), 'GET');
    assert.ok(typeof r !== 'string');
    assert.match(r.head, /Content-Length: 3/);
  });
});
