/**
 * How user values are quoted inside problem messages.
 *
 * A message is one line of `file:line:col: message`, so a value copied into
 * it must not bring its own newlines or control characters, and a 10 kB
 * string pasted by mistake must not flood the terminal.
 */
/** The value, escaped to a single printable line and cut at `max` characters. */
export function show(value, max = 40) {
    let s = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
        if (c === '\n')
            return '\\n';
        if (c === '\t')
            return '\\t';
        if (c === '\r')
            return '\\r';
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
    if (s.length > max)
        s = `${s.slice(0, max)}...`;
    return s;
}
/** What the user wrote, for "got ..." in wrong-type messages: `string 'two'`, `integer 5`, `a list`. */
export function describe(node) {
    if (node.kind === 'map')
        return 'a mapping';
    if (node.kind === 'seq')
        return 'a list';
    const v = node.value;
    if (v === null)
        return 'an empty value';
    if (typeof v === 'string')
        return `string '${show(v)}'`;
    if (typeof v === 'boolean')
        return `boolean ${show(node.text)}`;
    return Number.isInteger(v) ? `integer ${show(node.text)}` : `number ${show(node.text)}`;
}
//# sourceMappingURL=describe.js.map