/**
 * Typed reads from the positioned YAML tree.
 *
 * Each reader either returns the value or records a `wrong-type` problem at
 * the value and returns undefined, so a section's checks can go on after a
 * bad field and report everything wrong in one go.
 */
import { describe } from './describe.js';
import { unknownKeyMessage } from './suggest.js';
/** "scale must be an integer, got string 'two'". */
export function wrongType(node, what, expected, problems) {
    problems.add('wrong-type', node, `${what} must be ${expected}, got ${describe(node)}`);
    return undefined;
}
export function isNull(node) {
    return node.kind === 'scalar' && node.value === null;
}
/**
 * The entries of `map` whose key is in `allowed`. Every other key is an
 * `unknown-key` problem: `notHere(key)` may give the message for keys that
 * are valid elsewhere but not here, else the closest allowed key is suggested.
 */
export function readKeys(map, allowed, where, problems, notHere) {
    const found = new Map();
    for (const entry of map.entries) {
        if (allowed.includes(entry.key)) {
            found.set(entry.key, entry);
            continue;
        }
        const special = notHere?.(entry.key);
        problems.add('unknown-key', entry.keyPos, special ?? unknownKeyMessage(entry.key, where, allowed));
    }
    return found;
}
export function asMap(node, what, problems) {
    return node.kind === 'map' ? node : wrongType(node, what, 'a mapping', problems);
}
/** A string; with `numbers`, a number is taken as written (names like `2024`, commands like `[sleep, 10]`). */
export function asString(node, what, problems, numbers = false) {
    if (node.kind === 'scalar') {
        if (typeof node.value === 'string')
            return node.value;
        if (numbers && typeof node.value === 'number')
            return node.text;
    }
    return wrongType(node, what, 'a string', problems);
}
/** A number (integer or not: the caller decides what a fraction means for its field). */
export function asNumber(node, what, expected, problems) {
    return node.kind === 'scalar' && typeof node.value === 'number' ? node.value : wrongType(node, what, expected, problems);
}
export function asBoolean(node, what, problems) {
    return node.kind === 'scalar' && typeof node.value === 'boolean' ? node.value : wrongType(node, what, 'true or false', problems);
}
/** Lists where a single value is also fine (`expose: 80`): a scalar is a list of one, an empty value none. */
export function asList(node, what, expected, problems) {
    if (node.kind === 'seq')
        return node.items;
    if (node.kind === 'map')
        return wrongType(node, what, expected, problems);
    return node.value === null ? [] : [node];
}
/** A list of strings (or one string), each checked by `check` which returns the value to keep. */
export function readStrings(node, what, problems, check) {
    const items = asList(node, what, 'a string or a list of strings', problems);
    if (items === undefined)
        return undefined;
    const out = [];
    for (const item of items) {
        const s = asString(item, `each of ${what}`, problems);
        if (s === undefined || item.kind !== 'scalar')
            continue;
        const kept = check(s, item);
        if (kept !== undefined)
            out.push(kept);
    }
    return out;
}
//# sourceMappingURL=fields.js.map