import { VikingError } from '../errors.js';
import { stackLockKey } from '../store/keys.js';
const LOCK_TTL_SECONDS = 10;
/** Runs `fn` holding the stack's lock; VIKING_E_STACK_BUSY when someone else holds it. */
export async function withStackLock(client, stack, holder, fn) {
    const lease = client.lease(LOCK_TTL_SECONDS, { autoKeepAlive: true });
    // A lost lease only means the lock may be taken over; the rollout itself is still safe to finish.
    lease.on('lost', () => { });
    const key = stackLockKey(stack);
    const record = { stack, ...holder, since: new Date().toISOString() };
    try {
        const leaseId = await lease.grant();
        const res = await client
            .if(key, 'Version', '==', 0)
            .then(client.put(key).value(JSON.stringify(record)).lease(leaseId))
            .else(client.get(key))
            .commit();
        if (!res.succeeded) {
            const kv = res.responses[0]?.response_range?.kvs[0];
            const other = kv ? JSON.parse(kv.value.toString()) : undefined;
            throw new VikingError('VIKING_E_STACK_BUSY', other
                ? `${stack} is busy: ${other.what} by ${other.by} on ${other.host} since ${other.since}; try again when it is done`
                : `${stack} is busy with another change; try again when it is done`, other ? { lock: other } : undefined);
        }
        return await fn();
    }
    finally {
        // Revoking the lease deletes the lock key with it.
        await lease.revoke().catch(() => { });
    }
}
/** Who holds the stack right now, if anyone. */
export async function readStackLock(client, stack) {
    const text = await client.get(stackLockKey(stack)).string();
    return text ? JSON.parse(text) : undefined;
}
//# sourceMappingURL=lock.js.map