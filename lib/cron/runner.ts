/**
 * A host's part of cron: runs to completion the cron runs the leader placed
 * here (`/cron/host/<me>/<stack>/<node>/<tick>`, the job spec), and writes
 * how each went into its history record (`/cron/runs/...`): exit code,
 * duration, the last lines of its output.
 *
 * It watches only its own prefix (backed by a periodic resync), like the
 * slave. Its containers carry the cluster id and `viking.cron.host`, not the
 * slave's `viking.host` label, so the slave never takes them for replicas it
 * does not want. A host that restarts mid-run finds the run's container by
 * its labels and waits for it instead of starting a second one.
 */
import type Docker from 'dockerode';
import type { Etcd3 } from 'etcd3';
import { readPrefix, watchPrefix, type PrefixWatch } from '../store/client.js';
import { WakeLoop } from '../control/wake-loop.js';
import { REGISTRY_KEY, cronHostKey, cronHostPrefix, cronRunKey, parseCronPath } from '../store/keys.js';
import type { ContainerLimits, CronRunRecord, JobSpec } from '../store/records.js';
import { LABEL, ensureImage, lastLogLines } from '../slave/containers.js';
import { DEFAULT_LIMITS, dockerEnv, jobCommand, jobEnv, sandboxHostConfig } from '../slave/sandbox.js';

export const CRON_LABEL = { host: 'viking.cron.host', run: 'viking.cron.run' } as const;
/** Output lines kept per run, each cut to CRON_LOG_LINE_CHARS. */
export const CRON_LOG_LINES = 20;
export const CRON_LOG_LINE_CHARS = 500;

export interface CronRunnerOptions {
  host: string;
  cluster: string;
  client: Etcd3;
  docker: Docker;
  limits?: ContainerLimits;
  resyncMs?: number;
  log?: (msg: string) => void;
}

interface Assignment {
  key: string;
  stack: string;
  node: string;
  tick: number;
  spec: JobSpec;
}

export class CronRunner {
  private readonly inFlight = new Set<string>();
  /**
   * Runs this process finished, by id, with when: a pass whose etcd read
   * came before a run deleted its assignment must not start it again (a
   * tick is never assigned twice, so an id once done stays done).
   */
  private readonly done = new Map<string, number>();
  private watch: PrefixWatch | undefined;
  private resync: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly loop = new WakeLoop(() => this.pass(), (err) => this.o.log?.(`cron runner pass failed: ${err.message}`), 1000);

  constructor(private readonly o: CronRunnerOptions) {}

  start(): void {
    this.stopped = false;
    this.watch = watchPrefix(this.o.client, cronHostPrefix(this.o.host), () => this.loop.wake());
    this.resync = setInterval(() => this.loop.wake(), this.o.resyncMs ?? 5000);
    this.loop.start();
  }

  /** Stops watching; runs in flight keep their containers, which the next start adopts. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    await this.watch?.cancel();
    await this.loop.stop();
  }

  private labels(): string[] {
    return [`${LABEL.cluster}=${this.o.cluster}`, `${CRON_LABEL.host}=${this.o.host}`];
  }

  private async pass(): Promise<void> {
    const read = await readPrefix<JobSpec>(this.o.client, cronHostPrefix(this.o.host));
    const wanted: Assignment[] = [];
    for (const e of read.entries) {
      const p = parseCronPath(e.key.slice(cronHostPrefix(this.o.host).length));
      if (p && e.value) wanted.push({ key: e.key, ...p, spec: e.value });
    }
    const containers = await this.o.docker.listContainers({ all: true, filters: { label: this.labels() } });
    const byRun = new Map(containers.map((c) => [c.Labels[CRON_LABEL.run] ?? '', c.Id]));
    for (const a of wanted) {
      const id = `${a.stack}/${a.node}/${a.tick}`;
      if (this.inFlight.has(id) || this.done.has(id)) continue;
      this.inFlight.add(id);
      void this.run(a, byRun.get(id)).finally(() => {
        this.done.set(id, Date.now());
        this.inFlight.delete(id);
      });
    }
    for (const [id, at] of this.done) if (Date.now() - at > 10 * 60_000) this.done.delete(id);
    // Containers of runs no longer wanted here (marked lost while this host was away): gone.
    const ids = new Set(wanted.map((a) => `${a.stack}/${a.node}/${a.tick}`));
    for (const [run, cid] of byRun) {
      if (!ids.has(run) && !this.inFlight.has(run)) await this.o.docker.getContainer(cid).remove({ force: true }).catch(() => {});
    }
  }

  /** Updates the run's history record, only while it exists (a removed stack takes its history along). */
  private async report(a: Assignment, change: Partial<CronRunRecord>): Promise<void> {
    const key = cronRunKey(a.stack, a.node, a.tick);
    const text = await this.o.client.get(key).string();
    if (text === null) return;
    const next = { ...(JSON.parse(text) as CronRunRecord), ...change };
    await this.o.client.if(key, 'Version', '>', 0).then(this.o.client.put(key).value(JSON.stringify(next))).commit();
  }

