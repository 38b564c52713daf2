/**
 * One stack: what runs, its history (releases and the audit log: who, when,
 * what), and the changes a deployer makes: scale, roll back (confirmed),
 * delete (the name typed). Env values of secret-looking keys are masked.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { getJSON, operation, type ProgressLine } from './api.js';
import { useLive } from './live.js';
import { health } from './stacks.js';
import type { JobRow, PushRecord } from '../../lib/api/wire.js';
import { ErrorBox, Loading, MASK, Page, ago, enc, html, looksSecret } from './ui.js';

interface StackView {
  name: string;
  current: string | null;
  env: Record<string, string>;
  busy: { what: string; by: string; host: string } | null;
  jobs: JobRow[];
}
interface Release {
  tag: string;
  number: number;
  current: boolean;
  at: string;
  by: string;
  origin: { kind: string; from?: string };
  nodes: string[];
  redeployable: boolean;
  jobs: number;
}
interface NodeView {
  node: string;
  kind: string;
  scale?: number;
  domains: string[];
  replicas: Array<{ instance: number; host: string | null; state: string; reason: string | null }>;
}
interface AuditEntry {
  at: string;
  token: { name: string };
  user?: string;
  method: string;
  route: string;
  result: string;
  release?: string;
}
interface EnvView {
  overrides: Record<string, string>;
  nodes: Record<string, Record<string, string>>;
}

const VERB: Record<string, string> = {
  'POST /v1/push': 'push',
  'POST /v1/scale/:stack': 'scale',
  'POST /v1/env/:stack': 'env',
  'POST /v1/secrets/:stack': 'secrets',
  'POST /v1/rollback/:stack': 'rollback',
  'DELETE /v1/stack/:name': 'delete',
};

function EnvTable({ env, caption }: { env: Record<string, string>; caption: string }) {
  const keys = Object.keys(env).sort();
  if (keys.length === 0) return null;
  return html`<table class="env"><caption>${caption}</caption><tbody>
    ${keys.map((k) => html`<tr><th scope="row"><code>${k}</code></th><td><code>${looksSecret(k) ? html`<span class="masked" title="masked: the key looks secret">${MASK}</span>` : env[k]}</code></td></tr>`)}
  </tbody></table>`;
}

/** A running operation's progress lines. */
function Progress({ lines, error }: { lines: ProgressLine[]; error: unknown }) {
  if (lines.length === 0 && !error) return null;
  return html`<div class="progress" role="log" aria-live="polite">
    ${lines.map((l) => html`<div class=${`line line-${l.type}`}>${l.type === 'progress' ? `${l.stage}: ${l.message}` : l.type === 'result' ? 'done' : `${l.code}: ${l.message}`}</div>`)}
    <${ErrorBox} error=${error} />
  </div>`;
}

function useOperation() {
  const [lines, setLines] = useState<ProgressLine[]>([]);
  const [error, setError] = useState<unknown>(undefined);
  const [running, setRunning] = useState(false);
  const run = async (path: string, method: string, body: unknown): Promise<boolean> => {
    setLines([]);
    setError(undefined);
    setRunning(true);
    try {
      await operation(path, method, body, (l) => setLines((ls) => [...ls.slice(-200), l]));
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setRunning(false);
    }
  };
  return { lines, error, running, run };
}

function ScaleControl({ stack, node }: { stack: string; node: NodeView }) {
  const [n, setN] = useState(String(node.scale ?? node.replicas.length));
  const op = useOperation();
  useEffect(() => setN(String(node.scale ?? node.replicas.length)), [node.scale]);
  const submit = (e: Event): void => {
    e.preventDefault();
    void op.run(`/v1/scale/${enc(stack)}`, 'POST', { nodes: { [node.node]: Number(n) } });
  };
  return html`<form class="inline" onSubmit=${submit}>
    <label>Replicas of ${node.node} <input type="number" min="0" max="100" required value=${n} onInput=${(e: Event) => setN((e.target as HTMLInputElement).value)} name=${`scale-${node.node}`} /></label>
    <button type="submit" disabled=${op.running}>Scale</button>
    <${Progress} lines=${op.lines} error=${op.error} />
  </form>`;
}

