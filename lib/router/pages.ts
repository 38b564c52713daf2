/**
 * The router's own answers (404, 502, 503): short, plain pages that say
 * what is wrong and what to do, in HTML for browsers and text for curl.
 */
import type { ServerResponse } from 'node:http';

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function errorPage(res: ServerResponse, status: number, title: string, detail: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const wantsHtml = /text\/html/.test(String(res.req?.headers.accept ?? ''));
  const body = wantsHtml
    ? `<!doctype html><html><head><title>${status} ${escape(title)}</title></head><body><h1>${status} ${escape(title)}</h1><p>${escape(detail)}</p><hr><small>viking router</small></body></html>\n`
    : `${status} ${title}: ${detail}\n`;
  res.writeHead(status, {
    'content-type': wantsHtml ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-viking-error': String(status),
  });
  res.end(body);
}
