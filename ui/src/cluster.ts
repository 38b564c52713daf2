/** The cluster: every server, its roles, state and what is reserved on it. */
import type { CapacityRow, NetworkRow } from '../../lib/api/wire.js';
import { getJSON } from './api.js';
import { useLive } from './live.js';
import { ErrorBox, Loading, Meter, Page, bytes, html } from './ui.js';


export function ClusterPage() {
  const { data, error } = useLive(
    async () => {
      const [hosts, capacity] = await Promise.all([getJSON<NetworkRow[]>('/v1/network'), getJSON<CapacityRow[]>('/v1/capacity')]);
      return { hosts, capacity: new Map(capacity.map((c) => [c.host, c])) };
    },
    (c) => c.cluster,
    [],
  );
  return html`<${Page} title="Cluster">
    <${ErrorBox} error=${error} />
    ${!data && !error ? html`<${Loading} what="servers" />` : null}
    ${data
      ? html`<div class="table-wrap"><table>
          <caption>${data.hosts.length} ${data.hosts.length === 1 ? "server" : "servers"}</caption>
          <thead><tr><th scope="col">Server</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">Containers</th><th scope="col">Memory reserved</th><th scope="col">CPU reserved</th></tr></thead>
          <tbody>
            ${data.hosts.map((h) => {
              const c = data.capacity.get(h.name);
              const roles = [h.leader ? 'leader' : h.master ? 'master' : 'worker', h.etcd === 'member' ? 'etcd member' : h.etcd === 'learner' ? 'etcd learner' : null, h.router === false ? 'no router' : null].filter(Boolean);
              const state = h.stopping ? 'stopping' : h.draining ? 'draining' : 'up';
              return html`<tr data-host=${h.name}>
                <th scope="row">${h.name}<div class="muted small">${h.ip}${h.tags.length ? ` · ${h.tags.join(', ')}` : ''}</div></th>
                <td>${roles.map((r) => html`<span class="badge">${r}</span> `)}</td>
                <td><span class=${`state state-${state}`}>${state}</span></td>
                <td class="num">${h.jobs}${h.capacity.containers ? ` / ${h.capacity.containers}` : ''}</td>
                <td>${c ? html`<${Meter} used=${c.reserved.memory} total=${c.capacity.memory} label=${`${bytes(c.reserved.memory)} of ${bytes(c.capacity.memory)}`} />` : '-'}</td>
                <td>${c ? html`<${Meter} used=${c.reserved.cpu} total=${c.capacity.cpu} label=${`${c.reserved.cpu.toFixed(2)} of ${c.capacity.cpu} CPUs`} />` : '-'}</td>
              </tr>`;
            })}
          </tbody>
        </table></div>`
      : null}
  </${Page}>`;
}
