/** One replica: where it runs, its state and reason, its last log lines, and dowding's verdict on every host. */
import { getJSON } from './api.js';
import { useLive } from './live.js';
import type { Allocation, JobRow } from '../../lib/api/wire.js';
import { ErrorBox, Loading, Page, enc, html } from './ui.js';

export function ReplicaPage({ stack, tag, node, instance }: { stack: string; tag: string; node: string; instance: number }) {
  const { data, error } = useLive(
    async () => {
      const [jobs, allocation] = await Promise.all([
        getJSON<JobRow[]>(`/v1/ps?stack=${enc(stack)}`),
        getJSON<Allocation>(`/v1/allocate/${enc(stack)}/${enc(tag)}/${enc(node)}`),
      ]);
      return { job: jobs.find((j) => j.tag === tag && j.node === node && j.instance === instance), allocation };
    },
    (c) => c.stacks.includes(stack) || c.cluster,
    [stack, tag, node, instance],
  );
  const mine = data?.allocation.replicas.find((r) => r.instance === instance);
  return html`<${Page} title=${html`Replica <span class="name">${stack}/${node}.${instance}</span> <span class="muted">${tag}</span>`}>
    <p><a href=${`#/stack/${enc(stack)}`}>← ${stack}</a> · <a href=${`#/logs/${enc(stack)}/${enc(node)}`}>live logs of ${node}</a></p>
    <${ErrorBox} error=${error} />
    ${!data && !error ? html`<${Loading} what="the replica" />` : null}
    ${data
      ? html`
        <dl class="facts">
          <div><dt>Host</dt><dd>${data.job?.host ?? 'none'}</dd></div>
          <div><dt>State</dt><dd><span class=${`state state-${data.job?.state ?? 'gone'}`}>${data.job?.state ?? 'gone'}</span></dd></div>
          <div><dt>Reason</dt><dd>${data.job?.reason ?? '-'}</dd></div>
          <div><dt>Restarts</dt><dd>${data.job?.restarts ?? 0}</dd></div>
          <div><dt>Endpoints</dt><dd>${data.job?.endpoints?.join(', ') || '-'}</dd></div>
        </dl>
        <h2>Last log lines</h2>
        ${data.job?.logs?.length ? html`<pre class="log">${data.job.logs.join('\n')}</pre>` : html`<p class="muted">None kept (the host keeps the last lines of a replica that failed).</p>`}
        <h2>Placement: dowding's verdict on every host</h2>
        <p>${mine ? `${mine.status}${mine.host ? ` on ${mine.host}` : ''}` : ''}${mine?.reasons.length ? ` — ${mine.reasons.join('; ')}` : ''}${data.allocation.hypothetical ? ' (what a deploy would do now)' : ''}</p>
        <div class="table-wrap"><table>
          <thead><tr><th scope="col">Host</th><th scope="col">Fits</th><th scope="col">Score (lower wins)</th><th scope="col">Replicas of ${node} there</th><th scope="col">Why not</th></tr></thead>
          <tbody>${data.allocation.hosts.map((h) => html`<tr data-verdict=${h.host}>
            <th scope="row">${h.host}</th><td class=${h.fits ? 'ok' : 'warn'}>${h.fits ? 'yes' : 'no'}</td>
            <td class="num">${h.score === null ? '-' : h.score.toFixed(3)}</td><td class="num">${h.replicas}</td><td>${h.reason ?? ''}</td></tr>`)}</tbody>
        </table></div>`
      : null}
  </${Page}>`;
}
