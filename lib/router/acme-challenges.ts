/**
 * ACME HTTP-01 answers on every router. The issuer (lib/certs/acme-issuer.ts)
 * puts `/acme-challenge/<token>` = key authorization under its lease; the CA
 * may send its validation request to any router, so each one answers
 * `GET /.well-known/acme-challenge/<token>` from etcd.
 *
 * The host process watches the prefix (ChallengeFeed) and hands the whole
 * set to its HTTP servers (in-process or each worker over IPC); the servers
 * look tokens up in memory (ChallengeAnswers). The path belongs to the
 * router on every domain: a request for it never reaches an app. Hostile
 * input: only a base64url token of bounded length is looked up; any other
 * path under the prefix, any other method, an unknown token: 404.
 */
import type http from 'node:http';
import type { Etcd3 } from 'etcd3';
import { WakeLoop } from '../control/wake-loop.js';
import { watchPrefix, type PrefixWatch } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { errorPage } from './pages.js';

export const CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** RFC 8555 tokens are base64url with at least 128 bits of entropy; Let's Encrypt's are 43 characters. */
const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
/** A key authorization is `<token>.<base64url thumbprint>`. */
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{16,128}\.[A-Za-z0-9_-]{16,128}$/;

export const isChallengeToken = (token: string): boolean => TOKEN.test(token);

/** The token of a request target under CHALLENGE_PATH, or null when the target is anything else. */
export function challengeToken(target: string | undefined): string | null {
  if (!target || !target.startsWith(CHALLENGE_PATH)) return null;
  const token = target.slice(CHALLENGE_PATH.length);
  return TOKEN.test(token) ? token : null;
}

/** The answers one HTTP server gives: token -> key authorization, swapped whole on every change. */
export class ChallengeAnswers {
  private answers = new Map<string, string>();

  replace(entries: ReadonlyArray<readonly [string, string]>): void {
    const next = new Map<string, string>();
    for (const [token, keyAuthorization] of entries) {
      if (TOKEN.test(token) && KEY_AUTHORIZATION.test(keyAuthorization) && keyAuthorization.startsWith(`${token}.`)) next.set(token, keyAuthorization);
    }
    this.answers = next;
  }

  get size(): number {
    return this.answers.size;
  }

  /** The key authorization for a request target, or undefined (404). */
  answer(method: string | undefined, target: string | undefined): string | undefined {
    if (method !== 'GET' && method !== 'HEAD') return undefined;
    const token = challengeToken(target);
    return token === null ? undefined : this.answers.get(token);
  }

  /** Answers a request whose target starts with CHALLENGE_PATH (node:http side). */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const body = this.answer(req.method, req.url);
    if (body === undefined) return errorPage(res, 404, 'No such ACME challenge', 'this router holds no ACME HTTP-01 answer for that token');
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

export interface ChallengeFeedOptions {
  client: Etcd3;
  /** Every change (and every resync) hands the whole current set. */
  onChange: (entries: Array<[string, string]>) => void;
  resyncMs?: number;
  log?: (msg: string) => void;
}

/** The host process' side: watches `/acme-challenge/` and re-reads it whole on each event and every resync. */
export class ChallengeFeed {
  private watch: PrefixWatch | undefined;
  private resync: NodeJS.Timeout | undefined;
  private last = '';
  latest: Array<[string, string]> = [];
  private readonly loop = new WakeLoop(
    async () => {
      const res = await this.o.client.getAll().prefix(PREFIX.acmeChallenge).strings();
      const entries = Object.entries(res)
        .map(([key, value]): [string, string] => [key.slice(PREFIX.acmeChallenge.length), value])
        .sort(([a], [b]) => (a < b ? -1 : 1));
      const text = JSON.stringify(entries);
      if (text === this.last) return;
      this.last = text;
      this.latest = entries;
      this.o.onChange(entries);
    },
    (err) => this.o.log?.(`router: reading ACME challenges failed: ${err.message}`),
  );

  constructor(private readonly o: ChallengeFeedOptions) {}

  start(): void {
    this.watch = watchPrefix(this.o.client, PREFIX.acmeChallenge, () => this.loop.wake());
    this.resync = setInterval(() => this.loop.wake(), this.o.resyncMs ?? 5000);
    this.loop.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    await this.watch?.cancel();
    await this.loop.stop();
  }
}
