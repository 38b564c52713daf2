/**
 * The ACME flags of `viking host` and `viking up`: the directory to order
 * certificates from and its contact email, written to etcd for the whole
 * cluster (lib/certs/acme-config.ts). Without `--acme-email` a host leaves
 * the cluster's setting as it is; `--acme-email off` turns ACME off.
 */
import type { Argv } from 'yargs';
import { LETS_ENCRYPT_DIRECTORY, parseAcmeFlags } from '../../certs/acme-config.js';
import type { HostConfig } from '../../host/host.js';
import { VikingError } from '../../errors.js';

export interface AcmeFlagArgs {
  'acme-email'?: string;
  'acme-directory'?: string;
  'acme-issuer-ttl'?: number;
}

export function withAcmeFlags<T>(a: Argv<T>): Argv<T & AcmeFlagArgs> {
  return a
    .option('acme-email', { type: 'string', describe: "turns automatic HTTPS certificates on for every domain: the ACME account's contact email, kept in etcd for the whole cluster ('off': turn off)" })
    .option('acme-directory', { type: 'string', describe: `ACME directory URL to order certificates from (default Let's Encrypt production, ${LETS_ENCRYPT_DIRECTORY})` })
    .option('acme-issuer-ttl', { type: 'number', describe: 'seconds before another host takes over ordering certificates when the issuer dies (default 10)' }) as unknown as Argv<T & AcmeFlagArgs>;
}

/** The flags as the host's ACME settings (only those given); a bad email or URL stops the command with its name. */
export function acmeSettings(args: AcmeFlagArgs): Pick<HostConfig, 'acme'> {
  const email = args['acme-email'];
  if (email === undefined && args['acme-directory'] !== undefined) throw new VikingError('VIKING_E_BAD_REQUEST', '--acme-directory needs --acme-email (the ACME account contact)');
  const acme: NonNullable<HostConfig['acme']> = {
    ...(email !== undefined ? { settings: parseAcmeFlags(email, args['acme-directory']) } : {}),
    ...(args['acme-issuer-ttl'] !== undefined ? { issuerTtlSeconds: args['acme-issuer-ttl'] } : {}),
  };
  return Object.keys(acme).length > 0 ? { acme } : {};
}
