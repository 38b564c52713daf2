/**
 * How the CLI talks to people: aligned tables for read commands (or JSON
 * with --json), and errors as `error <CODE>: message` on stderr with a
 * non-zero exit code.
 */
import { VikingError, toVikingError } from '../errors.js';
/** Prints rows as a table with a header, columns padded to their widest cell. */
export function formatTable(headers, rows) {
    const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
    const line = (r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
    return [line(headers), ...cells.map(line)].join('\n');
}
export function printJson(value) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
/** Prints a failure for a person and sets the exit code. */
export function printError(err) {
    const e = toVikingError(err);
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    const details = e.details ?? {};
    const output = details.output;
    if (Array.isArray(output) && output.length > 0) {
        process.stderr.write(`--- build output (last ${output.length} lines) ---\n${output.join('\n')}\n`);
    }
    const logs = details.logs;
    if (Array.isArray(logs) && logs.length > 0) {
        process.stderr.write(`--- container log (last ${logs.length} lines) ---\n${logs.join('\n')}\n`);
    }
    process.exitCode = 1;
}
/** Wraps a command handler so every failure ends as printError + exit 1. */
export function handled(fn) {
    return async (args) => {
        try {
            await fn(args);
        }
        catch (err) {
            printError(err);
        }
    };
}
export { VikingError };
//# sourceMappingURL=output.js.map