/**
 * GET /v1/source/:stack/:tag/website/:node: a tar of one release's website
 * document root, for the routers of other hosts (lib/router/site-cache.ts).
 *
 * The route is public (routers call it without a token), so it hands out
 * exactly what a router would serve and nothing more:
 *  - only releases that can still go live: the stack's history, which holds
 *    the live release and every release `viking rollback` may return to. A
 *    release still rolling out is not in it (its routers fetch it once it is
 *    switched), nor a failed push, nor one that fell out of the history;
 *  - only the document root, whose realpath must stay inside the release;
 *  - no dotfiles (`.env`, `.git`), except a top `.well-known`, as the router;
 *  - symbolic links only when they resolve, inside the document root, to an
 *    entry that is shipped too: links that climb out, dangle, loop or lead to
 *    a dotfile are left out (the receiving side refuses such archives).
 *
 * The host that built the release answers from the pushed source; any other
 * host answers from the copy its own router fetched, so the files stay
 * reachable if the builder is gone.
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pack } from 'tar-fs';
import type { FastifyInstance } from 'fastify';
import { VikingError } from '../errors.js';
import { readStack } from '../rollout/stacks.js';
import { checkedDocumentRoot, siteCacheDir } from '../router/site-cache.js';
import { isInside } from '../router/static-site.js';
import { hiddenSegment, linksUnder, resolveInTree } from '../upload/tree-links.js';
import type { ApiContext } from './server.js';
import { own } from '../store/dict.js';

const name = { type: 'string', pattern: '^[a-z0-9-]{1,63}$' } as const;

interface Params {
  stack: string;
  tag: string;
  node: string;
}

/** True for a path (relative to the document root) the router would never serve. */
export function hiddenPath(rel: string): boolean {
  return rel.split('/').some((p, i) => hiddenSegment(p, i));
}

/** The links under `root` that must not be shipped: relative paths. */
async function unshippableLinks(root: string): Promise<Set<string>> {
  const skip = new Set<string>();
  for (const rel of await linksUnder(root)) {
    if (hiddenPath(rel)) continue; // left out with its dotfile anyway
    const r = await resolveInTree(root, rel);
    if (r.kind !== 'inside' || r.hidden) skip.add(rel);
  }
  return skip;
}

/** The directory holding the release's website files on this host, checked, or a 404 saying why not. */
function siteDirectory(ctx: ApiContext, stackName: string, node: string, tag: string, source: string, documentRoot: string, builtHere: boolean): string {
  if (builtHere && existsSync(source)) {
    const checked = checkedDocumentRoot(source, documentRoot);
    if ('root' in checked) return checked.root;
    if (existsSync(path.join(source, documentRoot))) throw new VikingError('VIKING_E_NOT_FOUND', `${stackName}/${node} release ${tag}: ${checked.problem}`);
  }
  const cached = siteCacheDir(ctx.dataDir, stackName, node, tag);
  if (existsSync(cached)) {
    const real = realpathSync(cached);
    if (isInside(real, realpathSync(path.join(ctx.dataDir, 'websites')))) return real;
  }
  throw new VikingError('VIKING_E_NOT_FOUND', `host ${ctx.hostName} has no files of ${stackName}/${node} release ${tag}`);
}

export function registerWebsiteSource(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: Params }>(
    '/v1/source/:stack/:tag/website/:node',
    { schema: { params: { type: 'object', required: ['stack', 'tag', 'node'], properties: { stack: name, tag: name, node: name } } } },
    async (req, reply) => {
      const { stack: stackName, tag, node } = req.params;
      const stack = await readStack(ctx.client, stackName);
      const release = stack?.releases.find((r) => r.tag === tag);
      const documentRoot = release ? own(release.websites ?? stack?.websites, node) : undefined;
      if (!stack || !release || documentRoot === undefined) {
        throw new VikingError('VIKING_E_NOT_FOUND', `no website ${node} in the releases of ${stackName} that can go live (the current one and the rollback history)`);
      }
      const root = siteDirectory(ctx, stackName, node, tag, release.source, documentRoot, release.builtOn === ctx.hostName);
      const skip = await unshippableLinks(root);
      const out = new PassThrough();
      const tar = pack(root, {
        ignore: (file) => {
          const rel = path.relative(root, file).split(path.sep).join('/');
          return hiddenPath(rel) || skip.has(rel);
        },
      }) as unknown as Readable;
      tar.on('error', (err: Error) => out.destroy(err));
      tar.pipe(out);
      void reply.header('content-type', 'application/x-tar');
      return reply.send(out);
    },
  );
}
