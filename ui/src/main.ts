/**
 * The viking dashboard: sign-in, navigation and the hash router
 * (#/cluster, #/stacks, #/stack/NAME, #/replica/STACK/TAG/NODE/N, #/logs/STACK/NODE).
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getJSON, onSignedOut, signIn, signOut } from './api.js';
import { liveState, startLive, stopLive } from './live.js';
import { ClusterPage } from './cluster.js';
import { StacksPage } from './stacks.js';
import { StackPage } from './stack.js';
import { ReplicaPage } from './replica.js';
import { LogsPage } from './logs.js';
import { ErrorBox, html } from './ui.js';

interface Me {
  name: string;
  role: string;
  host: string;
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = (): void => setHash(location.hash);
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function route(hash: string) {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p));
  switch (parts[0]) {
    case 'stack':
      return html`<${StackPage} name=${parts[1] ?? ''} />`;
    case 'replica':
      return html`<${ReplicaPage} stack=${parts[1] ?? ''} tag=${parts[2] ?? ''} node=${parts[3] ?? ''} instance=${Number(parts[4])} />`;
    case 'logs':
      return html`<${LogsPage} stack=${parts[1] ?? ''} node=${parts[2] ?? ''} />`;
    case 'stacks':
      return html`<${StacksPage} />`;
    default:
      return html`<${ClusterPage} />`;
  }
}

function SignIn({ onIn }: { onIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(token);
      setToken('');
      onIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin"><form onSubmit=${(e: Event) => void submit(e)}>
    <h1>viking</h1>
    <p>Sign in with an API token (<code>viking token create</code> makes one). It is kept in a cookie this page's scripts cannot read, for 12 hours or until you sign out.</p>
    <label for="token">API token</label>
    <input id="token" name="token" type="password" autocomplete="off" required value=${token} onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} autofocus />
    <button type="submit" disabled=${busy}>Sign in</button>
    <${ErrorBox} error=${error} />
  </form></main>`;
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [live, setLive] = useState(liveState.connected);
  const hash = useHash();
  const check = (): void => {
    getJSON<Me>('/v1/whoami')
      .then((m) => {
        setMe(m);
        startLive();
      })
      .catch(() => setMe(null));
  };
  useEffect(() => {
    check();
    const out = (): void => {
      stopLive();
      setMe(null);
    };
    onSignedOut.add(out);
    liveState.onState.add(setLive);
    return () => {
      onSignedOut.delete(out);
      liveState.onState.delete(setLive);
    };
  }, []);
  if (me === undefined) return html`<p class="muted">Loading…</p>`;
  if (me === null) return html`<${SignIn} onIn=${check} />`;
  const out = async (): Promise<void> => {
    stopLive();
    await signOut();
    setMe(null);
  };
  const current = hash.startsWith('#/stack') || hash.startsWith('#/replica') || hash.startsWith('#/logs') ? 'stacks' : 'cluster';
  return html`<div class="app">
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <nav aria-label="main">
        <strong class="brand">viking</strong>
        <a href="#/cluster" aria-current=${current === 'cluster' ? 'page' : undefined}>Cluster</a>
        <a href="#/stacks" aria-current=${current === 'stacks' ? 'page' : undefined}>Stacks</a>
      </nav>
      <div class="who">
        <span class=${live ? 'dot on' : 'dot'} title=${live ? 'live updates on' : 'live updates reconnecting'} aria-label=${live ? 'live' : 'offline'} data-live=${live}></span>
        <span>${me.name} <span class="muted">(${me.role}) on ${me.host}</span></span>
        <button type="button" class="secondary" onClick=${() => void out()}>Sign out</button>
      </div>
    </header>
    <main id="main">${route(hash)}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app')!);
