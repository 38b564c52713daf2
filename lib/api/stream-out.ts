/**
 * Writing a long or endless text answer (logs) to an HTTP client without
 * letting it grow the host: each write waits while the client's socket is
 * full, so a client that reads slowly (or never) stops the producer instead
 * of piling the log up in memory, and the loop is given back now and then so
 * heartbeats and other requests keep their time while a big log streams.
 */
import type { ServerResponse } from 'node:http';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

/** Bytes gathered into one write: fewer, larger writes cost far less than one per line. */
const BATCH = 64 * 1024;

/** Resolves when `res` can take more, or false when it closed first. */
function drained(res: ServerResponse): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/** A followed log's lines reach the client within this long even when few arrive. */
const FLUSH_MS = 20;

/** Writes every text of `texts` to `res`, with backpressure; stops early (returning false) if the client goes away. */
export async function writeTexts(res: ServerResponse, texts: AsyncIterable<string>): Promise<boolean> {
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  let blocked: Promise<boolean> | undefined;
  const writeNow = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '' || res.destroyed) return;
    const ok = res.write(pending);
    pending = '';
    if (!ok) blocked ??= drained(res);
  };
  let lastYield = performance.now();
  const it = texts[Symbol.asyncIterator]();
  try {
    for (;;) {
      if (blocked) {
        if (!(await blocked)) return false;
        blocked = undefined;
      }
      if (res.destroyed) return false;
      const r = await it.next();
      if (r.done) break;
      pending += r.value;
      if (pending.length >= BATCH) writeNow();
      else timer ??= setTimeout(writeNow, FLUSH_MS);
      if (performance.now() - lastYield > 10) {
        await yieldToLoop();
        lastYield = performance.now();
      }
    }
    writeNow();
    return blocked ? await blocked : !res.destroyed;
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
}
