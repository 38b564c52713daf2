export function diffDispatch(snap) {
    const diff = { toPlace: [], toRemove: [], toMove: [], waiting: [] };
    for (const [path, placed] of snap.placed) {
        const wanted = snap.wanted.get(path);
        if (!wanted) {
            diff.toRemove.push(placed);
            continue;
        }
        const host = snap.hosts.get(placed.host);
        if (host && !host.draining)
            continue;
        // Volume jobs stay with their data: on a draining host they stay, on a dead one they
        // wait, unless the operator removed the pin (viking hosts rm) to let them go.
        if (wanted.spec.volumes.length > 0) {
            const pinnedHere = snap.pins.get(`${wanted.spec.stack}/${wanted.spec.node}`) === placed.host;
            if (host)
                continue;
            if (pinnedHere) {
                diff.waiting.push(placed);
                continue;
            }
        }
        diff.toMove.push(placed);
        diff.toPlace.push(wanted.spec);
    }
    for (const [path, wanted] of snap.wanted)
        if (!snap.placed.has(path))
            diff.toPlace.push(wanted.spec);
    return diff;
}
//# sourceMappingURL=reconcile.js.map