export const notDraining = (_job, host) => (host.draining ? 'draining' : null);
export const pinned = (job, host) => job.pinnedTo !== undefined && job.pinnedTo !== host.name ? `volume pinned to host ${job.pinnedTo}` : null;
export const hasTags = (job, host) => {
    for (const tag of job.tags)
        if (!host.tags.has(tag))
            return `missing tag ${tag}`;
    return null;
};
export const containerRoom = (_job, host) => host.capacity.containers > 0 && host.used.containers + 1 > host.capacity.containers ? 'no container slots left' : null;
export const memoryRoom = (job, host) => job.memory > 0 && host.capacity.memory > 0 && host.used.memory + job.memory > host.capacity.memory ? 'not enough memory' : null;
export const cpuRoom = (job, host) => job.cpu > 0 && host.capacity.cpu > 0 && host.used.cpu + job.cpu > host.capacity.cpu + 1e-9 ? 'not enough cpu' : null;
/** In order: the first failing filter is the reason reported for that host. */
export const FILTERS = [notDraining, pinned, hasTags, containerRoom, memoryRoom, cpuRoom];
//# sourceMappingURL=filters.js.map