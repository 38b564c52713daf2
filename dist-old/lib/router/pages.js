const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
export function errorText(status, title, detail, html) {
    return html
        ? {
            contentType: 'text/html; charset=utf-8',
            body: `<!doctype html><html><head><title>${status} ${escape(title)}</title></head><body><h1>${status} ${escape(title)}</h1><p>${escape(detail)}</p><hr><small>viking router</small></body></html>\n`,
        }
        : { contentType: 'text/plain; charset=utf-8', body: `${status} ${title}: ${detail}\n` };
}
export function errorPage(res, status, title, detail) {
    if (res.headersSent) {
        res.destroy();
        return;
    }
    const page = errorText(status, title, detail, /text\/html/.test(String(res.req?.headers.accept ?? '')));
    res.writeHead(status, {
        'content-type': page.contentType,
        'content-length': Buffer.byteLength(page.body),
        'cache-control': 'no-store',
        'x-viking-error': String(status),
    });
    res.end(page.body);
}
/** The same page as a whole raw HTTP/1.1 response, for the fast path. */
export function rawErrorPage(status, title, detail, html, close) {
    const page = errorText(status, title, detail, html);
    return (`HTTP/1.1 ${status} ${title}\r\ncontent-type: ${page.contentType}\r\ncontent-length: ${Buffer.byteLength(page.body)}\r\n` +
        `cache-control: no-store\r\nx-viking-error: ${status}\r\ndate: ${new Date().toUTCString()}\r\n` +
        `${close ? 'connection: close\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=65\r\n'}\r\n${page.body}`);
}
//# sourceMappingURL=pages.js.map