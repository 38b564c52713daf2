/**
 * `viking settings [max-scale=N]`: shows or changes the cluster's settings,
 * which every host applies (kept in etcd).
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { ApiClient } from '../api-client.js';
import { formatTable, handled, printJson } from '../output.js';
import { withJson, type ReadArgs } from '../options.js';
import type { ClusterSettings } from '../../store/settings.js';

interface SettingsArgs extends ReadArgs {
  changes?: string[];
}

/** `max-scale=200` -> {maxScale: 200}. */
export function parseSettingChanges(words: string[]): Partial<ClusterSettings> {
  const out: Partial<ClusterSettings> = {};
  for (const w of words) {
    const m = /^max-scale=(\d{1,9})$/.exec(w);
    if (!m) throw new VikingError('VIKING_E_BAD_REQUEST', `'${w}' is not a setting; settings: max-scale=N`);
    out.maxScale = Number(m[1]);
  }
  return out;
}

export function settingsCommand(y: Argv): Argv {
  return y.command<SettingsArgs>(
    'settings [changes..]',
    'show or change the cluster settings (max-scale=N: most replicas per node, default 100)',
    (a) => withJson(a).positional('changes', { type: 'string', array: true, describe: 'NAME=VALUE, e.g. max-scale=200' }) as unknown as Argv<SettingsArgs>,
    handled(async (args: SettingsArgs) => {
      const api = await ApiClient.from(args);
      const changes = parseSettingChanges(args.changes ?? []);
      const s = Object.keys(changes).length > 0 ? await api.post<ClusterSettings>('/v1/settings', changes) : await api.get<ClusterSettings>('/v1/settings');
      if (args.json) return printJson(s);
      process.stdout.write(`${formatTable(['SETTING', 'VALUE'], [['max-scale', String(s.maxScale)]])}\n`);
    }),
  );
}
