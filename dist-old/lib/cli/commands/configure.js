import { ApiClient } from '../api-client.js';
import { configPath, maskToken, normaliseApi, resolveTarget, writeConfig } from '../config.js';
import { handled, printJson } from '../output.js';
export function configureCommand(y) {
    return y.command('configure', 'save the API URL and token this CLI uses (~/.config/viking/config.json); no options: show them', (a) => a
        .option('api', { type: 'string', describe: 'API URL of any host, e.g. http://10.0.0.1:8791' })
        .option('token', { type: 'string', describe: 'API token (from viking up, bootstrap.sh or viking token create)' })
        .option('check', { type: 'boolean', default: true, describe: 'try the API and token before saving (--no-check to skip)' })
        .option('json', { type: 'boolean', describe: 'print JSON' })
        .example('$0 configure --api http://10.0.0.1:8791 --token vkt_...', 'use that cluster from now on'), handled(async (args) => {
        const file = configPath();
        if (args.api === undefined && args.token === undefined) {
            const t = await resolveTarget({});
            const shown = { config: file, api: t.api, apiFrom: t.from.api, token: maskToken(t.token), tokenFrom: t.from.token };
            if (args.json)
                return printJson(shown);
            process.stdout.write(`config file  ${file}\napi          ${t.api}  (from ${t.from.api})\ntoken        ${shown.token}  (from ${t.from.token})\n`);
            return;
        }
        const patch = { ...(args.api !== undefined ? { api: normaliseApi(args.api) } : {}), ...(args.token !== undefined ? { token: args.token.trim() } : {}) };
        let who;
        if (args.check) {
            const target = await resolveTarget(patch);
            who = await new ApiClient(target).get('/v1/whoami');
        }
        const saved = await writeConfig(patch, file);
        if (args.json)
            return printJson({ config: file, api: saved.api, token: maskToken(saved.token), name: who?.name ?? null });
        process.stdout.write(`saved ${file}\n  api    ${saved.api ?? '(default)'}\n  token  ${maskToken(saved.token)}${who ? `  (token '${who.name}', answered by host ${who.host})` : ''}\n`);
    }));
}
//# sourceMappingURL=configure.js.map