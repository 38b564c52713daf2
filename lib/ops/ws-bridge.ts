/**
 * An exec or run session whose container is on another host: the API the
 * CLI reached opens a websocket to that host's API (its `/v1/local/...`
 * route, with the caller's token, so the peer checks the same permission)
 * and passes every frame on verbatim, both ways, until either side closes.
 */
import { WebSocket } from 'ws';
import { VikingError } from '../errors.js';
import type { HostRecord } from '../store/records.js';
import { failSession } from './session.js';

/** ws:// URL of a path on a peer's API. */
export function peerWsUrl(host: HostRecord, path: string): string {
  return `${host.api.replace(/^http/, 'ws')}${path}`;
}

export function bridgeToPeer(client: WebSocket, host: HostRecord, path: string, token: string | undefined): Promise<void> {
  return new Promise((resolve) => {
    const peer = new WebSocket(peerWsUrl(host, path), { headers: token ? { authorization: `Bearer ${token}` } : {}, maxPayload: 1 << 20 });
    const early: Array<{ data: Buffer; binary: boolean }> = [];
    client.on('message', (data: Buffer, binary: boolean) => {
      if (peer.readyState === WebSocket.OPEN) peer.send(data, { binary });
      else if (peer.readyState === WebSocket.CONNECTING) early.push({ data, binary });
    });
    // The route paused the socket when it opened; from here every frame is taken (and held until the peer is open).
    client.resume();
    peer.on('open', () => {
      for (const m of early.splice(0)) peer.send(m.data, { binary: m.binary });
    });
    peer.on('message', (data: Buffer, binary: boolean) => {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary });
    });
    peer.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body: { code?: string; message?: string } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          /* not JSON */
        }
        const code = body.code === 'VIKING_E_NOT_FOUND' || body.code === 'VIKING_E_FORBIDDEN' || body.code === 'VIKING_E_UNAUTHORIZED' ? body.code : 'VIKING_E_INTERNAL';
        failSession(client, new VikingError(code, `host ${host.name}: ${body.message ?? `HTTP ${res.statusCode}`}`));
        peer.terminate();
      });
    });
    peer.on('error', (err) => {
      failSession(client, new VikingError('VIKING_E_API_UNREACHABLE', `host ${host.name}'s API at ${host.api} did not answer (${err.message})`));
    });
    peer.on('close', () => {
      if (client.readyState === WebSocket.OPEN) client.close(1000);
      resolve();
    });
    client.on('close', () => {
      if (peer.readyState === WebSocket.OPEN) peer.close();
      else if (peer.readyState === WebSocket.CONNECTING) peer.terminate();
      resolve();
    });
  });
}
