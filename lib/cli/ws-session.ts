/**
 * The CLI's end of a `viking exec` / `viking run` websocket (protocol:
 * lib/ops/session.ts): this process's stdin goes in, the container's stdout
 * and stderr come out on ours, the terminal is put in raw mode and its size
 * passed on (and again on every resize) when a TTY was asked for, and the
 * command's exit code comes back.
 */
import { WebSocket } from 'ws';
import { VikingError } from '../errors.js';
import { errorFromBody, type ApiClient } from './api-client.js';
import type { ControlOut } from '../ops/session.js';

export interface SessionOptions {
  tty: boolean;
  stdin: boolean;
  /** Told when the container started (or was left running, detached). */
  onStarted?: (msg: Extract<ControlOut, { type: 'started' | 'detached' }>) => void;
}

/** Where the session ended: an exit code, or left running (detached). */
export type SessionEnd = { exitCode: number } | { detached: Extract<ControlOut, { type: 'detached' }> };

export function sessionQuery(cmd: string[], o: { tty: boolean; stdin: boolean; detach?: boolean }): string {
  const p = new URLSearchParams({ cmd: JSON.stringify(cmd) });
  if (o.tty) p.set('tty', '1');
  if (o.stdin) p.set('stdin', '1');
  if (o.detach) p.set('detach', '1');
  return p.toString();
}

export function openSession(api: ApiClient, path: string, o: SessionOptions): Promise<SessionEnd> {
  const url = `${api.base.replace(/^http/, 'ws')}${path}`;
  const token = api.target.token ?? process.env.VIKING_TOKEN;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (process.env.USER) headers['x-viking-user'] = process.env.USER;
  const ws = new WebSocket(url, { headers, maxPayload: 64 << 20 });
  const stdin = process.stdin;
  const raw = o.tty && stdin.isTTY;
  let end: SessionEnd | undefined;
  let failure: VikingError | undefined;

  const sendSize = (): void => {
    if (ws.readyState === WebSocket.OPEN && process.stdout.columns && process.stdout.rows) {
      ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
    }
  };
  const onData = (d: Buffer): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(d, { binary: true });
  };
  const onEnd = (): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'eof' }));
  };
  const cleanup = (): void => {
    process.stdout.off('resize', sendSize);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (raw) stdin.setRawMode(false);
    if (o.stdin) stdin.pause();
  };

  return new Promise<SessionEnd>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body: unknown = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          /* not JSON */
        }
        failure = errorFromBody(body, res.statusCode ?? 500);
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      failure ??= new VikingError('VIKING_E_API_UNREACHABLE', `cannot reach the viking API at ${api.base} (${(err as Error).message})`);
    });
    ws.on('open', () => {
      if (raw) stdin.setRawMode(true);
      if (o.tty) {
        sendSize();
        process.stdout.on('resize', sendSize);
      }
      if (o.stdin) {
        stdin.on('data', onData);
        stdin.on('end', onEnd);
        stdin.resume();
      }
    });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) {
        if (data.length < 1) return;
        (data[0] === 2 ? process.stderr : process.stdout).write(data.subarray(1));
        return;
      }
      let msg: ControlOut;
      try {
        msg = JSON.parse(data.toString('utf8')) as ControlOut;
      } catch {
        return;
      }
      if (msg.type === 'started') o.onStarted?.(msg);
      else if (msg.type === 'detached') {
        o.onStarted?.(msg);
        end = { detached: msg };
      } else if (msg.type === 'exit') end = { exitCode: msg.code };
      else if (msg.type === 'error') failure = errorFromBody(msg, 500);
    });
    ws.on('close', () => {
      cleanup();
      if (end) resolve(end);
      else reject(failure ?? new VikingError('VIKING_E_API_UNREACHABLE', 'the API closed the session before the command ended'));
    });
  });
}
