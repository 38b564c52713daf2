/**
 * Live logs of every replica of a node, merged by the API
 * (GET /v1/logs/:stack/:node?follow=1&format=ndjson), with a filter and a
 * pause: a paused view keeps reading and shows what arrived once resumed.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { lines, request } from './api.js';
import { ErrorBox, Page, enc, html } from './ui.js';

interface Line {
  replica: string;
  time: string;
  line: string;
  stream: string;
}
const KEEP = 2000;

export function LogsPage({ stack, node }: { stack: string; node: string }) {
  const [shown, setShown] = useState<Line[]>([]);
  const [filter, setFilter] = useState('');
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [following, setFollowing] = useState(false);
  const buffer = useRef<Line[]>([]);
  const pausedRef = useRef(false);
  pausedRef.current = paused;

  useEffect(() => {
    const abort = new AbortController();
    buffer.current = [];
    setShown([]);
    setError(undefined);
    let flush: number | undefined;
    const show = (): void => {
      flush = undefined;
      if (!pausedRef.current) setShown(buffer.current.slice(-KEEP));
    };
    void (async () => {
      try {
        const res = await request(`/v1/logs/${enc(stack)}/${enc(node)}?follow=1&format=ndjson&tail=200`, { signal: abort.signal });
        setFollowing(true);
        for await (const text of lines(res, abort.signal)) {
          if (!text) continue;
          buffer.current.push(JSON.parse(text) as Line);
          if (buffer.current.length > KEEP * 2) buffer.current = buffer.current.slice(-KEEP);
          flush ??= window.setTimeout(show, 100);
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(e);
      } finally {
        setFollowing(false);
      }
    })();
    return () => {
      abort.abort();
      if (flush) clearTimeout(flush);
    };
  }, [stack, node]);

  useEffect(() => {
    if (!paused) setShown(buffer.current.slice(-KEEP));
  }, [paused]);

  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (!paused && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [shown]);

  const needle = filter.toLowerCase();
  const visible = needle ? shown.filter((l) => l.line.toLowerCase().includes(needle) || l.replica.includes(needle)) : shown;
  return html`<${Page} title=${html`Logs <span class="name">${stack}/${node}</span>`}>
    <p><a href=${`#/stack/${enc(stack)}`}>← ${stack}</a> · <span class=${following ? 'ok' : 'muted'} data-following=${following}>${following ? 'following live' : 'not following'}</span></p>
    <div class="toolbar">
      <label>Filter <input type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} name="filter" placeholder="text or replica" /></label>
      <button type="button" aria-pressed=${paused} onClick=${() => setPaused(!paused)}>${paused ? 'Resume' : 'Pause'}</button>
      <span class="muted">${visible.length} of ${shown.length} lines${paused ? ' (paused)' : ''}</span>
    </div>
    <${ErrorBox} error=${error} />
    <pre class="log tall" ref=${pre} tabindex="0" aria-label="log lines" data-log-lines>${visible.map((l) => html`<span class=${`ln ${l.stream}`}><span class="rep">${l.replica}</span> ${l.line}\n</span>`)}</pre>
  </${Page}>`;
}
