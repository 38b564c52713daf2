/**
 * The router's engines, named apart from the router itself so the CLI can
 * offer them without loading it: `node` (the router's Node worker
 * processes, router.ts and workers.ts) or `nginx` (nginx-plane.ts).
 */
export type RouterEngine = 'node' | 'nginx';

export const ROUTER_ENGINES: readonly RouterEngine[] = ['node', 'nginx'];
