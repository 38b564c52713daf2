/**
 * Calls from one host's API to another's, for what only the host running a
 * container can see (its Docker log, its containers). The address comes from
 * the peer's own `/host/<name>` record (HostRecord.api), and the caller's
 * token is passed along, so a peer answers exactly what the user may see.
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { readPrefix } from '../store/client.js';
import { PREFIX } from '../store/keys.js';
import { linesOf } from '../ndjson.js';
import type { HostRecord } from '../store/records.js';

/** Live hosts by name. */
export async function liveHosts(client: Etcd3): Promise<Map<string, HostRecord>> {
  const read = await readPrefix<HostRecord>(client, PREFIX.host);
  const out = new Map<string, HostRecord>();
  for (const e of read.entries) if (e.value) out.set(e.value.name, e.value);
  return out;
}

function headers(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** A peer's answer, or a VikingError saying which host failed and how. */
export async function peerFetch(host: HostRecord, path: string, token: string | undefined, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${host.api}${path}`, { headers: headers(token), ...(signal ? { signal } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new VikingError('VIKING_E_API_UNREACHABLE', `host ${host.name}'s API at ${host.api} did not answer (${cause})`);
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    const code = body.code === 'VIKING_E_NOT_FOUND' || body.code === 'VIKING_E_UNAUTHORIZED' ? body.code : 'VIKING_E_INTERNAL';
    throw new VikingError(code, `host ${host.name}: ${body.message ?? `HTTP ${res.status}`}`);
  }
  return res;
}

export async function peerJson<T>(host: HostRecord, path: string, token: string | undefined, signal?: AbortSignal): Promise<T> {
  const res = await peerFetch(host, path, token, signal);
  return (await res.json()) as T;
}

/** A peer's NDJSON answer, one parsed value per line, read as they are taken, until it ends or the signal aborts. */
export async function* peerLines(host: HostRecord, path: string, token: string | undefined, signal: AbortSignal): AsyncGenerator<unknown> {
  const res = await peerFetch(host, path, token, signal);
  try {
    for await (const text of linesOf(res)) yield JSON.parse(text) as unknown;
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    // Stopped early (the reader went away): hang up on the peer, which stops its Docker read.
    void res.body?.cancel().catch(() => {});
  }
}
