/**
 * `viking settings [max-scale=N] [audit-max-entries=N] [audit-max-age-days=N]`: shows or changes the cluster's settings,
 * which every host applies (kept in etcd).
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import { SETTING_RANGES, type ClusterSettings } from '../../store/settings.js';

interface SettingsArgs extends ReadArgs {
  changes?: string[];
}

const BY_FLAG = new Map(Object.entries(SETTING_RANGES).map(([name, r]) => [r.flag, name as keyof ClusterSettings]));
const FLAGS = [...BY_FLAG.keys()].map((f) => `${f}=N`).join(', ');

/** `max-scale=200` -> {maxScale: 200}; `audit-max-entries=5000` -> {auditMaxEntries: 5000}. */
export function parseSettingChanges(words: string[]): Partial<ClusterSettings> {
  const out: Partial<ClusterSettings> = {};
  for (const w of words) {
    const m = /^([a-z-]+)=(\d{1,9})$/.exec(w);
    const name = m ? BY_FLAG.get(m[1]!) : undefined;
    if (!m || !name) throw new VikingError('VIKING_E_BAD_REQUEST', `'${w}' is not a setting; settings: ${FLAGS}`);
    out[name] = Number(m[2]);
  }
  return out;
}

export function settingsCommand(y: Argv): Argv {
  return y.command<SettingsArgs>(
    'settings [changes..]',
    'show or change the cluster settings: max-scale=N (replicas per node, default 100), audit-max-entries=N (default 10000), audit-max-age-days=N (default 90)',
    (a) => withJson(a).positional('changes', { type: 'string', array: true, describe: 'NAME=VALUE, e.g. max-scale=200' }) as unknown as Argv<SettingsArgs>,
    handled(async (args: SettingsArgs) => {
      const api = await ApiClient.from(args);
      const changes = parseSettingChanges(args.changes ?? []);
      const s = Object.keys(changes).length > 0 ? await api.post<ClusterSettings>('/v1/settings', changes) : await api.get<ClusterSettings>('/v1/settings');
      if (args.json) return printJson(s);
      const rows = Object.entries(SETTING_RANGES).map(([name, r]) => [r.flag, String(s[name as keyof ClusterSettings])]);
      process.stdout.write(`${formatTable(['SETTING', 'VALUE'], rows)}\n`);
    }),
  );
}
