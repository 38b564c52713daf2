/**
 * "Did you mean ...?" for unknown keys.
 *
 * A typo in a key would otherwise silently drop a setting (`domian:` and the
 * node gets no domain), so unknown keys are errors, and the error names the
 * key the user most likely meant.
 */
import { show } from './describe.js';
/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
export function editDistance(a, b) {
    const rows = [];
    for (let i = 0; i <= a.length; i++) {
        const row = [];
        for (let j = 0; j <= b.length; j++) {
            if (i === 0 || j === 0) {
                row.push(i + j);
                continue;
            }
            const prev = rows[i - 1];
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
                d = Math.min(d, rows[i - 2][j - 2] + 1);
            }
            row.push(d);
        }
        rows.push(row);
    }
    return rows[a.length][b.length];
}
/** Case and `-`/`_` do not count: `Document-Root` is one step from nothing. */
function normalise(s) {
    return s.toLowerCase().replace(/-/g, '_');
}
/** The candidate closest to `word`, if close enough to be a plausible typo (about a third of its letters). */
export function closest(word, candidates) {
    if (word.length > 64)
        return undefined;
    const w = normalise(word);
    let best;
    let bestDistance = Infinity;
    for (const c of candidates) {
        const d = editDistance(w, normalise(c));
        const limit = Math.max(1, Math.floor(Math.max(w.length, c.length) / 3));
        if (d <= limit && d < bestDistance) {
            best = c;
            bestDistance = d;
        }
    }
    return best;
}
/** "unknown key 'domian' in node 'web'; did you mean 'domains'?", or the list of valid keys. */
export function unknownKeyMessage(key, where, allowed) {
    const guess = closest(key, allowed);
    const head = `unknown key '${show(key)}' ${where}`;
    return guess !== undefined ? `${head}; did you mean '${guess}'?` : `${head}; valid keys are: ${allowed.join(', ')}`;
}
//# sourceMappingURL=suggest.js.map