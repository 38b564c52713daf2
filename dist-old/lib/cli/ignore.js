/**
 * `.vikingignore`: paths left out of a push, one pattern a line, in the
 * spirit of .gitignore: `#` comments, `*` within a segment, `**` across
 * segments, a trailing `/` for folders, a leading `/` anchors to the root.
 * `.git` and `node_modules` are always left out.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
const ALWAYS = ['.git', 'node_modules'];
function toRegExp(pattern) {
    let p = pattern;
    const anchored = p.startsWith('/');
    if (anchored)
        p = p.slice(1);
    if (p.endsWith('/'))
        p = p.slice(0, -1);
    let re = '';
    for (let i = 0; i < p.length; i++) {
        const ch = p[i];
        if (ch === '*' && p[i + 1] === '*') {
            re += '.*';
            i++;
            if (p[i + 1] === '/')
                i++;
        }
        else if (ch === '*')
            re += '[^/]*';
        else if (ch === '?')
            re += '[^/]';
        else
            re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    const prefix = anchored || p.includes('/') ? '^' : '(^|/)';
    return new RegExp(`${prefix}${re}(/|$)`);
}
export function compileIgnore(lines) {
    const patterns = [...ALWAYS, ...lines]
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'))
        .map(toRegExp);
    return (relPath) => {
        const p = relPath.split(path.sep).join('/');
        return patterns.some((re) => re.test(p));
    };
}
export async function loadIgnore(dir) {
    const text = await readFile(path.join(dir, '.vikingignore'), 'utf8').catch(() => '');
    return compileIgnore(text.split('\n'));
}
//# sourceMappingURL=ignore.js.map