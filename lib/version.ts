/**
 * viking's version, read once from package.json (the one place it is
 * written). A module of its own so the API and the host both import it
 * without importing each other. Compiled to dist/lib/version.js, two folders
 * below package.json.
 */
import { readFileSync } from 'node:fs';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
