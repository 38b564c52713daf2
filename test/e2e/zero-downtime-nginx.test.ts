/**
 * zero-downtime.test.ts again, with every host's router on the nginx engine
 * (`viking host --router-engine nginx`, lib/router/nginx-plane.ts): the same
 * promises hold when nginx carries the requests.
 */
process.env.VIKING_TEST_ROUTER_ENGINE = 'nginx';
await import('./zero-downtime.test.js');
