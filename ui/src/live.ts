/**
 * One server-sent-events stream per tab (GET /v1/events). The server sends
 * only what changed; each page says which changes concern it and reads its
 * /v1 routes again. The browser's EventSource reconnects by itself; on
 * reconnect every page reads again (a change may have been missed).
 */
import { useEffect, useRef, useState } from 'preact/hooks';

export interface Change {
  cluster: boolean;
  routes: boolean;
  all: boolean;
  stacks: string[];
}

type Listener = (c: Change) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;

export const liveState = { connected: false, onState: new Set<(up: boolean) => void>() };

function setConnected(up: boolean): void {
  liveState.connected = up;
  for (const f of liveState.onState) f(up);
}

export function startLive(): void {
  if (source) return;
  source = new EventSource('/v1/events');
  source.addEventListener('hello', () => {
    setConnected(true);
    for (const l of listeners) l({ cluster: true, routes: true, all: true, stacks: [] });
  });
  source.addEventListener('change', (ev) => {
    const c = JSON.parse((ev as MessageEvent<string>).data) as Change;
    for (const l of listeners) l(c);
  });
  source.onerror = () => setConnected(false);
}

export function stopLive(): void {
  source?.close();
  source = undefined;
  setConnected(false);
}

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
}

/**
 * Loads `fetcher` now and again whenever a change matches `wants`; requests
 * never overlap (a change during a read makes one more read after it).
 */
export function useLive<T>(fetcher: () => Promise<T>, wants: (c: Change) => boolean, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const state = useRef({ running: false, again: false, alive: true });
  const run = (): void => {
    const s = state.current;
    if (s.running) {
      s.again = true;
      return;
    }
    s.running = true;
    fetcher()
      .then((d) => s.alive && (setData(d), setError(undefined)))
      .catch((e: Error) => s.alive && setError(e))
      .finally(() => {
        s.running = false;
        if (s.again && s.alive) {
          s.again = false;
          run();
        }
      });
  };
  useEffect(() => {
    state.current = { running: false, again: false, alive: true };
    setData(undefined);
    run();
    const l: Listener = (c) => {
      if (c.all || wants(c)) run();
    };
    listeners.add(l);
    return () => {
      state.current.alive = false;
      listeners.delete(l);
    };
  }, deps);
  return { data, error, reload: run };
}
