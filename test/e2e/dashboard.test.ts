/**
 * The dashboard in a real browser (Debian's chromium, headless, driven by
 * playwright-core) against a real `viking up` cluster with a pushed stack:
 * sign in, see the stack; scale from the CLI and see the count change
 * without a reload; roll back from the UI and see the release and the served
 * body switch; follow logs and see a request's line; watch a push's stages
 * appear live; sign out; a bad token
 * refused. Plus, at the API: the session cookie's flags and CSRF for cookie
 * sessions, and the page's Content-Security-Policy.
 *
 * VIKING_UI_SCREENSHOTS=docs saves a screenshot of each page there (README).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runCli } from '../helpers/host-process.js';
import { baseImages, removeHostContainers, removeStackArtifacts } from '../helpers/docker.js';
import { helloCopy } from '../helpers/hello.js';
import { routerGet } from '../helpers/http.js';
import { uniqueName, waitFor } from '../helpers/wait.js';
import { freePortPair, seedToken, startUp, type UpProcess } from '../helpers/up-process.js';

const CHROMIUM = process.env.VIKING_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.VIKING_UI_SCREENSHOTS;
const name = uniqueName('ui');
const stack = uniqueName('uidash');
const domain = `${stack}.local`;
let work: string;
let up: UpProcess;
let browser: Browser;
let page: Page;
let api: string;
let token: string;
let routerPort: number;
let cli: NodeJS.ProcessEnv;
/** The last test sent SIGINT already (after() then waits only briefly before killing). */
let sigintSent = false;

/** hello, answering `message`, one replica, logging every request it serves. */
async function pushRelease(message: string): Promise<void> {
  const dir = await helloCopy({ dir: path.join(work, 'src'), stack, message, domain, edit: (vf) => vf.replace('scale: 2', 'scale: 1') });
  const server = path.join(dir, 'server.js');
  const js = await readFile(server, 'utf8');
  await writeFile(server, js.replace('const server = http.createServer((req, res) => {', "const server = http.createServer((req, res) => {\n  if (req.url !== '/health') console.log(`served ${req.url}`);"));
  const push = await runCli(['push', dir], cli);
  assert.equal(push.code, 0, `${push.stdout}\n${push.stderr}`);
}

async function shot(file: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, file) });
}

