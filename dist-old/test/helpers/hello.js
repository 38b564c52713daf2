/**
 * Copies of vikingfiles/hello under a unique stack name (so a test's images
 * never collide with a real `hello` on the same daemon), with its own
 * message and, when asked, its own domain and Vikingfile edits.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
export const HELLO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../vikingfiles/hello');
export async function helloCopy(o) {
    await cp(HELLO_DIR, o.dir, { recursive: true });
    const file = path.join(o.dir, 'Vikingfile');
    let vf = (await readFile(file, 'utf8')).replace('name: hello', `name: ${o.stack}`).replace('viking:hello/app', `viking:${o.stack}/app`);
    if (o.domain)
        vf = vf.replace('- hello.local', `- ${o.domain}`);
    await writeFile(file, o.edit ? o.edit(vf) : vf);
    await writeFile(path.join(o.dir, 'message.txt'), `${o.message}\n`);
    return o.dir;
}
//# sourceMappingURL=hello.js.map