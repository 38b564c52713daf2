/**
 * The nginx data plane's configuration, rendered from the same route table
 * and certificates the Node router serves (`viking host --router-engine
 * nginx`, see nginx-plane.ts for why).
 *
 * Pure: a RouteTable, the certificate files and the listen options in, the
 * text of nginx.conf out, plus which route each request log line names (so
 * the plane can count traffic per stack, node, domain and replica as the
 * Node router does). No user string reaches the file unchecked: a domain is
 * written only when it is a plain DNS name (or `*.` and one), an endpoint
 * only when its address is an IP literal and its port a port; anything else
 * is left to the Node fallback server, which serves every request nginx has
 * no server block for.
 *
 * Layout: one server block per name that has a route or a certificate,
 * listening on the plain port and (when HTTPS is on) the TLS port with the
 * most specific certificate for that name, so SNI and the Host header agree
 * on the block. Container routes with endpoints are proxied to an upstream
 * per node; websites, routes without a healthy endpoint, ACME challenges and
 * unknown names go to the fallback (the Node RouterServer on loopback),
 * which answers them with the same pages as the Node engine.
 */
import net from 'node:net';
import type { ContainerRoute, Route, RouteTable } from './route-table.js';
import { SniIndex, currentlyValid, type SniEntry } from '../certs/sni.js';
import type { ClientTimeouts } from './fast-path.js';
import type { BalanceMode } from './upstreams.js';
import { parseCidr } from './forwarding.js';
import { ACME_CHALLENGE_PATH } from './tls-redirect.js';
import { MAX_HEAD_BYTES } from './http1.js';

/** A certificate as files on disk (the plane writes them from /certs/pem). */
export interface NginxCert extends SniEntry {
  certFile: string;
  keyFile: string;
}

export interface NginxListen {
  /** Address to listen on (`0.0.0.0`, `127.0.0.1`, `::`). */
  host: string;
  port: number;
  /** 0: no HTTPS. */
  httpsPort: number;
}

export interface NginxPlan {
  /** nginx's prefix directory: pid, logs, temp files. Absolute. */
  prefix: string;
  listen: NginxListen;
  workers: number;
  /** Loopback port of the Node fallback server for plain HTTP requests. */
  fallbackPort: number;
  /** Loopback port of the Node fallback server for requests nginx took over TLS (it forwards them as https). */
  fallbackTlsPort: number;
  balance: BalanceMode;
  timeouts: ClientTimeouts;
  /** Client connections per worker. */
  maxConnections: number;
  trustedProxies: readonly string[];
  /** TLS session tickets (default true); false: every handshake is a full one (the bench's rows). */
  tlsResumption: boolean;
  /** File of 80 random bytes: ticket keys shared by the workers and kept over reloads. */
  ticketKeyFile: string | null;
  /** Where request lines go (one JSON array each); null: nothing is logged (metrics off, no access_log node). */
  logFile: string | null;
  /** nginx's error log; absent: `<prefix>/error.log`. */
  errorLogFile?: string;
  /** Numbers the route ids of this rendering (`<generation>.<index>`), so lines of old workers are told apart. */
  generation: number;
  /**
   * The reload's drain flag: while this file exists, every answer says
   * `Connection: close` (see drainLines). Absent or null: no flag (unit tests, the bench's fixed configurations).
   */
  drainFile?: string | null;
}

export interface RenderedConfig {
  text: string;
  /** Route id (what a log line's first field says) -> the container route it counts for. */
  routes: Map<string, ContainerRoute>;
  /** When a certificate starts or stops being valid (ms since the epoch): render again then. Infinity: never. */
  nextChange: number;
}

/** A name nginx may be given as a server_name: a DNS name, optionally `*.` and one. */
const NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$/;

export const isRenderableName = (name: string): boolean => name.length <= 253 && NAME.test(name);

