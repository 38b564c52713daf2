/** Small shared pieces of the dashboard: formatting, errors, links, the secret mask. */
import { html } from 'htm/preact';
import type { ComponentChildren } from 'preact';
import { ApiError } from './api.js';

export { html };

export function bytes(n: number | undefined): string {
  if (!n) return '0';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return iso;
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toISOString().slice(0, 16).replace('T', ' ');
}

/** Keys whose values look secret: shown masked, never in the page. */
const SECRET_KEY = /(secret|token|passw|pwd|private|credential|api[_-]?key|access[_-]?key|_key$|^key$|auth|dsn|salt|signature|cookie|session)/i;
export const looksSecret = (key: string): boolean => SECRET_KEY.test(key);
export const MASK = '••••••••';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as Error;
  const code = e instanceof ApiError ? e.code : '';
  return html`<p class="error" role="alert">${code ? html`<code>${code}</code> ` : ''}${e.message}</p>`;
}

export function Loading({ what }: { what: string }) {
  return html`<p class="muted" aria-busy="true">Loading ${what}…</p>`;
}

export function Page({ title, children, actions }: { title: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren }) {
  return html`<section class="page"><header class="page-head"><h1>${title}</h1>${actions ?? null}</header>${children}</section>`;
}

export function Meter({ used, total, label }: { used: number; total: number; label: string }) {
  return html`<span class="meter"><meter min="0" max=${total || 1} value=${used} low=${(total || 1) * 0.7} high=${(total || 1) * 0.9} optimum="0" aria-label=${label}></meter> ${label}</span>`;
}

export const enc = encodeURIComponent;
