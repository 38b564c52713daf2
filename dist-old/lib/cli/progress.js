/**
 * Showing a long operation as the cluster reports it: the API streams
 * NDJSON progress lines (lib/api/progress.ts) and this prints each one as
 * `-----> message` (build output indented), or passes the raw lines through
 * with --json. The last line is the result, or an error that is thrown with
 * its code so the command exits non-zero.
 */
import { VikingError } from '../errors.js';
import { errorFromBody, readLines } from './api-client.js';
export async function followProgress(res, o = {}) {
    const say = o.say ?? ((line) => process.stdout.write(`${line}\n`));
    let result;
    let failure;
    await readLines(res, (text) => {
        if (o.json)
            process.stdout.write(`${text}\n`);
        const line = JSON.parse(text);
        if (line.type === 'progress') {
            if (!o.json)
                say(line.stage === 'build' || line.stage === 'registry' ? `  ${line.message}` : `-----> ${line.message}`);
        }
        else if (line.type === 'error') {
            failure = errorFromBody(line, line.statusCode);
        }
        else {
            const { type: _type, ...rest } = line;
            result = rest;
        }
    });
    if (failure)
        throw failure;
    if (!result)
        throw new VikingError('VIKING_E_INTERNAL', 'the API closed the stream without a result; check the host log');
    return result;
}
//# sourceMappingURL=progress.js.map