/**
 * JSON schemas shared by the /v1 routes: names, tags and the error shape.
 * Every route declares its params, querystring and body with these, so a
 * malformed request is refused with 400 and a VIKING_E_ code before any
 * handler reads etcd.
 */
import { NAME_PATTERN } from '../vikingfile/index.js';
export const NAME = { type: 'string', pattern: NAME_PATTERN.source };
export const TAG = { type: 'string', pattern: '^v[0-9]{1,9}$' };
/** A query flag: `?follow=1`, `?follow=true`, `?force=0`... */
export const FLAG = { type: 'string', enum: ['1', '0', 'true', 'false', 'yes', 'no', ''] };
export const flagOn = (v) => v === '1' || v === 'true' || v === 'yes' || v === '';
export const TAIL = { anyOf: [{ type: 'integer', minimum: 0, maximum: 100000 }, { type: 'string', enum: ['all'] }] };
/** Any object or list of objects, passed through whole by the serializer. */
export const OBJ = { type: 'object', additionalProperties: true };
export const OBJS = { type: 'array', items: OBJ };
export const noQuery = { type: 'object', additionalProperties: false, properties: {} };
export function params(props) {
    return { type: 'object', additionalProperties: false, required: Object.keys(props), properties: props };
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
};
/** Error answers every route may give, documented on each. */
export const errorResponses = {
    '4xx': errorResponse,
    '5xx': errorResponse,
};
/** A 200 answer described by its main fields; extra fields pass through untouched. */
export function okObject(properties, required = []) {
    return { 200: { type: 'object', additionalProperties: true, required, properties }, ...errorResponses };
}
export function okArray(item, required = []) {
    return { 200: { type: 'array', items: { type: 'object', additionalProperties: true, required, properties: item } }, ...errorResponses };
}
/** Streams answer NDJSON (push, rollout operations, logs): only their errors have a JSON schema. */
export const streamResponses = errorResponses;
//# sourceMappingURL=schemas.js.map