before(async () => {
  await baseImages();
  work = await mkdtemp(path.join(os.tmpdir(), 'viking-ui-'));
  const ip = '127.0.0.1';
  up = startUp({ name, ip, dataDir: path.join(work, 'data'), etcdPort: await freePortPair(ip) });
  const ports = await up.ready;
  routerPort = ports.router;
  api = `http://${ip}:${ports.api}`;
  token = await seedToken(up);
  cli = { VIKING_API: api, VIKING_TOKEN: token };
  // Two pushes that differ in their message (env overrides would follow a rollback; a message does not).
  const t0 = Date.now();
  await pushRelease('first release');
  await pushRelease('second release');
  console.log(`# cluster up, v1 and v2 pushed in ${Date.now() - t0} ms`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  page = await (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage();
});

/** Processes whose parent is `pid` (viking up's etcd). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
  }
  return out;
}

after(async () => {
  const t0 = Date.now();
  await browser?.close();
  if (up && up.child.exitCode === null && up.child.pid) {
    // Ctrl-C stops everything it started. With a dashboard event stream open it has been seen to take
    // ~70 s (the todo test below; up.test.ts stops in seconds): past 8 s, end it and its etcd by PID.
    const kids = await childrenOf(up.child.pid);
    const waitMs = sigintSent ? 1000 : 8000;
    up.child.kill('SIGINT');
    const stopped = await Promise.race([up.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), waitMs))]);
    if (!stopped) {
      console.log('# viking up was still stopping after SIGINT: killing it and its etcd');
      up.child.kill('SIGKILL');
      for (const pid of kids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await up.exited;
    }
  }
  console.log(`# browser and cluster stopped in ${Date.now() - t0} ms`);
  await removeHostContainers(name);
  await removeStackArtifacts(stack);
  if (work) await rm(work, { recursive: true, force: true });
});

test('the page is served with its own script only, under a strict Content-Security-Policy', async () => {
  const res = await fetch(`${api}/ui`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script>(?!<\/)|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /https?:\/\//, 'nothing from elsewhere');
  const js = await fetch(`${api}/ui/app.js`);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.equal((await fetch(`${api}/ui/..%2Fpackage.json`)).status, 404);
});

test('a bad token is refused and leaves no session', async () => {
  await page.goto(`${api}/ui`);
  await page.getByLabel('API token').fill('vkt_000000000000_notarealtoken');
  await page.getByLabel('API token').press('Enter');
  await page.getByText('VIKING_E_UNAUTHORIZED').waitFor({ timeout: 5000 });
  const cookies = await page.context().cookies();
  assert.equal(cookies.find((c) => c.name === 'viking_session'), undefined);
});

test('sign in with the token (keyboard only) and see the cluster and the pushed stack', async () => {
  await page.getByLabel('API token').fill(token);
  await page.getByLabel('API token').press('Enter');
  await page.locator(`tr[data-host="${name}"]`).waitFor({ timeout: 5000 });
  assert.match(await page.locator(`tr[data-host="${name}"]`).innerText(), /leader/);
  const session = (await page.context().cookies()).find((c) => c.name === 'viking_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate('document.cookie.includes("viking_session")'), false, 'page scripts cannot read the token');
  assert.ok(!page.url().includes(token.slice(4)), 'the token is in no URL');
  await page.locator('[data-live="true"]').waitFor({ timeout: 5000 });
  await shot('ui-cluster.png');

  await page.getByRole('link', { name: 'Stacks' }).click();
  const row = page.locator(`tr[data-stack="${stack}"]`);
  await row.waitFor({ timeout: 5000 });
  await page.locator(`tr[data-stack="${stack}"] [data-health="${stack}"]`).filter({ hasText: '1/1' }).waitFor({ timeout: 5000 });
  const text = await row.innerText();
  assert.match(text, /v2/);
  assert.match(text, new RegExp(domain.replace(/\./g, '\\.')));
  await shot('ui-stacks.png');

  // A phone's width: nothing but the tables' own scroll areas is wider than the screen.
  await page.setViewportSize({ width: 390, height: 800 });
  assert.ok((await page.evaluate('document.documentElement.scrollWidth')) as number <= 391, 'the page fits a phone');
  await shot('ui-phone.png');
  await page.setViewportSize({ width: 1100, height: 720 });
});

test('roll back from the UI, confirmed: the release switches and the served body changes', async () => {
  assert.match((await routerGet({ port: routerPort, host: domain })).body, /second release/);
  await page.getByRole('link', { name: stack }).click();
  await page.locator('[data-live-release]').filter({ hasText: 'v2' }).waitFor({ timeout: 5000 });
  await page.getByRole('button', { name: 'Roll back to v1' }).click();
  await page.getByRole('dialog').waitFor({ timeout: 2000 });
  await shot('ui-rollback.png');
  await page.getByRole('button', { name: 'Confirm rollback to v1' }).click();
  await page.locator('[data-live-release]').filter({ hasText: 'v3' }).waitFor({ timeout: 30_000 });
  await waitFor('the router to serve v1 again', async () => /first release/.test((await routerGet({ port: routerPort, host: domain })).body), 10_000);
  const row = page.locator('tr[data-release="v3"]');
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.innerText(), /rollback of v1/);
});

test('scale from the CLI: the stack page shows the new count without a reload, within 2 s', async () => {
  const health = page.locator(`dd[data-health="${stack}"]`);
  await health.filter({ hasText: '1/1' }).waitFor({ timeout: 5000 });
  await page.evaluate('window.marker = 42');
  const scaled = await runCli(['scale', stack, 'web=2'], cli);
  assert.equal(scaled.code, 0, `${scaled.stdout}\n${scaled.stderr}`);
  const t0 = Date.now();
  await health.filter({ hasText: '2/2' }).waitFor({ timeout: 2000 });
  const ms = Date.now() - t0;
  assert.equal(await page.evaluate('window.marker'), 42, 'the page was not reloaded');
  console.log(`# scale seen in the browser ${ms} ms after the CLI returned`);
  await shot('ui-stack.png');
});

test("the replica page shows its host, state and dowding's verdict on every host", async () => {
  await page.getByRole('link', { name: 'web.1' }).click();
  const verdict = page.locator(`tr[data-verdict="${name}"]`);
  await verdict.waitFor({ timeout: 5000 });
  assert.match(await verdict.innerText(), /yes/);
  assert.match(await page.locator('.facts').innerText(), new RegExp(`${name}[\\s\\S]*running`));
  await shot('ui-replica.png');
});

test('follow logs: a request through the router appears; filter and pause', async () => {
  await page.goto(`${api}/ui#/logs/${stack}/web`);
  await page.locator('[data-following="true"]').waitFor({ timeout: 5000 });
  const probe = `/probe-${Math.random().toString(36).slice(2, 8)}`;
  assert.equal((await routerGet({ port: routerPort, host: domain, path: probe })).status, 200);
  const lines = page.locator('[data-log-lines]');
  await lines.filter({ hasText: `served ${probe}` }).waitFor({ timeout: 5000 });

  await page.getByLabel('Filter').fill(probe);
  await waitFor('only matching lines', async () => (await lines.innerText()).trim().split('\n').every((l) => l.includes(probe)), 3000);
  await page.getByRole('button', { name: 'Pause' }).click();
  const later = `/later-${Math.random().toString(36).slice(2, 8)}`;
  await page.getByLabel('Filter').fill('');
  assert.equal((await routerGet({ port: routerPort, host: domain, path: later })).status, 200);
  await page.getByRole('button', { name: 'Resume' }).click();
  await lines.filter({ hasText: `served ${later}` }).waitFor({ timeout: 5000 });
  await shot('ui-logs.png');
});

test('a push from the CLI: its stages appear live on the stack page, then it says done', async () => {
  await page.goto(`${api}/ui#/stack/${stack}`);
  await page.locator(`dd[data-health="${stack}"]`).waitFor({ timeout: 5000 });
  await page.evaluate('window.marker = 43');
  const pushed = pushRelease('third release');
  // While the CLI still waits, the page shows the push running, stage by stage.
  // (Pushes that ended within the grace period are shown too: follow this one by its id.)
  const running = page.locator('[data-push][data-push-state="running"]').first();
  await running.locator('[data-stage]').first().waitFor({ timeout: 15_000 });
  const id = await running.getAttribute('data-push');
  const mine = page.locator(`[data-push="${id}"]`);
  await mine.locator('[data-stage="deploy"]').waitFor({ timeout: 30_000 });
  await pushed;
  await page.locator(`[data-push="${id}"][data-push-state="done"]`).waitFor({ timeout: 5000 });
  assert.match(await mine.locator('pre.output').innerText(), /build: /);
  assert.equal(await page.evaluate('window.marker'), 43, 'the page was not reloaded');
  await shot('ui-push.png');
});

test('sign out clears the session', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor({ timeout: 5000 });
  assert.equal((await page.context().cookies()).find((c) => c.name === 'viking_session' && c.value !== ''), undefined);
  const who = await page.evaluate(async () => (await fetch('/v1/whoami')).status);
  assert.equal(who, 401);
});

test('API: a cookie session needs the CSRF header for every change; a bearer token does not', async () => {
  const signIn = await fetch(`${api}/ui/session`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.equal(signIn.status, 200);
  const set = signIn.headers.getSetCookie();
  const session = set.find((c) => c.startsWith('viking_session='))!;
  assert.match(session, /HttpOnly/);
  assert.match(session, /SameSite=Strict/);
  const csrf = ((await signIn.json()) as { csrf: string }).csrf;
  const cookie = set.map((c) => c.split(';')[0]).join('; ');
  // An empty body is refused by the route's schema (400) once auth let it through: nothing changes.
  const scale = (headers: Record<string, string>) =>
    fetch(`${api}/v1/scale/${stack}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });

  const bare = await scale({ cookie });
  assert.equal(bare.status, 403);
  assert.equal(((await bare.json()) as { code: string }).code, 'VIKING_E_CSRF');
  const wrong = await scale({ cookie, 'x-viking-csrf': `${csrf.slice(0, -2)}xx` });
  assert.equal(((await wrong.json()) as { code: string }).code, 'VIKING_E_CSRF');
  const right = await scale({ cookie, 'x-viking-csrf': csrf });
  assert.equal(right.status, 400, await right.text());
  assert.equal((await scale({ authorization: `Bearer ${token}` })).status, 400, 'the CLI needs no CSRF token');
  assert.equal((await fetch(`${api}/v1/whoami`, { headers: { cookie } })).status, 200, 'reads need none either');
  assert.equal((await fetch(`${api}/ui/session`, { method: 'DELETE', headers: { cookie } })).status, 403, 'signing out is a change too');
  const events = await fetch(`${api}/v1/events`, { headers: { cookie } });
  assert.match(events.headers.get('content-type') ?? '', /^text\/event-stream/);
  await events.body?.cancel();
});

// A stream that never ends by itself once held the stop ~70 s; the host now cuts API sockets 3 s into its stop.
test('Ctrl-C stops viking up promptly while a dashboard event stream is open', async () => {
  const events = await fetch(`${api}/v1/events`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(events.status, 200);
  const reader = events.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /event: hello/);
  const t0 = Date.now();
  up.child.kill('SIGINT');
  sigintSent = true;
  const code = await Promise.race([up.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
  assert.equal(code, 0, `viking up after SIGINT: ${code}`);
  console.log(`# viking up stopped ${Date.now() - t0} ms after SIGINT with a stream open`);
  await reader.cancel().catch(() => {});
});
