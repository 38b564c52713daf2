/**
 * up.test.ts again, with `viking up --router-engine nginx`
 * (lib/router/nginx-plane.ts): the same promises hold when nginx carries the
 * requests, and nginx's master process runs while up serves and is gone
 * after Ctrl-C.
 */
process.env.VIKING_TEST_ROUTER_ENGINE = 'nginx';
await import('./up.test.js');
