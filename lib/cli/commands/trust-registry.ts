/**
 * `viking trust-registry --etcd URL | --registry HOST:PORT [--docker-config FILE] [--json]`: makes
 * this server's Docker trust the cluster registry, whose address it reads
 * from etcd, by adding it to daemon.json's "insecure-registries" (every
 * other setting kept). It says whether the file changed: dockerd must be
 * restarted to see the change, and only then (bootstrap.sh does it).
 */
import type { Argv } from 'yargs';
import { VikingError } from '../../errors.js';
import { handled, printJson } from '../output.js';

interface TrustArgs {
  etcd?: string;
  registry?: string;
  'docker-config': string;
  json?: boolean;
}

export function trustRegistryCommand(y: Argv): Argv {
  return y.command<TrustArgs>(
    'trust-registry',
    'add the cluster registry (read from etcd) to Docker\'s daemon.json insecure-registries; says whether it changed',
    (a) =>
      a
        .option('etcd', { type: 'string', describe: 'etcd URLs of the cluster, comma separated: the registry address is read there' })
        .option('registry', { type: 'string', describe: 'the registry host:port itself, instead of reading it from etcd (the first server, before its etcd runs)' })
        .check((a) => (a.etcd || a.registry ? true : 'give --etcd URL (or --registry HOST:PORT)'))
        .option('docker-config', { type: 'string', default: '/etc/docker/daemon.json', describe: 'the Docker daemon config file' })
        .option('json', { type: 'boolean', describe: 'print {"file","registry","changed"}' }) as unknown as Argv<TrustArgs>,
    handled(async (args: TrustArgs) => {
      const [{ connectEtcd }, { REGISTRY_KEY }, { trustRegistryFile }, { assertEtcdReachable }] = await Promise.all([
        import('../../store/client.js'),
        import('../../store/keys.js'),
        import('../../join/docker-trust.js'),
        import('../../host/host.js'),
      ]);
      let registry: string | null = args.registry ?? null;
      if (!registry && args.etcd) {
        const client = connectEtcd(args.etcd);
        try {
          await assertEtcdReachable(client, args.etcd.split(','));
          registry = await client.get(REGISTRY_KEY).string();
        } finally {
          client.close();
        }
      }
      if (!registry) throw new VikingError('VIKING_E_REGISTRY_UNAVAILABLE', `the cluster at ${args.etcd ?? '?'} announces no registry (${REGISTRY_KEY}); its first server runs viking up with a registry port`);
      const { changed } = await trustRegistryFile(args['docker-config'], registry);
      if (args.json) return printJson({ file: args['docker-config'], registry, changed });
      process.stdout.write(changed ? `${args['docker-config']}: added ${registry} to insecure-registries; restart dockerd to use it\n` : `${args['docker-config']} already trusts ${registry}; unchanged\n`);
    }),
  );
}
