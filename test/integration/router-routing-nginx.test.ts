/**
 * router-routing.test.ts again, against the nginx engine (`viking host --router-engine
 * nginx`): nginx listens and proxies, rendered from the same etcd keys, and
 * the Node server answers what nginx passes on. The same assertions hold on
 * both engines; where one differs (a reload starts new nginx workers), the
 * file says so.
 */
process.env.VIKING_TEST_ROUTER_ENGINE = 'nginx';
await import('./router-routing.test.js');
