/**
 * The dashboard's only way to the cluster: the /v1 routes of the host that
 * served it, with the session cookie, plus the CSRF header on every request
 * that changes something (lib/auth/session.ts). Errors arrive as the API's
 * own `{statusCode, code, message}` and are shown as they are.
 */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The double-submit token: the readable CSRF cookie the sign-in set. */
function csrfToken(): string {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'viking_csrf') return v.join('=');
  }
  return '';
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const j = JSON.parse(text) as { code?: string; message?: string };
    return new ApiError(res.status, j.code ?? `HTTP_${res.status}`, j.message ?? text);
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, text.slice(0, 300) || res.statusText);
  }
}

/** Listeners told when the session is gone (401): the app shows the sign-in again. */
export const onSignedOut = new Set<() => void>();

export async function request(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { ...init.headers };
  if (method !== 'GET') headers['x-viking-csrf'] = csrfToken();
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!res.ok) {
    const e = await failure(res);
    if (res.status === 401 && !headers.authorization) for (const l of onSignedOut) l();
    throw e;
  }
  return res;
}

export async function getJSON<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

/** Lines of an NDJSON or text stream as they arrive. */
export async function* lines(res: Response, signal?: AbortSignal): AsyncGenerator<string> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      if (signal?.aborted) return;
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        yield buf.slice(0, nl);
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) yield buf;
  } finally {
    reader.cancel().catch(() => {});
  }
}

export interface ProgressLine {
  type: 'progress' | 'result' | 'error';
  stage?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  [k: string]: unknown;
}

/** Runs a long operation (scale, rollback, rm): each progress line to `onLine`, the result returned, an error line thrown. */
export async function operation(path: string, method: string, body: unknown, onLine: (l: ProgressLine) => void): Promise<ProgressLine> {
  const res = await request(path, { method, ...(body !== undefined ? { body } : {}) });
  let result: ProgressLine | undefined;
  for await (const text of lines(res)) {
    if (!text.trim()) continue;
    const l = JSON.parse(text) as ProgressLine;
    onLine(l);
    if (l.type === 'error') throw new ApiError(l.statusCode ?? 500, l.code ?? 'VIKING_E_INTERNAL', l.message ?? 'failed');
    if (l.type === 'result') result = l;
  }
  if (!result) throw new ApiError(0, 'VIKING_E_STREAM_ENDED', 'the answer ended before its result');
  return result;
}

/** Signs in: the API checks the token and sets the HttpOnly session cookie. */
export async function signIn(token: string): Promise<{ name: string; role: string }> {
  const res = await request('/ui/session', { method: 'POST', headers: { authorization: `Bearer ${token.trim()}` } });
  return (await res.json()) as { name: string; role: string };
}

export async function signOut(): Promise<void> {
  await request('/ui/session', { method: 'DELETE' }).catch(() => {});
}
