/** Every stack: live release, domains with their certificate state, healthy replicas of desired. */
import { getJSON } from './api.js';
import { useLive } from './live.js';
import { ErrorBox, Loading, Page, ago, enc, html } from './ui.js';
import type { JobRow, StackRow } from '../../lib/api/wire.js';

interface Cert {
  domain: string;
  state: string;
  notAfter: string | null;
}

/** Replicas of the live release that run and pass their health check, of all it wants. */
export function health(jobs: JobRow[], stack: string): { healthy: number; desired: number } {
  const live = jobs.filter((j) => j.stack === stack && j.current && typeof j.instance === 'number' && j.tag !== '-');
  return { healthy: live.filter((j) => j.state === 'running').length, desired: live.length };
}

export function StacksPage() {
  const { data, error } = useLive(
    async () => {
      const [stacks, jobs, certs] = await Promise.all([
        getJSON<StackRow[]>('/v1/stacks'),
        getJSON<JobRow[]>('/v1/ps'),
        // Only a token that reads the whole cluster sees certificates.
        getJSON<Cert[]>('/v1/certs').catch(() => [] as Cert[]),
      ]);
      return { stacks, jobs, certs: new Map(certs.map((c) => [c.domain, c])) };
    },
    (c) => c.routes || c.stacks.length > 0,
    [],
  );
  return html`<${Page} title="Stacks">
    <${ErrorBox} error=${error} />
    ${!data && !error ? html`<${Loading} what="stacks" />` : null}
    ${data && data.stacks.length === 0 ? html`<p>No stacks yet: <code>viking push</code> one.</p>` : null}
    ${data && data.stacks.length > 0
      ? html`<div class="table-wrap"><table>
          <caption>${data.stacks.length} ${data.stacks.length === 1 ? "stack" : "stacks"}</caption>
          <thead><tr><th scope="col">Stack</th><th scope="col">Live release</th><th scope="col">Domains</th><th scope="col">Healthy / desired</th><th scope="col">Changed</th></tr></thead>
          <tbody>
            ${data.stacks.map((s) => {
              const h = health(data.jobs, s.name);
              return html`<tr data-stack=${s.name}>
                <th scope="row"><a href=${`#/stack/${enc(s.name)}`}>${s.name}</a></th>
                <td>${s.current ?? html`<span class="muted">none</span>`}</td>
                <td>${s.domains.length === 0 ? html`<span class="muted">-</span>` : s.domains.map((d) => {
                  const c = data.certs.get(d);
                  return html`<div>${d} ${c ? html`<span class=${`badge cert-${c.state}`} title=${c.notAfter ? `valid until ${c.notAfter}` : ''}>${c.state}</span>` : html`<span class="badge muted">http</span>`}</div>`;
                })}</td>
                <td class="num"><span class=${h.healthy < h.desired ? 'warn' : 'ok'} data-health=${s.name}>${h.healthy}/${h.desired}</span></td>
                <td>${ago(s.updatedAt)}</td>
              </tr>`;
            })}
          </tbody>
        </table></div>`
      : null}
  </${Page}>`;
}