function RollbackButton({ stack, release, onDone }: { stack: string; release: Release; onDone: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const op = useOperation();
  const confirm = async (): Promise<void> => {
    const ok = await op.run(`/v1/rollback/${enc(stack)}`, 'POST', { release: release.tag });
    if (ok) {
      dialog.current?.close();
      onDone();
    }
  };
  return html`<button type="button" class="secondary" onClick=${() => dialog.current?.showModal()}>Roll back to ${release.tag}</button>
    <dialog ref=${dialog} aria-labelledby=${`rb-${release.tag}`}>
      <h2 id=${`rb-${release.tag}`}>Roll back ${stack} to ${release.tag}?</h2>
      <p>A new release is made from ${release.tag} (pushed ${ago(release.at)} by ${release.by}); its replicas start, pass their health checks, then take the traffic.</p>
      <${Progress} lines=${op.lines} error=${op.error} />
      <div class="buttons">
        <button type="button" class="danger" disabled=${op.running} onClick=${() => void confirm()}>Confirm rollback to ${release.tag}</button>
        <button type="button" class="secondary" onClick=${() => dialog.current?.close()}>Cancel</button>
      </div>
    </dialog>`;
}

function DeleteStack({ stack }: { stack: string }) {
  const [typed, setTyped] = useState('');
  const op = useOperation();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (typed !== stack) return;
    if (await op.run(`/v1/stack/${enc(stack)}`, 'DELETE', undefined)) location.hash = '#/stacks';
  };
  return html`<form class="danger-zone" onSubmit=${(e: Event) => void submit(e)}>
    <h2>Delete</h2>
    <p>Stops every replica, removes its routes, releases and images. Volumes are kept. Type <strong>${stack}</strong> to confirm.</p>
    <label>Stack name <input value=${typed} onInput=${(e: Event) => setTyped((e.target as HTMLInputElement).value)} autocomplete="off" name="confirm-name" /></label>
    <button type="submit" class="danger" disabled=${typed !== stack || op.running}>Delete ${stack}</button>
    <${Progress} lines=${op.lines} error=${op.error} />
  </form>`;
}

/** A push in progress (or just ended), from etcd through GET /v1/pushes: any tab on any host sees it live. */
type PushView = PushRecord;

function LivePushView({ push }: { push: PushView }) {
  return html`<section class="card" data-push=${push.id} data-push-state=${push.state} aria-live="polite">
    <h2>Push ${push.state === 'running' ? 'in progress' : push.state} <span class="muted small">by ${push.by} on ${push.host}, ${ago(push.startedAt)}</span></h2>
    <ol class="stages">${push.stages.map((st) => html`<li data-stage=${st.stage}><strong>${st.stage}</strong> ${st.message}</li>`)}</ol>
    ${push.error ? html`<p class="warn">${push.error}</p>` : null}
    <pre class="output" tabindex="0">${push.output.join('\n')}</pre>
  </section>`;
}

