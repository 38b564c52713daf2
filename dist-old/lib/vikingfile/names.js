/**
 * The one naming rule of viking: stacks, images, nodes and host tags.
 *
 * Names become etcd key segments (`/proc/<stack>/<tag>/<node>`), Docker
 * image and container names and DNS labels, so they must be safe in all
 * three: a DNS label (RFC 1123), lowercase only. Other modules reuse
 * NAME_PATTERN and validateName for their own key segments.
 */
import { VikingError } from '../errors.js';
import { show } from './describe.js';
/** 1-63 lowercase letters, digits and dashes, not starting or ending with a dash. */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export function isValidName(value) {
    return typeof value === 'string' && NAME_PATTERN.test(value);
}
/** A valid name close to `value`, for the "e.g." of messages: `My_Web` gives `my-web`. */
export function suggestName(value) {
    const s = value
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+/, '')
        .slice(0, 63)
        .replace(/-+$/, '');
    return s === '' ? 'my-name' : s;
}
/** "node name 'My_Web' must be lowercase letters, digits and dashes, e.g. 'my-web' (...)". */
export function nameRuleMessage(what, value) {
    return (`${what} '${show(value)}' must be lowercase letters, digits and dashes, e.g. '${suggestName(value)}'` +
        ' (at most 63 characters, not starting or ending with a dash)');
}
/** Returns `value` if it is a valid name, else throws VIKING_E_INVALID_NAME naming `what` it is. */
export function validateName(value, what) {
    if (isValidName(value))
        return value;
    throw new VikingError('VIKING_E_INVALID_NAME', nameRuleMessage(what, typeof value === 'string' ? value : String(value)));
}
//# sourceMappingURL=names.js.map