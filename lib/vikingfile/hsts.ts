/**
 * `hsts:` of a node: whether HTTPS answers for its domains carry
 * Strict-Transport-Security, which makes browsers use HTTPS only for the
 * domain from then on. Off unless asked, because it cannot be taken back
 * before max-age runs out: a domain that later loses its certificate stays
 * unreachable to those browsers.
 *
 *   hsts: true        max-age one year (31536000 s)
 *   hsts: 86400       max-age in seconds (0 tells browsers to forget it)
 *   hsts: false       off (the default)
 */
import { show } from './describe.js';
import { wrongType } from './fields.js';
import type { ProblemList } from './problems.js';
import type { YNode } from './yaml-tree.js';

export const HSTS_DEFAULT_MAX_AGE = 31_536_000;
/** Two years: what browsers' preload lists ask for; more is surely a typo. */
export const HSTS_MAX_AGE_LIMIT = 63_072_000;

/** The max-age in seconds, or undefined when off (or wrong: reported). */
export function readHsts(value: YNode, problems: ProblemList): number | undefined {
  if (value.kind === 'scalar' && typeof value.value === 'boolean') return value.value ? HSTS_DEFAULT_MAX_AGE : undefined;
  if (value.kind === 'scalar' && typeof value.value === 'number') {
    const n = value.value;
    if (!Number.isInteger(n) || n < 0 || n > HSTS_MAX_AGE_LIMIT) {
      problems.add('bad-value', value, `hsts max-age must be a whole number of seconds from 0 to ${HSTS_MAX_AGE_LIMIT}, got ${show(value.text)}; or write hsts: true for one year`);
      return undefined;
    }
    return n;
  }
  return wrongType(value, 'hsts', 'true, false or a max-age in seconds', problems);
}

/** The response header line for a max-age. */
export const hstsHeader = (maxAge: number): string => `max-age=${maxAge}`;
