/**
 * A backend for bench/router: a plain node:http server answering every
 * request with a short text body, like a small app's hot endpoint. Started
 * as its own process (one per backend) so backends do not share a core with
 * the bench driver. Usage: node router-backend.js PORT NAME
 */
import http from 'node:http';
const port = Number(process.argv[2]);
const name = process.argv[3] ?? 'backend';
const body = Buffer.from(`hello from ${name}\n`);
http
    .createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(body);
})
    .listen(port, '127.0.0.1', () => process.send?.('ready'));
//# sourceMappingURL=router-backend.js.map