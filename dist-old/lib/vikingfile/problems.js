/**
 * Problems found in a Vikingfile, and the error that carries them.
 *
 * The parser never stops at the first mistake: a user pushing a stack wants
 * every problem of the file at once, each with the line and column an editor
 * can jump to. So checks add to a ProblemList and the parser throws one
 * VikingfileError at the end if the list is not empty.
 */
import { VikingError } from '../errors.js';
/** Sorted by line then column; problems at the same place keep the order they were found in. */
export function sortProblems(problems) {
    return problems
        .map((p, i) => ({ p, i }))
        .sort((a, b) => a.p.line - b.p.line || a.p.column - b.p.column || a.i - b.i)
        .map(({ p }) => p);
}
/** Collects the problems of one parse. */
export class ProblemList {
    items = [];
    add(kind, at, message) {
        this.items.push({ kind, line: at.line, column: at.column, message });
    }
    get size() {
        return this.items.length;
    }
}
/**
 * A Vikingfile that cannot be used. The message has one line per problem,
 * `<file>:<line>:<column>: <message>`, the form editors and terminals turn
 * into links; `problems` has the same in structured form.
 */
export class VikingfileError extends VikingError {
    file;
    problems;
    constructor(file, problems) {
        const sorted = sortProblems(problems);
        super('VIKING_E_VIKINGFILE_INVALID', sorted.map((p) => `${file}:${p.line}:${p.column}: ${p.message}`).join('\n'), { problems: sorted });
        this.name = 'VikingfileError';
        this.file = file;
        this.problems = sorted;
    }
}
//# sourceMappingURL=problems.js.map