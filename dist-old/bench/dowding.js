/**
 * bench/dowding: placements per second of the pure planner.
 *
 *   node dist/bench/dowding.js [--jobs 10000] [--hosts 1000] [--runs 5]
 *
 * A synthetic but realistic cluster: hosts with memory/cpu/container
 * capacity, a third tagged `ssd`; stacks of nodes with 1-5 replicas, memory
 * and cpu requests, some requiring or preferring `ssd`. Prints one table:
 * scenario, jobs, hosts, median time, placements per second, and checks the
 * plan (no host over capacity, replicas spread) so a fast wrong planner
 * cannot pass.
 */
import { placeJobs } from '../lib/dowding/plan.js';
import { formatTable } from '../lib/cli/output.js';
function arg(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
/** Small deterministic PRNG so every run plans the same cluster. */
function rng(seed) {
    let s = seed >>> 0;
    return () => {
        s = (s * 1664525 + 1013904223) >>> 0;
        return s / 2 ** 32;
    };
}
const GiB = 1024 ** 3;
function makeHosts(n, existingPerHost) {
    const r = rng(7);
    return Array.from({ length: n }, (_, i) => ({
        name: `host-${String(i).padStart(4, '0')}`,
        tags: i % 3 === 0 ? ['ssd'] : [],
        capacity: { memory: (16 + Math.floor(r() * 3) * 16) * GiB, cpu: 8 + Math.floor(r() * 3) * 8, containers: 100 },
        draining: i % 97 === 0,
        jobs: Array.from({ length: existingPerHost }, (_, k) => ({
            id: `old/v1/n${k}/${i}`, stack: 'old', node: `n${k}`, memory: 256 * 1024 ** 2, cpu: 0.1, tags: [], prefer: [],
        })),
    }));
}
function makeJobs(n) {
    const r = rng(11);
    const jobs = [];
    let stack = 0;
    while (jobs.length < n) {
        const nodes = 1 + Math.floor(r() * 4);
        for (let node = 0; node < nodes && jobs.length < n; node++) {
            const scale = 1 + Math.floor(r() * 5);
            const kind = r();
            for (let inst = 1; inst <= scale && jobs.length < n; inst++) {
                jobs.push({
                    id: `s${stack}/v1/n${node}/${inst}`,
                    stack: `s${stack}`,
                    node: `n${node}`,
                    memory: (128 + Math.floor(r() * 8) * 128) * 1024 ** 2,
                    cpu: Math.round(r() * 10) / 10,
                    tags: kind < 0.05 ? ['ssd'] : [],
                    prefer: kind > 0.9 ? ['ssd'] : [],
                });
            }
        }
        stack++;
    }
    return jobs;
}
/** Fails loudly if the plan breaks an invariant. */
function check(hosts, jobs, plan) {
    if (plan.placements.length + plan.unplaced.length !== jobs.length)
        throw new Error('a job was lost');
    const byName = new Map(hosts.map((h) => [h.name, { h, mem: h.jobs.reduce((s, j) => s + j.memory, 0), cpu: h.jobs.reduce((s, j) => s + j.cpu, 0), n: h.jobs.length }]));
    const perNode = new Map();
    for (const p of plan.placements) {
        const u = byName.get(p.host);
        u.mem += p.job.memory;
        u.cpu += p.job.cpu;
        u.n += 1;
        if (u.mem > u.h.capacity.memory || u.cpu > u.h.capacity.cpu + 1e-9 || u.n > u.h.capacity.containers)
            throw new Error(`${p.host} over capacity`);
        if (u.h.draining)
            throw new Error(`placed on draining ${p.host}`);
        const k = `${p.job.stack}/${p.job.node}`;
        const m = perNode.get(k) ?? new Map();
        m.set(p.host, (m.get(p.host) ?? 0) + 1);
        perNode.set(k, m);
    }
    for (const [node, m] of perNode)
        for (const [host, n] of m)
            if (n > 1)
                throw new Error(`${node}: ${n} replicas on ${host} although hosts were free`);
}
function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}
const jobsN = arg('jobs', 10_000);
const hostsN = arg('hosts', 1_000);
const runs = arg('runs', 5);
const rows = [];
for (const [label, existing] of [['empty cluster', 0], ['20 jobs already per host', 20]]) {
    const hosts = makeHosts(hostsN, existing);
    const jobs = makeJobs(jobsN);
    const times = [];
    let plan;
    for (let i = 0; i < runs + 1; i++) {
        const t0 = process.hrtime.bigint();
        plan = placeJobs({ hosts }, jobs);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (i > 0)
            times.push(ms); // first run warms the JIT
    }
    check(hosts, jobs, plan);
    const ms = median(times);
    rows.push([label, jobs.length, hosts.length, plan.placements.length, ms.toFixed(1), Math.round((plan.placements.length / ms) * 1000).toLocaleString('en-US')]);
}
process.stdout.write(`dowding: median of ${runs} runs, node ${process.version}\n`);
process.stdout.write(`${formatTable(['SCENARIO', 'JOBS', 'HOSTS', 'PLACED', 'MS', 'PLACEMENTS/S'], rows)}\n`);
//# sourceMappingURL=dowding.js.map