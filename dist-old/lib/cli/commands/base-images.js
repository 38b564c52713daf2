import { handled } from '../output.js';
export function baseImagesCommand(y) {
    return y.command('base-images', 'make the base images viking/busybox and viking/node from this machine\'s binaries', (a) => a.option('force', { type: 'boolean', default: false, describe: 'rebuild even if they exist' }), handled(async (args) => {
        const [{ connectDocker }, { ensureBaseImages }] = await Promise.all([import('../../docker/client.js'), import('../../docker/base-images.js')]);
        for (const r of await ensureBaseImages(connectDocker(), args.force ?? false)) {
            process.stdout.write(`${r.image}: ${r.created ? 'created' : 'already there'}\n`);
        }
    }));
}
//# sourceMappingURL=base-images.js.map