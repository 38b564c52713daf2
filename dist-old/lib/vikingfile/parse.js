/**
 * parseVikingfile: YAML text to a checked, typed Vikingfile.
 *
 * All checks run even after one fails, so the user gets every problem of the
 * file in one VikingfileError instead of fixing them one push at a time. Only
 * unreadable YAML stops early: without a tree there is nothing to check.
 */
import { readBuild } from './build.js';
import { readDeploy } from './deploy.js';
import { asString, isNull, readKeys, wrongType } from './fields.js';
import { isValidName, nameRuleMessage } from './names.js';
import { ProblemList, VikingfileError } from './problems.js';
import { readYamlTree } from './yaml-tree.js';
export const TOP_LEVEL_KEYS = ['viking', 'build', 'deploy'];
export const VIKING_KEYS = ['name', 'comment'];
/**
 * Parses and checks a Vikingfile. `file` is the name used in messages.
 * Throws VikingfileError, with every problem found, if anything is wrong.
 */
export function parseVikingfile(text, file = 'Vikingfile') {
    const problems = new ProblemList();
    if (typeof text !== 'string') {
        problems.add('syntax', { line: 1, column: 1 }, 'a Vikingfile must be text');
        throw new VikingfileError(file, problems.items);
    }
    // A BOM is invisible in editors, so columns are counted without it.
    const result = check(text.replace(/^\uFEFF/, ''), problems);
    if (problems.size > 0 || result === undefined)
        throw new VikingfileError(file, problems.items);
    return result;
}
function check(text, problems) {
    const tree = readYamlTree(text, problems);
    if (!tree.parsed)
        return undefined;
    const root = tree.root;
    if (root === null || isNull(root)) {
        problems.add('syntax', root ?? { line: 1, column: 1 }, 'the Vikingfile is empty; it needs at least viking: {name: <stack name>} and deploy:');
        return undefined;
    }
    if (root.kind !== 'map') {
        const got = root.kind === 'seq' ? 'a list' : 'a single value';
        problems.add('syntax', root, `a Vikingfile must be a YAML mapping with viking: and deploy: at the top level, got ${got}`);
        return undefined;
    }
    const fields = readKeys(root, TOP_LEVEL_KEYS, 'at the top level', problems);
    const viking = readViking(fields.get('viking'), root, problems);
    const stack = viking?.stack ?? '';
    const buildEntry = fields.get('build');
    const images = readBuild(buildEntry, stack, problems);
    const buildNames = new Set(buildEntry?.value.kind === 'map' ? buildEntry.value.entries.map((e) => e.key) : []);
    const nodes = readDeploy(fields.get('deploy'), root, { stack, buildNames, problems, domains: new Map() });
    if (viking === undefined)
        return undefined;
    const result = { stack, images, nodes };
    if (viking.comment !== undefined)
        result.comment = viking.comment;
    return result;
}
/** `viking: {name, comment}`; the name is the stack name, so it follows the name rule. */
function readViking(entry, root, problems) {
    if (entry === undefined) {
        problems.add('missing-key', root, 'missing viking: section; add viking: {name: <stack name>} at the top');
        return undefined;
    }
    if (isNull(entry.value)) {
        problems.add('missing-key', entry.keyPos, 'viking: needs a name:, e.g. viking: {name: ragnar}');
        return undefined;
    }
    if (entry.value.kind !== 'map')
        return wrongType(entry.value, 'viking', 'a mapping with name: (and optionally comment:)', problems);
    const fields = readKeys(entry.value, VIKING_KEYS, 'in viking:', problems);
    const name = fields.get('name');
    let stack;
    if (name === undefined) {
        problems.add('missing-key', entry.keyPos, 'viking: needs a name: (the stack name), e.g. name: ragnar');
    }
    else {
        stack = asString(name.value, 'viking.name', problems, true);
        if (stack !== undefined && !isValidName(stack))
            problems.add('bad-name', name.value, nameRuleMessage('stack name', stack));
    }
    const commentEntry = fields.get('comment');
    let comment;
    if (commentEntry !== undefined && !isNull(commentEntry.value)) {
        const v = commentEntry.value;
        comment = v.kind === 'scalar' ? (typeof v.value === 'string' ? v.value : v.text) : wrongType(v, 'viking.comment', 'a string', problems);
    }
    if (stack === undefined)
        return undefined;
    return comment === undefined ? { stack } : { stack, comment };
}
//# sourceMappingURL=parse.js.map