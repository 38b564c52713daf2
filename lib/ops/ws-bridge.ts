/**
 * An exec or run session whose container is on another host: the API the
 * CLI reached opens a websocket to that host's API (its `/v1/local/...`
 * route, with the caller's token, so the peer checks the same permission)
 * and passes every frame on verbatim, both ways, until either side closes.
 */
import { WebSocket } from 'ws';
import { ERROR_CODES, VikingError, type ErrorCode } from '../errors.js';
import type { HostRecord } from '../store/records.js';
import { endSession, failSession } from './session.js';

/** ws:// URL of a path on a peer's API. */
export function peerWsUrl(host: HostRecord, path: string): string {
  return `${host.api.replace(/^http/, 'ws')}${path}`;
}

/**
 * Resolves once either side closed, with the command's exit code as the
 * peer reported it (undefined for a detached run, or when none came);
 * rejects with the peer's error when it sent one.
 */
export function bridgeToPeer(client: WebSocket, host: HostRecord, path: string, token: string | undefined): Promise<number | undefined> {
  let exitCode: number | undefined;
  let failure: VikingError | undefined;
  return new Promise<number | undefined>((resolve, reject) => {
    const finish = (): void => (failure ? reject(failure) : resolve(exitCode));
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
      if (binary) return;
      // Read, not changed: the outcome for the audit entry of this API.
      try {
        const m = JSON.parse(data.toString('utf8')) as { type?: string; code?: unknown; message?: unknown };
        if (m.type === 'exit' && typeof m.code === 'number') exitCode = m.code;
        if (m.type === 'error' && typeof m.code === 'string' && Object.hasOwn(ERROR_CODES, m.code)) failure = new VikingError(m.code as ErrorCode, String(m.message ?? ''));
      } catch {
        /* not JSON */
      }
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
        failure = new VikingError(code, `host ${host.name}: ${body.message ?? `HTTP ${res.statusCode}`}`);
        failSession(client, failure);
        peer.terminate();
      });
    });
    peer.on('error', (err) => {
      failure ??= new VikingError('VIKING_E_API_UNREACHABLE', `host ${host.name}'s API at ${host.api} did not answer (${err.message})`);
      failSession(client, failure);
    });
    peer.on('close', () => {
      endSession(client);
      finish();
    });
    client.on('close', () => {
      if (peer.readyState === WebSocket.OPEN) peer.close();
      else if (peer.readyState === WebSocket.CONNECTING) peer.terminate();
      finish();
    });
  });
}