/** The fields of a request log line, in order (nginx-traffic.ts reads them). */
export const LOG_FIELDS = ['$vk_route', '$upstream_addr', '$status', '$upstream_header_time', '$request_time', '$request_length', '$bytes_sent', '$request_method', '$host', '$request_uri'] as const;

/**
 * How long connections of an old configuration live after a reload (nginx's
 * worker_shutdown_timeout): a websocket or a stream open at a reload is cut
 * this long after it, unlike on the Node engine, which swaps tables in place.
 */
export const RELOAD_GRACE_S = 600;
/** Idle time of an upgraded connection (websocket) before nginx closes it; plain requests get 300 s between reads. */
export const TUNNEL_IDLE_S = 3600;

/** Slow-start caps of an upstream: what nginx's `keepalive` keeps idle per worker. */
const UPSTREAM_KEEPALIVE = 128;

export function renderNginxConfig(plan: NginxPlan, table: RouteTable, certs: readonly NginxCert[], now = Date.now()): RenderedConfig {
  const valid = certs.filter((c) => currentlyValid(c, now) && isPath(c.certFile) && isPath(c.keyFile));
  const sni = new SniIndex(valid);
  const nextChange = certs.reduce((next, c) => {
    for (const t of [Date.parse(c.notBefore), Date.parse(c.notAfter)]) if (t > now && t < next) next = t;
    return next;
  }, Infinity);

  // Every name with a route or a valid certificate gets a block.
  const names = new Set<string>();
  for (const [domain] of table.entries()) if (isRenderableName(domain)) names.add(domain);
  if (plan.listen.httpsPort) for (const c of valid) for (const n of [...c.names, c.domain]) if (isRenderableName(n.toLowerCase())) names.add(n.toLowerCase());

  const upstreams = new Map<string, { name: string; route: ContainerRoute }>();
  const routes = new Map<string, ContainerRoute>();
  const routeIds = new Map<ContainerRoute, string>();
  const hstsMaps = new Set<number>();
  const servers: string[] = [];
  for (const name of [...names].sort()) {
    const route = routeOf(table, name);
    const cert = plan.listen.httpsPort ? sni.lookup(name) : undefined;
    let target: { upstream: string; id: string } | null = null;
    if (route?.kind === 'container') {
      const endpoints = route.endpoints.filter(renderableEndpoint);
      if (endpoints.length > 0) {
        const key = `${route.stack}/${route.node}`;
        let up = upstreams.get(key);
        if (!up) upstreams.set(key, (up = { name: `vk_u${upstreams.size}`, route }));
        let id = routeIds.get(route);
        if (!id) {
          id = `${plan.generation}.${routeIds.size}`;
          routeIds.set(route, id);
          routes.set(id, route);
        }
        target = { upstream: up.name, id };
      }
    }
    const maxAge = route ? hstsMaxAge(route.hsts) : null;
    if (maxAge !== null) hstsMaps.add(maxAge);
    servers.push(serverBlock(plan, name, cert, target, maxAge, route));
  }

  const text = [
    `# Written by viking (lib/router/nginx-config.ts), generation ${plan.generation}, routes at etcd revision ${table.revision}. Do not edit: it is rewritten on every change.`,
    `worker_processes ${Math.max(1, Math.floor(plan.workers))};`,
    `pid ${plan.prefix}/nginx.pid;`,
    // error: a failing app is logged once per request (the plane rotates the file by size).
    `error_log ${plan.errorLogFile && isPath(plan.errorLogFile) ? plan.errorLogFile : `${plan.prefix}/error.log`} error;`,
    // Old workers of a reload finish their requests, then go; websockets and streams get this long after a reload.
    `worker_shutdown_timeout ${RELOAD_GRACE_S}s;`,
    `events { worker_connections ${Math.max(64, plan.maxConnections * 2)}; }`,
    'http {',
    indent(httpSettings(plan)),
    indent([...hstsMaps].sort((a, b) => a - b).map((n) => `map $https $vk_hsts_${n} { on "max-age=${n}"; default ""; }`).join('\n')),
    indent(upstreamBlocks(plan, [...upstreams.values()])),
    indent(defaultServer(plan)),
    indent(servers.join('\n')),
    '}',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
  return { text: `${text}\n`, routes, nextChange };
}

/** The route a server name stands for: as the Router looks it up (exact, then the one-label wildcard); a wildcard name's own route. */
function routeOf(table: RouteTable, name: string): Route | undefined {
  if (name.startsWith('*.')) return table.wildcardRoute(name.slice(2));
  return table.lookup(name);
}

function renderableEndpoint(e: { ip: string; hostPort: number }): boolean {
  // net.isIP takes `fe80::1%eth0`; nginx's upstream does not (and one bad server line would stop every reload).
  return net.isIP(e.ip) !== 0 && !e.ip.includes('%') && Number.isInteger(e.hostPort) && e.hostPort > 0 && e.hostPort < 65536;
}

/** A file path nginx reads: absolute, nothing that ends a directive or a quoted word. */
function isPath(p: string): boolean {
  return p.startsWith('/') && !/[\s;"'{}$\\]/.test(p);
}

function hstsMaxAge(line: string): number | null {
  const m = /^strict-transport-security: max-age=(\d+)\r\n$/.exec(line);
  return m ? Number(m[1]) : null;
}

function listenAddr(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function hostAddr(e: { ip: string; hostPort: number }): string {
  return net.isIPv6(e.ip) ? `[${e.ip}]:${e.hostPort}` : `${e.ip}:${e.hostPort}`;
}

function httpSettings(plan: NginxPlan): string {
  const t = plan.timeouts;
  const trusted = plan.trustedProxies.filter((c) => parseCidr(c) !== null);
  const lines = [
    // Server names are looked up by hash: up to 253 bytes each. (Before any map: the first one fixes the sizes.)
    'server_names_hash_bucket_size 512;',
    'server_names_hash_max_size 65536;',
    'map_hash_bucket_size 128;',
    'variables_hash_bucket_size 128;',
    'server_tokens off;',
    // $vk_route is set only in the blocks of container routes.
    'uninitialized_variable_warn off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${plan.prefix}/tmp/${k};`),
    // The Node engine's client limits, the same on this engine.
    `client_header_timeout ${Math.max(1, Math.round(t.headMs))}ms;`,
    // The second value is the Keep-Alive: timeout=N header the Node engine sends too.
    `keepalive_timeout ${Math.max(1, Math.round(t.idleMs))}ms ${Math.max(1, Math.round(t.idleMs / 1000))};`,
    'keepalive_requests 100000;',
    `large_client_header_buffers 4 ${MAX_HEAD_BYTES / 1024}k;`,
    'client_max_body_size 0;',
    // Bodies and answers stream both ways, as on the Node engine (uploads, server-sent events).
    'proxy_request_buffering off;',
    'proxy_buffering off;',
    'proxy_http_version 1.1;',
    'proxy_connect_timeout 2s;',
    'proxy_read_timeout 300s;',
    'proxy_send_timeout 300s;',
    // A request that never reached an app is tried on another endpoint (nginx never retries a non-idempotent one that did).
    'proxy_next_upstream error timeout;',
    'proxy_next_upstream_tries 3;',
    'proxy_set_header Host $http_host;',
    'proxy_set_header Connection $vk_connection;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header X-Forwarded-For $vk_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Forwarded-Host $http_host;',
    // Hop-by-hop headers the Node engine drops too (forwarding.ts HOP_BY_HOP); nginx already drops TE, Keep-Alive, Expect.
    'proxy_set_header Proxy-Authorization "";',
    'proxy_set_header Proxy-Connection "";',
    'proxy_set_header Trailer "";',
    'proxy_hide_header Proxy-Authenticate;',
    // Header names with underscores reach the app, as on the Node engine.
    'underscores_in_headers on;',
    'map $http_upgrade $vk_connection { default upgrade; "" ""; }',
    'map $https $vk_fallback { on vk_fallback_tls; default vk_fallback; }',
    // The challenge path as the client wrote it (see serverBlock): what the Node engine matches too (tls-redirect.ts).
    `map $request_uri $vk_acme { "~^${ACME_CHALLENGE_PATH.replace(/\./g, '\\.')}" 1; default ""; }`,
    // 1 when the Host header names another host than $host, the name nginx picked the server block by. They differ
    // only for an absolute-form target (`GET http://app.test/ HTTP/1.1` with `Host: evil.test`): nginx routes by the
    // target, but passes the Host header on, so an app got requests for any name at all (router-nginx-hostile.test.ts).
    // Same name: any case, a port, one trailing dot (nginx's $host has none of them).
    'map "$host $http_host" $vk_host_differs { "~*^(\\S+) \\1\\.?(:\\S*)?$" ""; default 1; }',
  ];
  if (trusted.length > 0) {
    // Extended from a trusted proxy, replaced from anyone else (forwarding.ts, TrustedProxies).
    lines.push(`geo $vk_trusted { default 0; ${trusted.map((c) => `${c.trim()} 1;`).join(' ')} }`);
    lines.push('map $vk_trusted $vk_forwarded_for { 1 $proxy_add_x_forwarded_for; default $remote_addr; }');
  } else {
    lines.push('map $remote_addr $vk_forwarded_for { default $remote_addr; }');
  }
  if (plan.listen.httpsPort) {
    lines.push('ssl_protocols TLSv1.2 TLSv1.3;');
    if (plan.tlsResumption) {
      lines.push('ssl_session_tickets on;', 'ssl_session_cache off;');
      if (plan.ticketKeyFile && isPath(plan.ticketKeyFile)) lines.push(`ssl_session_ticket_key ${plan.ticketKeyFile};`);
    } else lines.push('ssl_session_tickets off;', 'ssl_session_cache off;');
  }
  if (plan.logFile && isPath(plan.logFile)) {
    lines.push(`log_format vk escape=json '[${LOG_FIELDS.map((f) => `"${f}"`).join(',')}]';`);
    // Only requests with a route id are written (`set` in their server block). Unbuffered: a line is
    // in the file when its answer was sent, so counters read on demand are exact (one write(2) a request).
    lines.push(`access_log ${plan.logFile} vk if=$vk_route;`);
  } else lines.push('access_log off;');
  return lines.join('\n');
}

function upstreamBlocks(plan: NginxPlan, ups: Array<{ name: string; route: ContainerRoute }>): string {
  // Two fallback servers, so what the Node router forwards says the scheme the client used (nginx adds HSTS and redirects itself).
  const out = [`upstream vk_fallback { server 127.0.0.1:${plan.fallbackPort}; keepalive 16; }`];
  out.push(`upstream vk_fallback_tls { server 127.0.0.1:${plan.fallbackTlsPort}; keepalive 16; }`);
  for (const u of ups) {
    const servers = u.route.endpoints.filter(renderableEndpoint).map((e) => `  server ${hostAddr(e)} max_fails=1 fail_timeout=2s;`);
    out.push(
      [
        `upstream ${u.name} {`,
        `  # ${u.route.stack}/${u.route.node}`.replace(/[^\x20-\x7e]/g, '?'),
        ...(plan.balance === 'least-conn' ? ['  least_conn;'] : []),
        ...servers,
        `  keepalive ${UPSTREAM_KEEPALIVE};`,
        '  keepalive_requests 100000;',
        '  keepalive_timeout 60s;',
        '}',
      ].join('\n'),
    );
  }
  return out.join('\n');
}

function listens(plan: NginxPlan, extra: string): string[] {
  const l = plan.listen;
  // `::` serves IPv4 too, as Node's listen does (nginx binds IPv6 only by default; said once, on the default server).
  if (extra.includes('default_server') && l.host === '::') extra += ' ipv6only=off';
  const out = [`listen ${listenAddr(l.host, l.port)}${extra};`];
  if (l.httpsPort) out.push(`listen ${listenAddr(l.host, l.httpsPort)} ssl http2${extra};`);
  return out;
}

/**
 * nginx answers a request whose Transfer-Encoding is not exactly `chunked` (`chunked, identity`, `gzip,
 * chunked`) with 501 before any location: a 5xx for a client's bad framing, counted as a server error. RFC
 * 9112 6.3 asks for 400 when chunked is not the final coding, and the Node engine says 400: so does this
 * (router-nginx-hostile.test.ts). Said in every server block: one with an error_page of its own inherits none.
 * Only nginx's own 501s: an app's 501 is passed on (proxy_intercept_errors is off).
 */
const badFraming = ['  error_page 501 =400 @vk_400;', '  location @vk_400 { return 400; }'];

/** Names nothing serves: the fallback's 404 page; a TLS handshake for one is refused (no certificate to show). */
function defaultServer(plan: NginxPlan): string {
  return [
    'server {',
    ...listens(plan, ' default_server').map((l) => `  ${l}`),
    ...(plan.listen.httpsPort ? ['  ssl_reject_handshake on;'] : []),
    // Declares the variable for every block (nginx wants a `set` of it somewhere); empty: not logged.
    '  set $vk_route "";',
    ...badFraming,
    ...drainLines(plan, 'http://$vk_fallback', false),
    '}',
  ].join('\n');
}

/** A stack or node name inside a quoted nginx string: names are checked long before, this keeps any odd byte out anyway. */
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '?');

function serverBlock(plan: NginxPlan, name: string, cert: NginxCert | undefined, target: { upstream: string; id: string } | null, maxAge: number | null, route: Route | undefined): string {
  // One label for `*.` (as in certificates), and only a plain one: a Host with odd bytes in it goes to the fallback, never into a redirect.
  const serverName = name.startsWith('*.') ? `~^[a-z0-9-]+${name.slice(1).replace(/\./g, '\\.')}$` : name;
  const lines = [`server {`, ...listens(plan, '').map((l) => `  ${l}`), `  server_name ${serverName.startsWith('~') ? `"${serverName}"` : serverName};`, ...badFraming];
  if (plan.listen.httpsPort) {
    if (cert) lines.push(`  ssl_certificate ${cert.certFile};`, `  ssl_certificate_key ${cert.keyFile};`);
    else lines.push('  ssl_reject_handshake on;');
  }
  const errorPages = target ? ['error_page 502 @vk_502;', 'error_page 504 @vk_504;'] : [];
  if (target) {
    lines.push(`  set $vk_route ${target.id};`);
    // No endpoint answered: a page that names the node and what to run, as the Node engine's (forwarding.ts, failureAnswer).
    const who = route ? `${safe(route.stack)}/${safe(route.node)}` : '';
    lines.push(...errorPages.map((l) => `  ${l}`));
    // An upgrade (websocket) is a tunnel: idle for up to TUNNEL_IDLE_S, not the 300 s between reads of a plain answer.
    lines.push(`  location @vk_tunnel { proxy_pass http://${target.upstream}; proxy_read_timeout ${TUNNEL_IDLE_S}s; proxy_send_timeout ${TUNNEL_IDLE_S}s; }`);
    lines.push(`  location @vk_502 { default_type text/plain; return 502 "502 Bad gateway: ${who} did not answer: connection refused or reset (last tried $upstream_addr). Check it with: viking ps ${route ? safe(route.stack) : ''}\\n"; }`);
    lines.push(`  location @vk_504 { default_type text/plain; return 504 "504 Gateway timeout: ${who} did not answer in time ($upstream_addr).\\n"; }`);
  }
  if (maxAge !== null) lines.push(`  add_header Strict-Transport-Security $vk_hsts_${maxAge} always;`);
  const pass = target ? `http://${target.upstream}` : 'http://$vk_fallback';
  const port = plan.listen.httpsPort === 443 ? '' : `:${plan.listen.httpsPort}`;
  // Plain HTTP goes to HTTPS once a certificate covers the name (tls-redirect.ts), the ACME challenges excepted.
  const redirect = cert ? [`    if ($https = "") { access_log off; return 308 https://$host${port}$request_uri; }`] : [];
  // The challenge path belongs to the router, also when nginx's normalised path leaves it:
  // `/.well-known/acme-challenge/..%2F..%2Fx` is `/x` to `location`, and went to the app
  // with its raw target (router-acme-challenge-nginx.test.ts). The raw target decides, as on
  // the Node engine: it goes to the fallback, which answers 404 for anything but a known token.
  lines.push('  error_page 598 = @vk_acme;', '  location @vk_acme { access_log off; proxy_pass http://$vk_fallback; }');
  // An upgrade (websocket) goes to @vk_tunnel: error_page 418 is said at the server level, as 598 and 599 are, so that
  // `location /` inherits them all (an error_page of its own would replace the whole inherited list).
  const tunnel = target ? ['    if ($http_upgrade != "") { return 418; }'] : [];
  // A Host that is not the name this block serves (see $vk_host_differs) never reaches the app.
  const sameHost = target ? ['    if ($vk_host_differs) { return 400; }'] : [];
  if (target) lines.push('  error_page 418 = @vk_tunnel;');
  lines.push(...drainLines(plan, pass, target !== null, ['    if ($vk_acme) { return 598; }', ...sameHost, ...redirect, ...tunnel]));
  lines.push(`  location ^~ ${ACME_CHALLENGE_PATH} { access_log off; proxy_pass http://$vk_fallback; }`);
  lines.push('}');
  return lines.join('\n');
}

/**
 * The `location /` of a server block, with the reload's drain flag.
 *
 * Why: a reload (SIGHUP) makes nginx's old workers close every idle
 * keep-alive connection at once. A client that sent its next request on
 * one just then gets no answer (a reset: `socket hang up`), and a client
 * may never resend a POST, so under steady keep-alive load every reload
 * failed a few requests (zero-downtime-nginx.test.ts: 5 to 14 a reload).
 * So the plane creates the flag file a moment before each reload: from then
 * on `-f` sees it (a stat(2) per request, no cache, so no lag), the request
 * goes to `@vk_drain`, whose `keepalive_timeout 0` answers it with
 * `Connection: close`. The busy connections end cleanly after their answer,
 * clients open new ones, and when the old workers get the reload no
 * connection sits idle between two requests. `error_page 599 =` keeps the
 * upstream's status and the request body (nothing is read before the
 * redirect); recursive_error_pages lets a 502 there still get the 502 page.
 */
function drainLines(plan: NginxPlan, pass: string, errorPages: boolean, before: string[] = []): string[] {
  const flag = plan.drainFile && isPath(plan.drainFile) ? plan.drainFile : null;
  // A failing app behind @vk_tunnel or @vk_drain still gets the 502/504 page: that is an error page of an error page.
  if (!flag) return [...(errorPages ? ['  recursive_error_pages on;'] : []), `  location / {`, ...before, `    proxy_pass ${pass};`, '  }'];
  return [
    '  error_page 599 = @vk_drain;',
    ...(errorPages ? ['  recursive_error_pages on;'] : []),
    `  location / {`,
    ...before,
    `    if (-f ${flag}) { return 599; }`,
    `    proxy_pass ${pass};`,
    '  }',
    `  location @vk_drain { keepalive_timeout 0; proxy_pass ${pass}; }`,
  ];
}

function indent(text: string): string {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `  ${l}`)
    .join('\n');
}
