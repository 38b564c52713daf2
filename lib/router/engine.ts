/**
 * The router's engines, named apart from the router itself so the CLI can
 * offer them without loading it: `node` (the router's Node worker
 * processes, router.ts and workers.ts) or `nginx` (nginx-plane.ts).
 */
export type RouterEngine = 'node' | 'nginx';

export const ROUTER_ENGINES: readonly RouterEngine[] = ['node', 'nginx'];

/**
 * How long a stopping router answers with `Connection: close` before it
 * closes its port, on either engine. Closing at once would close every idle
 * kept-alive connection, and a client sending its next request on one just
 * then gets a reset: a POST is lost without knowing whether it was done.
 * With the window, each busy connection ends cleanly after its answer and
 * the client's next request finds the port closed (refused: safe to send
 * elsewhere). test/integration/router-graceful-stop.test.ts.
 */
export const STOP_DRAIN_MS = 500;
