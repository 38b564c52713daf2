/**
 * The wire of `viking exec` and `viking run`: one websocket from the CLI to
 * an API, passed on verbatim to the API of the host that runs the container
 * (lib/ops/ws-bridge.ts), which joins it to a Docker attach or exec stream.
 *
 *   binary frames, CLI -> host     stdin bytes
 *   binary frames, host -> CLI     first byte the stream (1 stdout, 2 stderr), then the bytes;
 *                                  with a TTY everything is stdout
 *   text frames, CLI -> host       {"type":"resize","cols":N,"rows":N}  {"type":"eof"} (stdin ended)
 *   text frames, host -> CLI       {"type":"started","host","container"}  then
 *                                  {"type":"exit","code":N}  or  {"type":"detached"}
 *                                  or {"type":"error","code":"VIKING_E_...","message"}
 *
 * The host closes the socket after exit, detached or error. A CLI that hangs
 * up ends a `run` (its container is removed) and closes an exec's streams.
 */
import { Writable, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import type { WebSocket } from 'ws';
import { toVikingError } from '../errors.js';

export const STDOUT = 1;
export const STDERR = 2;

export type ControlIn = { type: 'resize'; cols: number; rows: number } | { type: 'eof' };
export type ControlOut =
  | { type: 'started'; host: string; container: string; name?: string }
  | { type: 'exit'; code: number }
  | { type: 'detached'; host: string; container: string; name?: string }
  | { type: 'error'; code: string; message: string };

/** A running command on this host's Docker Engine, as a session needs it. */
export interface DockerSession {
  stream: Duplex;
  tty: boolean;
  stdin: boolean;
  resize(cols: number, rows: number): Promise<void>;
  /** Resolves with the exit code once the command ended (its stream has ended). */
  exitCode(): Promise<number>;
  /** The CLI went away before the end. */
  abandon(): Promise<void>;
}

export function sendControl(ws: WebSocket, msg: ControlOut): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

/** Sends a failure as an error frame and closes; used for errors after the upgrade. */
export function failSession(ws: WebSocket, err: unknown): void {
  const vk = toVikingError(err);
  sendControl(ws, { type: 'error', code: vk.code, message: vk.message });
  endSession(ws);
}

/**
 * Closes a session's socket. It is resumed first: the routes pause it when it
 * opens, and a paused socket would never read the CLI's answering close
 * frame, leaving the close to ws's 30 s timeout.
 */
export function endSession(ws: WebSocket): void {
  ws.resume();
  if (ws.readyState === ws.OPEN) ws.close(1000);
}

/** A writable that sends each chunk as a frame of one stream, waiting for the socket to take it (backpressure). */
function frameWriter(ws: WebSocket, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (ws.readyState !== ws.OPEN) return cb();
      ws.send(Buffer.concat([Buffer.from([channel]), chunk]), { binary: true }, () => cb());
    },
  });
}

function parseControl(data: Buffer): ControlIn | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    if (v.type === 'eof') return { type: 'eof' };
    if (v.type === 'resize' && Number.isInteger(v.cols) && Number.isInteger(v.rows)) {
      const cols = Math.min(Math.max(v.cols as number, 1), 1000);
      const rows = Math.min(Math.max(v.rows as number, 1), 1000);
      return { type: 'resize', cols, rows };
    }
  } catch {
    /* not a control frame: ignored */
  }
  return undefined;
}

/**
 * Joins a websocket to a Docker session until the command ends: stdin in,
 * stdout and stderr out, resizes passed on, the exit code last.
 */
export async function runSession(ws: WebSocket, docker: Docker, s: DockerSession, started: ControlOut): Promise<number | undefined> {
  let ended = false;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      if (s.stdin && !s.stream.writableEnded) s.stream.write(data);
      return;
    }
    const c = parseControl(data);
    if (c?.type === 'eof' && s.stdin && !s.stream.writableEnded) s.stream.end();
    if (c?.type === 'resize' && s.tty) void s.resize(c.cols, c.rows).catch(() => {});
  });
  ws.on('close', () => {
    if (!ended) void s.abandon().catch(() => {});
  });
  sendControl(ws, started);
  // The route paused the socket when it opened, so nothing the CLI sent early was lost.
  ws.resume();
  const out = frameWriter(ws, STDOUT);
  const err = frameWriter(ws, STDERR);
  const done = new Promise<void>((resolve) => {
    s.stream.once('end', resolve);
    s.stream.once('close', resolve);
    s.stream.once('error', () => resolve());
  });
  if (s.tty) s.stream.on('data', (chunk: Buffer) => out.write(chunk));
  else docker.modem.demuxStream(s.stream, out, err);
  await done;
  // Every frame written before the exit frame (the writers send one chunk at a time).
  await Promise.all([out, err].map((w) => new Promise<void>((resolve) => w.end(resolve))));
  const code = await s.exitCode();
  ended = true;
  // Output still queued in the socket goes before the exit frame (ws keeps the order of sends).
  sendControl(ws, { type: 'exit', code });
  endSession(ws);
  return code;
}
