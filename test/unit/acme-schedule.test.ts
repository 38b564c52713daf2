/**
 * The ACME issuer's rules as plain data: when a certificate is renewed, how
 * the backoff grows, what the issuer does for a domain, which challenge
 * paths the router looks up, and which flags are accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffMs, failedStatus, nameCovers, planDomain, renewAt, DEFAULT_BACKOFF, RENEW_BEFORE_MS } from '../../lib/certs/acme-schedule.js';
import { challengeToken, ChallengeAnswers, CHALLENGE_PATH } from '../../lib/router/acme-challenges.js';
import { parseAcmeFlags, LETS_ENCRYPT_DIRECTORY } from '../../lib/certs/acme-config.js';
import { acmeSettings } from '../../lib/cli/commands/acme-flags.js';
import type { CertRecord, CertStatus } from '../../lib/certs/record.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const record = (notBefore: number, lifetimeMs: number, source: CertRecord['source'] = 'acme'): CertRecord => ({
  domain: 'a.example.com', names: ['a.example.com'], source, issuer: 'X', notBefore: iso(notBefore), notAfter: iso(notBefore + lifetimeMs),
  certPem: '', keyPem: '', fingerprint: '', updatedAt: iso(notBefore),
});

test('renewal: 30 days before expiry for long certificates, at two thirds of a short lifetime', () => {
  const cases: Array<[string, number, number]> = [
    ['90 days', 90 * DAY, 60 * DAY],
    ['365 days', 365 * DAY, 335 * DAY],
    ['90 days exactly: both rules agree', 90 * DAY, 60 * DAY],
    ['6 days (short-lived)', 6 * DAY, 4 * DAY],
    ['45 days', 45 * DAY, 30 * DAY],
    ['30 seconds', 30_000, 20_000],
  ];
  for (const [name, life, after] of cases) assert.equal(renewAt(iso(T0), iso(T0 + life)) - T0, after, name);
  fc.assert(
    fc.property(fc.integer({ min: 1000, max: 400 * DAY }), (life) => {
      const due = renewAt(iso(T0), iso(T0 + life)) - T0;
      return due < life && due >= life - RENEW_BEFORE_MS && due >= (life * 2) / 3 - 1;
    }),
  );
});

test('backoff doubles from the base and stops at the maximum', () => {
  const p = { baseMs: 1000, maxMs: 10_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 100].map((n) => backoffMs(n, p)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  assert.equal(backoffMs(1), DEFAULT_BACKOFF.baseMs);
  const s1 = failedStatus('a.example.com', null, 'boom', T0, p);
  assert.deepEqual([s1.state, s1.failures, s1.nextTryAt], ['failed', 1, iso(T0 + 1000)]);
  const s2 = failedStatus('a.example.com', { ...s1, state: 'pending' }, 'boom', T0, p);
  assert.deepEqual([s2.failures, s2.nextTryAt], [2, iso(T0 + 2000)]);
});

test('what the issuer does for a domain', () => {
  const now = T0 + 10 * DAY;
  const failed = (at: number): CertStatus => ({ domain: 'a.example.com', state: 'failed', lastError: 'x', failures: 2, nextTryAt: iso(at), updatedAt: iso(now) });
  const cases: Array<[string, Parameters<typeof planDomain>, ReturnType<typeof planDomain>['kind'], boolean?]> = [
    ['no certificate: order', ['a.example.com', null, null, now], 'order', false],
    ['fresh certificate: wait', ['a.example.com', record(T0, 90 * DAY), null, now], 'wait'],
    ['due certificate: renew', ['a.example.com', record(T0 - 70 * DAY, 90 * DAY), null, now], 'order', true],
    ['expired certificate: renew', ['a.example.com', record(T0 - 100 * DAY, 90 * DAY), null, now], 'order', true],
    ['custom certificate: never replaced', ['a.example.com', record(T0 - 100 * DAY, 90 * DAY, 'custom'), null, now], 'wait'],
    ['covered by a custom wildcard: nothing ordered', ['a.example.com', null, null, now, ['*.example.com']], 'wait'],
    ['a wildcard two labels up does not cover', ['a.b.example.com', null, null, now, ['*.example.com']], 'order', false],
    ['failed, backoff not over: wait', ['a.example.com', null, failed(now + 1000), now], 'wait'],
    ['failed, backoff over: order again', ['a.example.com', null, failed(now - 1), now], 'order', false],
    ['wildcard: fail', ['*.example.com', null, null, now], 'fail'],
    ['wildcard with a custom certificate: nothing to do', ['*.example.com', record(T0, 90 * DAY, 'custom'), null, now], 'wait'],
    ['custom certificate after an ACME failure: the stale status goes', ['a.example.com', record(T0, 90 * DAY, 'custom'), failed(now + 1000), now], 'clear'],
    ['covered by a custom wildcard after a failure: the stale status goes', ['a.example.com', null, failed(now + 1000), now, ['*.example.com']], 'clear'],
  ];
  for (const [name, args, kind, renewal] of cases) {
    const plan = planDomain(...args);
    assert.equal(plan.kind, kind, name);
    if (plan.kind === 'order') assert.equal(plan.renewal, renewal, name);
  }
  const wildcard = planDomain('*.example.com', null, null, now);
  assert.ok(wildcard.kind === 'fail' && /viking certs add/.test(wildcard.error));
  // Reported once: the same failure is not written again on every pass.
  assert.equal(planDomain('*.example.com', null, { domain: '*.example.com', state: 'failed', lastError: wildcard.error, updatedAt: '' }, now).kind, 'wait');
  assert.deepEqual([nameCovers('*.example.com', 'example.com'), nameCovers('*.example.com', '*.example.com'), nameCovers('A.example.com', 'a.EXAMPLE.com')], [false, true, true]);
});

test('challenge paths: only a bounded base64url token is looked up', () => {
  const token = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA';
  assert.equal(challengeToken(`${CHALLENGE_PATH}${token}`), token);
  for (const bad of ['', 'short', 'A'.repeat(129), `${token}/`, `${token}?x`, `${token}.`, '..%2F', `${token} `, `${token}\u00e9`]) {
    assert.equal(challengeToken(`${CHALLENGE_PATH}${bad}`), null, bad);
  }
  assert.equal(challengeToken(`/x${CHALLENGE_PATH}${token}`), null);
  assert.equal(challengeToken(undefined), null);
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      const t = challengeToken(`${CHALLENGE_PATH}${s}`);
      return t === null || (t === s && /^[A-Za-z0-9_-]{16,128}$/.test(s));
    }),
    { numRuns: 2000 },
  );
  const answers = new ChallengeAnswers();
  answers.replace([[token, `${token}.thumbprintthumbprint1234`], ['b'.repeat(43), 'not a key authorization'], ['c'.repeat(43), `${token}.thumbprintthumbprint1234`]]);
  assert.equal(answers.size, 1, 'values that are not <token>.<thumbprint> for their own token are dropped');
  assert.equal(answers.answer('GET', `${CHALLENGE_PATH}${token}`), `${token}.thumbprintthumbprint1234`);
  assert.equal(answers.answer('POST', `${CHALLENGE_PATH}${token}`), undefined);
});

test('ACME flags: an email turns it on, off turns it off, bad input is refused with the flag named', () => {
  assert.deepEqual(parseAcmeFlags('ops@example.com'), { directoryUrl: LETS_ENCRYPT_DIRECTORY, email: 'ops@example.com' });
  assert.deepEqual(parseAcmeFlags('ops@example.com', 'https://127.0.0.1:14000/dir'), { directoryUrl: 'https://127.0.0.1:14000/dir', email: 'ops@example.com' });
  assert.equal(parseAcmeFlags('off'), null);
  assert.throws(() => parseAcmeFlags('not-an-email'), /--acme-email/);
  assert.throws(() => parseAcmeFlags('mailto:ops@example.com'), /--acme-email/);
  assert.throws(() => parseAcmeFlags('ops@example.com', 'http://acme.example.com/dir'), /--acme-directory must be an https/);
  assert.throws(() => parseAcmeFlags('ops@example.com', 'nope'), /--acme-directory/);
  // The host's settings: nothing given leaves the cluster's setting alone; a directory alone is refused.
  assert.deepEqual(acmeSettings({}), {});
  assert.deepEqual(acmeSettings({ 'acme-email': 'off' }), { acme: { settings: null } });
  assert.deepEqual(acmeSettings({ 'acme-issuer-ttl': 4 }), { acme: { issuerTtlSeconds: 4 } });
  assert.throws(() => acmeSettings({ 'acme-directory': 'https://x.example/dir' }), /--acme-directory needs --acme-email/);
});