export function StackPage({ name }: { name: string }) {
  const { data, error, reload } = useLive(
    async () => {
      const stack = await getJSON<StackView>(`/v1/stack/${enc(name)}`);
      const [releases, audit, env, nodes, pushes] = await Promise.all([
        getJSON<Release[]>(`/v1/tags/${enc(name)}`),
        getJSON<{ entries: AuditEntry[] }>(`/v1/audit?stack=${enc(name)}&limit=30`).catch(() => ({ entries: [] as AuditEntry[] })),
        getJSON<EnvView>(`/v1/env/${enc(name)}`),
        stack.current ? getJSON<NodeView[]>(`/v1/nodes/${enc(name)}/${stack.current}`) : Promise.resolve([] as NodeView[]),
        getJSON<PushView[]>(`/v1/pushes/${enc(name)}`).catch(() => [] as PushView[]),
      ]);
      return { stack, releases, audit: audit.entries, env, nodes, pushes };
    },
    (c) => c.stacks.includes(name),
    [name],
  );
  const h = data ? health(data.stack.jobs, name) : undefined;
  return html`<${Page} title=${html`Stack <span class="name">${name}</span>`}>
    <${ErrorBox} error=${error} />
    ${!data && !error ? html`<${Loading} what=${name} />` : null}
    ${data
      ? html`
        <dl class="facts">
          <div><dt>Live release</dt><dd data-live-release>${data.stack.current ?? 'none'}</dd></div>
          <div><dt>Healthy / desired</dt><dd data-health=${name}>${h!.healthy}/${h!.desired}</dd></div>
          <div><dt>In progress</dt><dd data-busy>${data.stack.busy ? `${data.stack.busy.what} by ${data.stack.busy.by} on ${data.stack.busy.host}` : 'nothing'}</dd></div>
        </dl>
        ${data.pushes.map((p) => html`<${LivePushView} push=${p} />`)}
        <h2>Nodes</h2>
        ${data.nodes.map((n) => html`<div class="card" data-node=${n.node}>
          <h3>${n.node} <span class="muted small">${n.kind}${n.domains.length ? ` · ${n.domains.join(', ')}` : ''}</span></h3>
          ${n.kind === 'container' ? html`<${ScaleControl} stack=${name} node=${n} />` : null}
          <ul class="replicas">${n.replicas.map((r) => html`<li><a href=${`#/replica/${enc(name)}/${data.stack.current}/${enc(n.node)}/${r.instance}`}>${n.node}.${r.instance}</a> <span class=${`state state-${r.state}`}>${r.state}</span> <span class="muted">on ${r.host ?? 'no host'}</span>${r.reason ? html` <span class="warn">${r.reason}</span>` : null}</li>`)}</ul>
          ${n.kind === 'container' ? html`<a href=${`#/logs/${enc(name)}/${enc(n.node)}`}>Logs of ${n.node}</a>` : null}
        </div>`)}
        <h2>Releases</h2>
        <div class="table-wrap"><table>
          <thead><tr><th scope="col">Release</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col"></th></tr></thead>
          <tbody>${[...data.releases].reverse().map((r) => html`<tr data-release=${r.tag}>
            <th scope="row">${r.tag}${r.current ? html` <span class="badge live">live</span>` : null}</th>
            <td title=${r.at}>${ago(r.at)}</td><td>${r.by}</td>
            <td>${r.origin.kind}${r.origin.from ? ` of ${r.origin.from}` : ''}</td>
            <td>${!r.current && r.redeployable ? html`<${RollbackButton} stack=${name} release=${r} onDone=${reload} />` : null}</td>
          </tr>`)}</tbody>
        </table></div>
        <h2>Activity</h2>
        ${data.audit.length === 0 ? html`<p class="muted">Nothing recorded (or this token may not read the audit log).</p>` : html`<div class="table-wrap"><table>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Result</th></tr></thead>
          <tbody>${[...data.audit].reverse().map((a) => html`<tr>
            <td title=${a.at}>${ago(a.at)}</td><td>${a.user ?? a.token.name}</td>
            <td>${VERB[`${a.method} ${a.route}`] ?? `${a.method} ${a.route}`}${a.release ? ` → ${a.release}` : ''}</td>
            <td class=${a.result === 'ok' ? 'ok' : 'warn'}>${a.result}</td></tr>`)}</tbody>
        </table></div>`}
        <h2>Environment</h2>
        <${EnvTable} env=${data.env.overrides} caption="Overrides (viking env set)" />
        ${Object.entries(data.env.nodes ?? {}).map(([node, env]) => html`<${EnvTable} env=${env} caption=${`${node} (Vikingfile)`} />`)}
        <${DeleteStack} stack=${name} />`
      : null}
  </${Page}>`;
}