  /** `placed` here -> `running`, in one transaction on the record's revision and the assignment's presence. */
  private async begin(a: Assignment): Promise<boolean> {
    const key = cronRunKey(a.stack, a.node, a.tick);
    const res = await this.o.client.get(key).exec();
    const kv = res.kvs[0];
    if (!kv) return false;
    const rec = JSON.parse(kv.value.toString()) as CronRunRecord;
    if (rec.state === 'running' && rec.host === this.o.host) {
      // Begun by this host before it restarted, with no container left: it may not have run; it is not run twice.
      throw new Error('this host restarted after it began the run and before its container started; the tick is not run again');
    }
    if (rec.state !== 'placed' || rec.host !== this.o.host) return false;
    const next: CronRunRecord = { ...rec, state: 'running', startedAt: new Date().toISOString() };
    const txn = await this.o.client
      .if(key, 'Mod', '==', kv.mod_revision)
      .and(a.key, 'Version', '>', 0)
      .then(this.o.client.put(key).value(JSON.stringify(next)))
      .commit();
    return txn.succeeded;
  }

  private async run(a: Assignment, existing: string | undefined): Promise<void> {
    const where = `${a.stack}/${a.node} tick ${new Date(a.tick).toISOString()}`;
    let id = existing;
    let started = Date.now();
    try {
      if (id) {
        const info = await this.o.docker.getContainer(id).inspect();
        started = Date.parse(info.State.StartedAt) || started;
      } else {
        // Begin the run in etcd first, only while it is still placed here (the leader moves a run
        // no host began away from a host that died): after this, it is never run elsewhere.
        if (!(await this.begin(a))) return;
        id = await this.create(a);
        started = Date.now();
        await this.report(a, { container: id, startedAt: new Date(started).toISOString() });
        this.o.log?.(`cron: ${where}: started ${id.slice(0, 12)}`);
      }
      const container = this.o.docker.getContainer(id);
      const waited = (await container.wait()) as { StatusCode?: number };
      const info = await container.inspect();
      const finished = Date.parse(info.State.FinishedAt) || Date.now();
      const exitCode = waited.StatusCode ?? info.State.ExitCode;
      const logs = (await lastLogLines(this.o.docker, id, CRON_LOG_LINES)).map((l) => l.slice(0, CRON_LOG_LINE_CHARS));
      const ok = exitCode === 0;
      await this.report(a, {
        state: ok ? 'succeeded' : 'failed',
        host: this.o.host,
        container: id,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(finished).toISOString(),
        durationMs: Math.max(0, finished - started),
        exitCode,
        logs,
        ...(ok ? {} : { reason: info.State.OOMKilled ? 'killed: out of memory' : `exited with code ${exitCode}` }),
      });
      this.o.log?.(`cron: ${where}: exited ${exitCode} after ${finished - started} ms`);
    } catch (err) {
      if (this.stopped) return;
      await this.report(a, { state: 'failed', host: this.o.host, finishedAt: new Date().toISOString(), reason: `could not run: ${(err as Error).message}` }).catch(() => {});
      this.o.log?.(`cron: ${where}: could not run: ${(err as Error).message}`);
    }
    if (id) await this.o.docker.getContainer(id).remove({ force: true }).catch(() => {});
    await this.o.client.delete().key(cronHostKey(this.o.host, a.stack, a.node, a.tick));
  }

  private async create(a: Assignment): Promise<string> {
    const spec = a.spec;
    const limits = this.o.limits ?? DEFAULT_LIMITS;
    const registry = (await this.o.client.get(REGISTRY_KEY).string()) ?? undefined;
    await ensureImage(this.o.docker, spec.image, registry);
    const env = jobEnv(spec, { host: this.o.host, port: false, extra: { VIKING_CRON_TICK: new Date(a.tick).toISOString() } });
    const cmd = jobCommand(spec.run);
    const name = `viking-${this.o.cluster.slice(0, 8)}-${this.o.host}-cron-${spec.stack}-${spec.node}-${a.tick}`;
    await this.o.docker.getContainer(name).remove({ force: true }).catch(() => {});
    const c = await this.o.docker.createContainer({
      name,
      Image: spec.image,
      ...(cmd ? { Cmd: cmd } : {}),
      ...(spec.cwd ? { WorkingDir: spec.cwd } : {}),
      Env: dockerEnv(env),
      Labels: {
        [LABEL.cluster]: this.o.cluster,
        [LABEL.stack]: spec.stack,
        [LABEL.node]: spec.node,
        [LABEL.tag]: spec.tag,
        [CRON_LABEL.host]: this.o.host,
        [CRON_LABEL.run]: `${a.stack}/${a.node}/${a.tick}`,
      },
      HostConfig: sandboxHostConfig(spec, limits, 1),
    });
    await c.start();
    return c.id;
  }
}
