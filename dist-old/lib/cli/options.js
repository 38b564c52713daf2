export function withApi(a) {
    return a
        .option('api', { type: 'string', describe: 'API URL of any host (default: $VIKING_API, the config file, http://127.0.0.1:8791)' })
        .option('token', { type: 'string', describe: 'API token (default: $VIKING_TOKEN, then the config file)' });
}
export function withJson(a) {
    return withApi(a).option('json', { type: 'boolean', describe: 'print JSON instead of a table' });
}
//# sourceMappingURL=options.js.map