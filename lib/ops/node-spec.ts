/**
 * What a one-off command (`viking run`) and a volume operation start from:
 * the node as the stack's live release declares it, with the stack's env
 * overrides and its sealed secrets laid in, exactly as a replica of that
 * release gets them (and as the cron scheduler builds a run's spec).
 */
import type { Etcd3 } from 'etcd3';
import { VikingError } from '../errors.js';
import { requireStack } from '../rollout/releases.js';
import { attachSecrets } from '../secrets/store.js';
import type { JobSpec, StackRecord } from '../store/records.js';

export interface NodeSpec {
  stack: StackRecord;
  spec: JobSpec;
}

/** The node's job spec in the live release (instance 1, scale 1), or a typed error saying what is missing. */
export async function liveNodeSpec(client: Etcd3, stackName: string, node: string): Promise<NodeSpec> {
  const stack = await requireStack(client, stackName);
  const release = stack.releases.find((r) => r.tag === stack.current);
  if (!release) throw new VikingError('VIKING_E_NOT_FOUND', `${stackName} has no live release yet; viking push it first`);
  const template = release.nodes?.[node];
  if (!template) {
    const names = Object.keys(release.nodes ?? {}).sort();
    throw new VikingError('VIKING_E_NOT_FOUND', `${stackName} ${release.tag} has no container node ${node}${names.length ? `; its nodes: ${names.join(', ')}` : ''}`);
  }
  const { cron: _cron, ...rest } = structuredClone(template);
  const spec: JobSpec = { ...rest, env: { ...template.env, ...(stack.env ?? {}) }, stack: stackName, tag: release.tag, instance: 1, scale: 1 };
  await attachSecrets(client, [spec]);
  return { stack, spec };
}
