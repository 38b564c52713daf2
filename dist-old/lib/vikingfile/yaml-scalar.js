/**
 * Scalar values under the YAML 1.2 core schema.
 *
 * Core, not YAML 1.1: `true`/`false` are booleans and `80` an integer, but
 * `yes`, `on` or `0777`-style surprises stay strings, which is what a user
 * writing `service: yes` gets told (a wrong-type problem) instead of a
 * silent guess. Explicit standard tags (`!!str 80`) are honoured; any other
 * tag has no meaning in a Vikingfile and is refused.
 */
import { NOT_RESOLVED, boolCoreTag, floatCoreTag, intCoreTag, nullCoreTag, } from 'js-yaml';
import { show } from './describe.js';
const CORE_IMPLICIT = [nullCoreTag, boolCoreTag, intCoreTag, floatCoreTag];
/** A Map, not an object: a tag like `!!constructor` must not find Object.prototype members. */
const EXPLICIT_SCALAR = new Map([
    ['str', 'str'],
    ['null', nullCoreTag],
    ['bool', boolCoreTag],
    ['int', intCoreTag],
    ['float', floatCoreTag],
]);
/** `!!int` and `!<tag:yaml.org,2002:int>` to `int`; other tags to null. */
export function standardTag(tag) {
    if (tag.startsWith('!!'))
        return tag.slice(2);
    const m = /^!<tag:yaml\.org,2002:(.*)>$/.exec(tag);
    return m ? (m[1] ?? null) : null;
}
/**
 * The value of a scalar whose decoded text is `text`. Only plain untagged
 * scalars are typed implicitly: `"80"` stays a string.
 */
export function resolveScalar(text, plain, tag) {
    if (tag === null) {
        if (plain) {
            for (const def of CORE_IMPLICIT) {
                const v = def.resolve(text, false, def.tagName);
                if (v !== NOT_RESOLVED)
                    return { ok: true, value: v };
            }
        }
        return { ok: true, value: text };
    }
    if (tag === '!')
        return { ok: true, value: text };
    const name = standardTag(tag);
    const def = name === null ? undefined : EXPLICIT_SCALAR.get(name);
    if (def === undefined) {
        return { ok: false, message: `unsupported YAML tag '${show(tag)}'; remove it (a Vikingfile only uses plain values)` };
    }
    if (def === 'str')
        return { ok: true, value: text };
    const v = def.resolve(text, true, def.tagName);
    if (v === NOT_RESOLVED)
        return { ok: false, message: `'${show(text)}' is not a valid ${show(tag)}; remove the tag or fix the value` };
    return { ok: true, value: v };
}
//# sourceMappingURL=yaml-scalar.js.map