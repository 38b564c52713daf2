/**
 * A router worker process (node:cluster): one RouterServer sharing the
 * router's listening socket with its siblings, so the router uses every core
 * while the host process keeps the etcd watch, the slave and the API.
 *
 * The worker never talks to etcd. The host process sends it RouteSnapshots
 * over IPC; the worker starts listening only once it has the first one (so it
 * never answers from an empty table), and reports every revision it applied,
 * which is how the host knows when all its workers have seen a change. It
 * exits when the host process goes away, so no orphan keeps the port.
 */
import { RouterServer } from './server.js';
import type { PrimaryMessage, WorkerConfig, WorkerMessage } from './workers.js';
import { emptyDump } from './traffic-counters.js';

const config = JSON.parse(process.env.VIKING_ROUTER_WORKER ?? '{}') as WorkerConfig;
const send = (msg: WorkerMessage): void => {
  if (process.connected) process.send?.(msg);
};
const server = new RouterServer({
  ...config.tuning,
  balance: config.balance,
  ...(config.metrics === false ? { metrics: false } : {}),
  ...(config.accessLog ? { accessLog: (batch) => send({ type: 'access', batch }) } : {}),
  ...(config.ticketKeys ? { ticketKeys: Buffer.from(config.ticketKeys, 'base64') } : {}),
  ...(config.tlsResumption === false ? { tlsResumption: false } : {}),
  log: (message) => send({ type: 'log', message }),
});
let listening = false;

process.on('message', (msg: PrimaryMessage) => {
  switch (msg.type) {
    case 'snapshot':
      server.apply(msg.snapshot);
      if (!listening) {
        listening = true;
        const https = config.httpsPort ?? 0;
        server
          .listen(config.port, config.host)
          .then(async (port) => {
            if (https !== 0) await server.listenTls(https, config.host).catch((err: Error) => Promise.reject(new Error(`HTTPS port ${https}: ${err.message}`)));
            send({ type: 'listening', port, revision: server.revision });
          })
          .catch((err: Error) => {
            send({ type: 'log', message: `router worker: cannot listen on ${config.host}:${config.port}: ${err.message}` });
            process.exit(2);
          });
      } else {
        send({ type: 'applied', revision: server.revision });
      }
      return;
    case 'acme-challenges':
      server.challenges.replace(msg.entries);
      return;
    case 'certs':
      server.applyCertificates(msg.certs);
      return;
    case 'counters':
      send({ type: 'counters', id: msg.id, dump: server.counters?.dump() ?? emptyDump() });
      return;
    case 'access-taken':
      server.accessLog?.taken();
      return;
    case 'stop':
      void server.close(msg.graceMs, msg.drainMs ?? 0).finally(() => process.exit(0));
      return;
  }
});

// The host process died or let go of us: stop at once.
process.on('disconnect', () => process.exit(0));
send({ type: 'hello' });
