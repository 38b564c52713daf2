/**
 * Image references: `image:` of nodes and FROM lines of `build:` Dockerfiles.
 *
 * `viking:<stack>/<image>` names an image built by a stack's `build:`
 * section; the builder rewrites it to the registry tag of the current
 * release. Anything else is an ordinary Docker reference pulled as is. The
 * `viking:` prefix is reserved (it is otherwise a valid Docker name with a
 * tag), so a malformed `viking:...` is an error rather than a pull that
 * would fail much later on some host.
 */
import { show } from './describe.js';
import { NAME_PATTERN } from './names.js';
// The grammar of github.com/distribution/reference, without IPv6 hosts.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const DOCKER_REF = new RegExp(`^(${NAME})(?::${TAG})?(?:@${DIGEST})?$`);
/** Whether `ref` is a reference `docker pull` accepts, e.g. `viking/node`, `quarry/mongo:1.2`. */
export function isDockerRef(ref) {
    // Name (255) + tag (128) + digest fit well under this; longer is hostile or a paste accident.
    if (ref.length > 1024)
        return false;
    const m = DOCKER_REF.exec(ref);
    return m !== null && (m[1] ?? '').length <= 255;
}
/** Parses an image reference; `stack` only makes the example of the message concrete. */
export function parseImageRef(raw, stack) {
    if (raw.startsWith('viking:')) {
        const [owner, image, ...extra] = raw.slice('viking:'.length).split('/');
        if (owner !== undefined && image !== undefined && extra.length === 0 && NAME_PATTERN.test(owner) && NAME_PATTERN.test(image)) {
            return { ok: true, value: { kind: 'stack', stack: owner, image } };
        }
        const example = NAME_PATTERN.test(stack) ? stack : 'mystack';
        return {
            ok: false,
            message: `image '${show(raw)}' must be of the form viking:<stack>/<image>, e.g. 'viking:${example}/src' ` +
                '(stack and image names are lowercase letters, digits and dashes)',
        };
    }
    if (!isDockerRef(raw)) {
        return {
            ok: false,
            message: `image '${show(raw)}' is not a valid Docker image reference; use a lowercase name like 'viking/node' or 'quarry/mongo:1.2'`,
        };
    }
    return { ok: true, value: { kind: 'external', ref: raw } };
}
/** How a reference is written, for messages. */
export function formatImageRef(ref) {
    return ref.kind === 'stack' ? `viking:${ref.stack}/${ref.image}` : ref.ref;
}
/**
 * The FROM lines of a Dockerfile, in order. Instructions are matched case-
 * insensitively; comment lines and lines continuing a previous instruction
 * with `\` are skipped, so a `FROM` word inside a long RUN does not count.
 */
export function dockerfileFroms(text) {
    const lines = text.split(/\r\n|\n|\r/);
    const continues = (l) => /\\[ \t]*$/.test(l) && !/^\s*#/.test(l);
    const froms = [];
    let continuing = false;
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        const wasContinuing = continuing;
        continuing = continues(line);
        if (wasContinuing)
            continue;
        const m = /^(\s*)from(?=\s|\\|$)/i.exec(line);
        if (m === null)
            continue;
        let body = line;
        for (let k = i; continues(lines[k]) && k + 1 < lines.length; k++)
            body += ` ${lines[k + 1]}`;
        body = body.replace(/\\[ \t]*(?= |$)/g, ' ');
        const tokens = [...body.slice(m[0].length).matchAll(/\S+/g)].map((t) => ({ text: t[0], at: (t.index ?? 0) + m[0].length }));
        const args = tokens.filter((t) => !t.text.startsWith('--'));
        const image = args[0];
        const from = {
            image: image?.text ?? '',
            line: i,
            column: image !== undefined && image.at < line.length ? image.at : (m[1] ?? '').length,
        };
        const as = args[1];
        const alias = args[2];
        if (as !== undefined && as.text.toLowerCase() === 'as' && alias !== undefined)
            from.alias = alias.text.toLowerCase();
        froms.push(from);
    }
    return froms;
}
//# sourceMappingURL=image-ref.js.map