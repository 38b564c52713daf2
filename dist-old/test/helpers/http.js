/**
 * One HTTP GET through a viking router with a chosen Host header, the way a
 * visitor's browser would reach an app. Fresh connection each time.
 */
import http from 'node:http';
export function routerGet(o) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: o.ip ?? '127.0.0.1', port: o.port, path: o.path ?? '/', headers: { host: o.host }, agent: false, timeout: o.timeoutMs ?? 5000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
    });
}
//# sourceMappingURL=http.js.map