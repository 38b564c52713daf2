/**
 * Finding and reading the Vikingfile at the root of a pushed directory.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { VikingError } from '../errors.js';
import { parseVikingfile } from './parse.js';
/** The names looked for, in this order: the first that exists wins. */
export const VIKINGFILE_NAMES = ['Vikingfile', 'Vikingfile.yml', 'Vikingfile.yaml'];
/** The path of the Vikingfile of `dir`, or null if it has none. */
export async function findVikingfile(dir) {
    for (const name of VIKINGFILE_NAMES) {
        const path = join(dir, name);
        try {
            if ((await stat(path)).isFile())
                return path;
        }
        catch {
            // Missing or unreadable: try the next name.
        }
    }
    return null;
}
/**
 * Finds, reads and parses the Vikingfile of `dir`. Problems are reported
 * against the file's name (not the full path: the directory is usually a
 * temporary upload folder the user never saw).
 */
export async function loadVikingfile(dir) {
    const path = await findVikingfile(dir);
    if (path === null) {
        throw new VikingError('VIKING_E_VIKINGFILE_MISSING', `no Vikingfile in ${dir}: add a file named Vikingfile (or Vikingfile.yml / Vikingfile.yaml) at the root of the stack, with viking: {name: <stack>} and deploy:`, { dir });
    }
    const text = await readFile(path, 'utf8');
    return { path, vikingfile: parseVikingfile(text, basename(path)) };
}
//# sourceMappingURL=load.js.map