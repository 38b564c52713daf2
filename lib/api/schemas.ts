/**
 * JSON schemas shared by the /v1 routes: names, tags and the error shape.
 * Every route declares its params, querystring and body with these, so a
 * malformed request is refused with 400 and a VIKING_E_ code before any
 * handler reads etcd.
 */
import { NAME_PATTERN } from '../vikingfile/index.js';

export const NAME = { type: 'string', pattern: NAME_PATTERN.source } as const;
export const TAG = { type: 'string', pattern: '^v[0-9]{1,9}$' } as const;
/** A query flag: `?follow=1`, `?follow=true`, `?force=0`... */
export const FLAG = { type: 'string', enum: ['1', '0', 'true', 'false', 'yes', 'no', ''] } as const;
export const flagOn = (v: string | undefined): boolean => v === '1' || v === 'true' || v === 'yes' || v === '';
export const TAIL = { anyOf: [{ type: 'integer', minimum: 0, maximum: 100000 }, { type: 'string', enum: ['all'] }] } as const;

/** Any object or list of objects, passed through whole by the serializer. */
export const OBJ = { type: 'object', additionalProperties: true } as const;
export const OBJS = { type: 'array', items: OBJ } as const;

export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export function params<P extends Record<string, object>>(props: P) {
  return { type: 'object', additionalProperties: false, required: Object.keys(props), properties: props } as const;
}

export const errorResponse = {
  type: 'object',
  required: ['statusCode', 'code', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', pattern: '^VIKING_E_[A-Z_]+$' },
    message: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

/** Error answers every route may give, documented on each. */
export const errorResponses = {
  '4xx': errorResponse,
  '5xx': errorResponse,
} as const;

/** A 200 answer described by its main fields; extra fields pass through untouched. */
export function okObject(properties: Record<string, object>, required: string[] = []) {
  return { 200: { type: 'object', additionalProperties: true, required, properties }, ...errorResponses } as const;
}

export function okArray(item: Record<string, object>, required: string[] = []) {
  return { 200: { type: 'array', items: { type: 'object', additionalProperties: true, required, properties: item } }, ...errorResponses } as const;
}

/** Streams answer NDJSON (push, rollout operations, logs): only their errors have a JSON schema. */
export const streamResponses = errorResponses;
