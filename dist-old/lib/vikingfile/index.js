/**
 * The Vikingfile: the YAML file at the root of a stack that says what to
 * build and what to run. Everything else in viking consumes the typed form
 * of ./types.ts that parseVikingfile returns.
 */
export { parseVikingfile } from './parse.js';
export { findVikingfile, loadVikingfile, VIKINGFILE_NAMES } from './load.js';
export { VikingfileError } from './problems.js';
export { NAME_PATTERN, isValidName, validateName } from './names.js';
export { checkDomain } from './values.js';
export { formatImageRef, parseImageRef } from './image-ref.js';
//# sourceMappingURL=index.js.map