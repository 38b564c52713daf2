/**
 * The CLI's only way into a cluster: HTTP calls to any host's /v1 API.
 * Errors the API sends come back as VikingErrors with the same code.
 */
import { VikingError, ERROR_CODES, type ErrorCode } from '../errors.js';

export const DEFAULT_API = 'http://127.0.0.1:8791';

export function apiUrl(flag: string | undefined): string {
  return (flag ?? process.env.VIKING_API ?? DEFAULT_API).replace(/\/+$/, '');
}

export function errorFromBody(body: unknown, status: number): VikingError {
  const b = (body ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> };
  const code = (b.code && b.code in ERROR_CODES ? b.code : status >= 500 ? 'VIKING_E_INTERNAL' : 'VIKING_E_BAD_REQUEST') as ErrorCode;
  return new VikingError(code, b.message ?? `HTTP ${status}`, b.details);
}

export async function apiFetch(base: string, path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(`${base}${path}`, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new VikingError('VIKING_E_API_UNREACHABLE', `cannot reach the viking API at ${base} (${cause?.code ?? cause?.message ?? (err as Error).message}); pass --api URL or set VIKING_API`);
  }
}

export async function apiGet<T>(base: string, path: string): Promise<T> {
  const res = await apiFetch(base, path);
  const body = (await res.json().catch(() => ({}))) as unknown;
  if (!res.ok) throw errorFromBody(body, res.status);
  return body as T;
}
