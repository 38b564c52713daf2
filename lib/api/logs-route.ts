/**
 * `GET /v1/logs/:stack/:node`: the log of every replica of a node, from
 * whichever host runs it, each line prefixed with its replica:
 *
 *   web.1 | hello listening on 80 as web-1-v2
 *   web.2 | GET /
 *
 * The API that gets the request finds each replica's host (/run) and that
 * host's API (/host/<name>), reads the local replicas from Docker itself and
 * the others through their host's /v1/local/logs. What every replica had
 * written is merged in time order (Docker timestamps each line); with
 * `?follow=1` new lines are passed on as they arrive until the client hangs
 * up. `?format=ndjson` gives one JSON object per line instead of text.
 *
 * Nothing is held whole: every replica's log is read only as fast as the
 * client reads the merged answer (lib/api/log-merge.ts, stream-out.ts), so a
 * 30 MB `-n all` streams in bounded memory without stalling the host's loop,
 * and a `-f` reader that stops reading pauses Docker instead of growing us.
 */
import type { FastifyInstance } from 'fastify';
import { bearerOf } from '../auth/hook.js';
import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { PREFIX, jobFromKey, procStackPrefix, stackKey, jobPath } from '../store/keys.js';
import { readPlacementKeys } from '../store/placements.js';
import type { JobId, JobSpec, StackRecord } from '../store/records.js';
import { containerLogLines, findJobContainer, type LogLine } from './container-logs.js';
import { mergeLogs } from './log-merge.js';
import { ownerOf } from './local-routes.js';
import { liveHosts, peerLines } from './peers.js';
import { writeTexts } from './stream-out.js';
import { FLAG, NAME, TAG, TAIL, flagOn, params, streamResponses } from './schemas.js';
import type { ApiContext } from './server.js';

export interface ReplicaLine extends LogLine {
  replica: string;
  host: string | null;
  tag: string;
  instance: number;
}

interface Replica {
  job: JobId;
  label: string;
  host: string | null;
}

export { timeKey } from './log-merge.js';

/** The replicas of a node in one release: the one asked for, the current one, or the newest that has any. */
async function replicasOf(ctx: ApiContext, stack: string, node: string, tag: string | undefined): Promise<Replica[]> {
  const [record, proc] = await Promise.all([
    readJSON<StackRecord>(ctx.client, stackKey(stack)),
    readPrefix<JobSpec>(ctx.client, procStackPrefix(stack)),
  ]);
  if (!record && proc.entries.length === 0) throw new VikingError('VIKING_E_NOT_FOUND', `no stack named ${stack}; viking stacks lists them`);
  const byTag = new Map<string, JobId[]>();
  const nodes = new Set<string>();
  for (const e of proc.entries) {
    const job = jobFromKey(e.key, PREFIX.proc);
    if (!job) continue;
    nodes.add(job.node);
    if (job.node !== node) continue;
    byTag.set(job.tag, [...(byTag.get(job.tag) ?? []), job]);
  }
  const newest = [...byTag.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))).at(-1);
  const chosen = tag ?? (record?.current && byTag.has(record.current) ? record.current : newest);
  const jobs = chosen ? byTag.get(chosen) : undefined;
  if (!chosen || !jobs) {
    throw new VikingError(
      'VIKING_E_NOT_FOUND',
      `${stack} has no replicas of ${node}${tag ? ` in ${tag}` : ''} running${nodes.size ? `; nodes with replicas: ${[...nodes].sort().join(', ')}` : ''}`,
    );
  }
  jobs.sort((a, b) => a.instance - b.instance);
  const where = await readPlacementKeys(ctx.client, { stack });
  return jobs.map((job) => ({ job, label: `${job.node}.${job.instance}`, host: where.placed.get(jobPath(job))?.host ?? null }));
}

export function registerLogsRoute(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{
    Params: { stack: string; node: string };
    Querystring: { tag?: string; follow?: string; tail?: number | 'all'; format?: 'text' | 'ndjson'; timestamps?: string };
  }>(
    '/v1/logs/:stack/:node',
    {
      schema: {
        params: params({ stack: NAME, node: NAME }),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { tag: TAG, follow: FLAG, tail: TAIL, format: { type: 'string', enum: ['text', 'ndjson'] }, timestamps: FLAG },
        },
        response: streamResponses,
      },
    },
    async (req, reply) => {
      const q = req.query;
      const follow = q.follow !== undefined && flagOn(q.follow);
      const stamps = q.timestamps !== undefined && flagOn(q.timestamps);
      const tail = q.tail ?? 100;
      const replicas = await replicasOf(ctx, req.params.stack, req.params.node, q.tag);
      const hosts = await liveHosts(ctx.client);
      const token = bearerOf(req);
      const width = Math.max(...replicas.map((r) => r.label.length));

      reply.hijack();
      const raw = reply.raw;
      const ndjson = q.format === 'ndjson';
      raw.writeHead(200, { 'content-type': ndjson ? 'application/x-ndjson' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      const abort = new AbortController();
      raw.on('close', () => abort.abort());
      const o = { follow, tail, signal: abort.signal };

      /** One replica's lines, from Docker here or from its host's API; a failure becomes a note in the log. */
      async function* replicaLines(r: Replica): AsyncGenerator<ReplicaLine> {
        const tagged = (l: LogLine): ReplicaLine => ({ ...l, replica: r.label, host: r.host, tag: r.job.tag, instance: r.job.instance });
        const note = (text: string): ReplicaLine => tagged({ time: new Date().toISOString(), stream: 'stdout', line: `[viking] ${text}` });
        try {
          if (!r.host) return yield note('not placed on a host yet');
          if (r.host === ctx.hostName) {
            const id = await findJobContainer(ctx.docker, await ownerOf(ctx), r.job);
            if (!id) return yield note(`no container on ${r.host} yet (starting, or removed after a failure: viking ps shows why)`);
            for await (const l of containerLogLines(ctx.docker, id, o)) yield tagged(l);
            return;
          }
          const host = hosts.get(r.host);
          if (!host) return yield note(`host ${r.host} is down; its log cannot be read`);
          const path = `/v1/local/logs/${r.job.stack}/${r.job.tag}/${r.job.node}/${r.job.instance}?tail=${tail}${follow ? '&follow=1' : ''}`;
          for await (const v of peerLines(host, path, token, abort.signal)) yield tagged(v as LogLine);
        } catch (err) {
          if (!abort.signal.aborted) yield note((err as Error).message);
        }
      }

      const merged = mergeLogs(replicas.map(replicaLines), { time: (l) => l.time, ...(follow ? { settleMs: 300 } : {}) });
      async function* texts(): AsyncGenerator<string> {
        for await (const l of merged) {
          yield ndjson ? `${JSON.stringify(l)}\n` : `${l.replica.padEnd(width)} | ${stamps && l.time ? `${l.time} ` : ''}${l.line}\n`;
        }
      }
      const complete = await writeTexts(raw, texts()).catch(() => false);
      // Whatever ended the answer, stop reading every replica.
      abort.abort();
      if (complete) raw.end();
      else raw.destroy();
    },
  );
}
