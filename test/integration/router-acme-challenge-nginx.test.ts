/**
 * router-acme-challenge.test.ts again, against the nginx engine (`viking host
 * --router-engine nginx`): nginx listens and passes the challenge path to the
 * Node server on loopback, which answers it from etcd. The same assertions
 * hold on both engines; where one differs (nginx's own parser answers 400 to
 * a NUL in the path before any routing), the file says so.
 */
process.env.VIKING_TEST_ROUTER_ENGINE = 'nginx';
await import('./router-acme-challenge.test.js');
