import { VikingError } from '../errors.js';
import { readJSON, readPrefix } from '../store/client.js';
import { deployKey, jobPath, portsNodePrefix, runKey } from '../store/keys.js';
export async function waitForJobs(client, jobs, o) {
    const deadline = Date.now() + o.timeoutMs;
    const seen = new Map();
    const report = (job, what) => {
        const path = jobPath(job);
        if (seen.get(path) === what)
            return;
        seen.set(path, what);
        o.onChange?.(job, what);
    };
    for (;;) {
        let running = 0;
        const waiting = [];
        for (const job of jobs) {
            const host = await client.get(runKey(job)).string();
            if (!host) {
                report(job, 'waiting for a host');
                waiting.push(`${job.node}/${job.instance}: no host yet`);
                continue;
            }
            const state = await readJSON(client, deployKey(host, job));
            if (!state) {
                report(job, `placed on ${host}`);
                waiting.push(`${job.node}/${job.instance}: placed on ${host}, not started`);
                continue;
            }
            if (state.state === 'running') {
                report(job, `running on ${host}`);
                running++;
                continue;
            }
            if (state.state === 'failed' || state.state === 'backoff') {
                report(job, `${state.state} on ${host}: ${state.reason ?? ''}`);
                throw new VikingError('VIKING_E_UNHEALTHY', `${job.node}/${job.instance} on ${host}: ${state.reason ?? 'failed'}`, { job: jobPath(job), host, reason: state.reason, logs: state.logs ?? [] });
            }
            report(job, `${state.state} on ${host}`);
            waiting.push(`${job.node}/${job.instance}: ${state.state} on ${host}`);
        }
        if (running === jobs.length)
            return;
        if (Date.now() > deadline) {
            throw new VikingError('VIKING_E_DEPLOY_TIMEOUT', `the release was not healthy after ${Math.round(o.timeoutMs / 1000)}s: ${waiting.slice(0, 5).join('; ')}`, { waiting });
        }
        await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
    }
}
/**
 * Waiting for withdrawn jobs to be gone: no endpoint left in /ports (the
 * routers stopped sending to them) and no /run entry (dispatch released them,
 * so their slave stops the container).
 */
export async function waitForJobsGone(client, jobs, o) {
    const deadline = Date.now() + o.timeoutMs;
    const pending = new Map(jobs.map((j) => [jobPath(j), j]));
    for (;;) {
        for (const [path, job] of [...pending]) {
            const placed = await client.get(runKey(job)).exists();
            const ports = await readPrefix(client, portsNodePrefix(job.stack, job.node));
            const serving = ports.entries.some((e) => e.value && e.value.tag === job.tag && e.value.instance === job.instance);
            if (!placed && !serving) {
                pending.delete(path);
                o.onGone?.(job);
            }
        }
        if (pending.size === 0)
            return;
        if (Date.now() > deadline) {
            throw new VikingError('VIKING_E_DEPLOY_TIMEOUT', `${[...pending.keys()].join(', ')} still placed or serving after ${Math.round(o.timeoutMs / 1000)}s; they are being stopped`, { waiting: [...pending.keys()] });
        }
        await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
    }
}
//# sourceMappingURL=wait.js.map