/**
 * A server's join state, `<data dir>/join.json`: what it is in the etcd
 * cluster, kept so that a restart (by the supervisor, after a crash or a
 * reboot) comes back with the same role and never adds a second member.
 *
 *   role 'seed'    the first server: started its etcd alone
 *   role 'member'  an etcd member added to the cluster; `phase` says how far it got:
 *                    'adding'  about to call member add (a crash here may have added it or not:
 *                              the next start looks for its peer URL in the member list)
 *                    'added'   member add answered; its etcd may not have started yet
 *                    'voting'  promoted from learner to voting member
 *   role 'client'  no etcd member here; `endpoints` are the members' client URLs
 *
 * `endpoints` is refreshed from the member list at each start, so a client
 * follows members that come and go between its restarts.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { VikingError } from '../errors.js';

export type JoinRole = 'seed' | 'member' | 'client';
export type MemberPhase = 'adding' | 'added' | 'voting';

export interface JoinState {
  version: 1;
  role: JoinRole;
  name: string;
  ip: string;
  /** The URL given to --join (seed: its own client URL). */
  join: string;
  /** Members: this member's peer and client URLs as advertised. */
  peerUrl?: string;
  clientUrl?: string;
  phase?: MemberPhase;
  /** etcd's member id (decimal string) once member add answered. */
  memberId?: string;
  /** Client URLs of the cluster's members, last read from the member list. */
  endpoints: string[];
  updatedAt: string;
}

export const JOIN_FILE = 'join.json';

export function joinStatePath(dataDir: string): string {
  return path.join(dataDir, JOIN_FILE);
}

const ROLES: readonly string[] = ['seed', 'member', 'client'];
const PHASES: readonly string[] = ['adding', 'added', 'voting'];

/** Checks a parsed join.json; a message names what is wrong, so an operator can fix or remove it. */
export function parseJoinState(value: unknown, file = JOIN_FILE): JoinState {
  const bad = (what: string): never => {
    throw new VikingError('VIKING_E_JOIN_STATE_INVALID', `${file}: ${what}; fix it, or remove the data dir to join again from scratch`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not a JSON object');
  const v = value as Record<string, unknown>;
  if (v.version !== 1) bad(`version ${String(v.version)} is not 1`);
  if (typeof v.role !== 'string' || !ROLES.includes(v.role)) bad(`role must be one of ${ROLES.join(', ')}`);
  for (const k of ['name', 'ip', 'join', 'updatedAt'] as const) if (typeof v[k] !== 'string' || v[k] === '') bad(`"${k}" must be a non-empty string`);
  for (const k of ['peerUrl', 'clientUrl', 'memberId'] as const) if (v[k] !== undefined && typeof v[k] !== 'string') bad(`"${k}" must be a string`);
  if (v.phase !== undefined && (typeof v.phase !== 'string' || !PHASES.includes(v.phase))) bad(`phase must be one of ${PHASES.join(', ')}`);
  if (!Array.isArray(v.endpoints) || v.endpoints.some((e) => typeof e !== 'string')) bad('"endpoints" must be a list of URLs');
  if (v.role === 'member' && (typeof v.peerUrl !== 'string' || v.phase === undefined)) bad('a member needs "peerUrl" and "phase"');
  return v as unknown as JoinState;
}

/** The saved state, or undefined on a first start. */
export async function readJoinState(dataDir: string): Promise<JoinState | undefined> {
  const file = joinStatePath(dataDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new VikingError('VIKING_E_JOIN_STATE_INVALID', `${file} is not JSON (${(err as Error).message}); fix it, or remove the data dir to join again from scratch`);
  }
  return parseJoinState(parsed, file);
}

/** Writes the state atomically (write, fsync by rename): a crash leaves the old or the new file, never half. */
export async function writeJoinState(dataDir: string, state: Omit<JoinState, 'version' | 'updatedAt'>): Promise<JoinState> {
  const full: JoinState = { version: 1, ...state, updatedAt: new Date().toISOString() };
  parseJoinState(full);
  await mkdir(dataDir, { recursive: true });
  const file = joinStatePath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(full, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return full;
}
