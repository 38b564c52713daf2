/**
 * Options every command that talks to the API shares: --api and --token
 * (default: $VIKING_API / $VIKING_TOKEN, then the config file), and --json
 * on read commands.
 */
import type { Argv } from 'yargs';

export interface ApiArgs {
  api?: string;
  token?: string;
}

export interface ReadArgs extends ApiArgs {
  json?: boolean;
}

export function withApi<T>(a: Argv<T>): Argv<T & ApiArgs> {
  return a
    .option('api', { type: 'string', describe: 'API URL of any host (default: $VIKING_API, the config file, http://127.0.0.1:8791)' })
    .option('token', { type: 'string', describe: 'API token (default: $VIKING_TOKEN, then the config file)' }) as unknown as Argv<T & ApiArgs>;
}

export function withJson<T>(a: Argv<T>): Argv<T & ReadArgs> {
  return withApi(a).option('json', { type: 'boolean', describe: 'print JSON instead of a table' }) as unknown as Argv<T & ReadArgs>;
}
