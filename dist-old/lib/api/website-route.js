/**
 * GET /v1/source/:stack/:tag/website/:node: a tar of one release's website
 * document root, for the routers of other hosts (lib/router/site-cache.ts).
 *
 * The host that built the release answers from the pushed source; any other
 * host answers from the copy its own router fetched, so the files stay
 * reachable if the builder is gone. Symbolic links that lead out of the
 * document root are left out: routers refuse to serve them anyway, and the
 * receiving side refuses archives with such links.
 */
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { pack } from 'tar-fs';
import { VikingError } from '../errors.js';
import { readStack } from '../schedule/stacks.js';
import { localDocumentRoot, siteCacheDir } from '../router/site-cache.js';
import { isInside } from '../router/static-site.js';
const name = { type: 'string', pattern: '^[a-z0-9-]{1,63}$' };
export function registerWebsiteSource(app, ctx) {
    app.get('/v1/source/:stack/:tag/website/:node', { schema: { params: { type: 'object', required: ['stack', 'tag', 'node'], properties: { stack: name, tag: name, node: name } } } }, async (req, reply) => {
        const { stack: stackName, tag, node } = req.params;
        const stack = await readStack(ctx.client, stackName);
        const release = stack?.releases.find((r) => r.tag === tag);
        const documentRoot = stack?.websites[node];
        if (!stack || !release || documentRoot === undefined) {
            throw new VikingError('VIKING_E_NOT_FOUND', `no website ${node} in release ${tag} of ${stackName}`);
        }
        const candidates = [
            ...(release.builtOn === ctx.hostName ? [localDocumentRoot(release.source, documentRoot)] : []),
            siteCacheDir(ctx.dataDir, stackName, node, tag),
        ];
        const dir = candidates.find((d) => existsSync(d));
        if (!dir)
            throw new VikingError('VIKING_E_NOT_FOUND', `host ${ctx.hostName} has no files of ${stackName}/${node} release ${tag}`);
        const root = realpathSync(dir);
        const out = new PassThrough();
        const tar = pack(root, {
            ignore: (file) => {
                try {
                    return lstatSync(file).isSymbolicLink() && !isInside(realpathSync(file), root);
                }
                catch {
                    return true; // a dangling link
                }
            },
        });
        tar.on('error', (err) => out.destroy(err));
        tar.pipe(out);
        void reply.header('content-type', 'application/x-tar');
        return reply.send(out);
    });
}
//# sourceMappingURL=website-route.js.map