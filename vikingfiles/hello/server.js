// hello: answers every request with a greeting and the replica's hostname.
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const message = fs.readFileSync(path.join(__dirname, 'message.txt'), 'utf8').trim();
const greeting = process.env.GREETING || 'Hello';
const port = Number(process.env.PORT || 80);

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('ok\n');
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${greeting} from ${os.hostname()}: ${message}\n`);
});

server.listen(port, () => console.log(`hello listening on ${port} as ${os.hostname()}`));

// Finish in-flight requests before exiting, so a deploy drops nothing.
process.on('SIGTERM', () => {
  console.log('SIGTERM: draining');
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
  setTimeout(() => process.exit(0), 5000).unref();
});
