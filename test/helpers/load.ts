/**
 * Continuous keep-alive client load through a router: half the clients send
 * GETs, half POSTs with a body (which a router may never replay). Every
 * answer is counted; anything but a 200 whose body matches `ok` is a failure.
 */
import http from 'node:http';

export interface LoadOptions {
  port: number;
  host: string;
  ip?: string;
  clients?: number;
  /** A body that proves the app answered (default: any body). */
  ok?: RegExp;
  /** What an answer is counted under in `answeredBy`: the first group of this match (default: `from <name>:`). */
  by?: RegExp;
  /** A pause between one client's requests, in ms (default none: back to back). */
  pauseMs?: number;
}

export class Load {
  ok = 0;
  failed: string[] = [];
  /** Answers counted by what `by` found in their body: by default which replica (container hostname) answered. */
  answeredBy = new Map<string, number>();
  private running = true;
  private readonly agent: http.Agent;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly o: LoadOptions) {
    const clients = o.clients ?? 8;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: clients });
    for (let i = 0; i < clients; i++) this.loops.push(this.loop(i % 2 === 0 ? 'GET' : 'POST'));
  }

  private one(method: 'GET' | 'POST'): Promise<void> {
    return new Promise((resolve) => {
      const body = method === 'POST' ? '{"order":42}' : undefined;
      const headers = { host: this.o.host, ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) };
      const req = http.request({ method, host: this.o.ip ?? '127.0.0.1', port: this.o.port, path: '/', headers, agent: this.agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          if (res.statusCode === 200 && (this.o.ok ?? /./).test(text)) {
            this.ok++;
            const by = (this.o.by ?? /from (\S+):/).exec(text)?.[1];
            if (by) this.answeredBy.set(by, (this.answeredBy.get(by) ?? 0) + 1);
          } else this.failed.push(`${method} HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
          resolve();
        });
        res.on('error', (err) => {
          this.failed.push(`${method} response error: ${err.message}`);
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.on('error', (err) => {
        this.failed.push(`${method} request error: ${err.message}`);
        resolve();
      });
      req.end(body);
    });
  }

  private async loop(method: 'GET' | 'POST'): Promise<void> {
    while (this.running) {
      await this.one(method);
      if (this.o.pauseMs) await new Promise((r) => setTimeout(r, this.o.pauseMs));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.agent.destroy();
  }

  get total(): number {
    return this.ok + this.failed.length;
  }
}
