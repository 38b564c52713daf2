/**
 * The CLI's only way into a cluster: HTTP calls to any host's /v1 API, with
 * the bearer token from the flag, the environment or the config file.
 * Errors the API sends come back as VikingErrors with the same code; a 401
 * says how to get a token.
 */
import { VikingError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { DEFAULT_API, resolveTarget, type Target } from './config.js';

export { DEFAULT_API };

/** The API URL from a flag or $VIKING_API (kept for callers that do not read the config file). */
export function apiUrl(flag: string | undefined): string {
  return (flag ?? process.env.VIKING_API ?? DEFAULT_API).replace(/\/+$/, '');
}

export function errorFromBody(body: unknown, status: number): VikingError {
  const b = (body ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> };
  const code = (b.code && Object.hasOwn(ERROR_CODES, b.code) ? b.code : status === 401 ? 'VIKING_E_UNAUTHORIZED' : status >= 500 ? 'VIKING_E_INTERNAL' : 'VIKING_E_BAD_REQUEST') as ErrorCode;
  return new VikingError(code, b.message ?? `HTTP ${status}`, b.details);
}

export async function apiFetch(base: string, path: string, init: RequestInit = {}, token?: string): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token ?? process.env.VIKING_TOKEN;
  if (t && !headers.has('authorization')) headers.set('authorization', `Bearer ${t}`);
  if (!headers.has('x-viking-user') && process.env.USER) headers.set('x-viking-user', process.env.USER);
  try {
    return await fetch(`${base}${path}`, { ...init, headers });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new VikingError('VIKING_E_API_UNREACHABLE', `cannot reach the viking API at ${base} (${cause?.code ?? cause?.message ?? (err as Error).message}); pass --api URL, set VIKING_API, or run viking configure`);
  }
}

async function failure(res: Response): Promise<VikingError> {
  return errorFromBody(await res.json().catch(() => ({})), res.status);
}

export async function apiGet<T>(base: string, path: string): Promise<T> {
  const res = await apiFetch(base, path);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** A connection to one API with one token. */
export class ApiClient {
  constructor(readonly target: Target) {}

  static async from(flags: { api?: string | undefined; token?: string | undefined }): Promise<ApiClient> {
    return new ApiClient(await resolveTarget(flags));
  }

  get base(): string {
    return this.target.api;
  }

  /** Raw response of a call; non-2xx answers become VikingErrors. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      if (isStreamBody(body)) {
        Object.assign(init, { body, duplex: 'half' });
      } else {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] = 'application/json';
      }
    }
    const res = await apiFetch(this.base, path, init, this.target.token ?? '');
    if (!res.ok) {
      const err = await failure(res);
      if (err.code === 'VIKING_E_UNAUTHORIZED' && !this.target.token) {
        throw new VikingError(err.code, `${err.message} (no token configured: viking configure --api ${this.base} --token TOKEN)`);
      }
      throw err;
    }
    return res;
  }

  async get<T>(path: string): Promise<T> {
    return (await (await this.call('GET', path)).json()) as T;
  }

  async post<T>(path: string, body: unknown = {}): Promise<T> {
    return (await (await this.call('POST', path, body)).json()) as T;
  }

  async delete<T>(path: string): Promise<T> {
    return (await (await this.call('DELETE', path)).json()) as T;
  }
}

function isStreamBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && typeof (body as { getReader?: unknown }).getReader === 'function';
}

export { readLines } from '../ndjson.js';
