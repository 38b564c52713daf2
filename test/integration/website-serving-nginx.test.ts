/**
 * website-serving.test.ts again, against the nginx engine (`viking host
 * --router-engine nginx`): nginx listens and passes website requests to the
 * Node server on loopback, which serves the files. The same assertions hold
 * on both engines: every traversal attempt is refused, whether nginx's
 * parser or the Node server refuses it.
 */
process.env.VIKING_TEST_ROUTER_ENGINE = 'nginx';
await import('./website-serving.test.js');
