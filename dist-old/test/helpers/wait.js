/**
 * Awaiting a condition instead of sleeping: polls `check` until it returns
 * something truthy, or fails with `what` and the last value seen.
 */
export async function waitFor(what, check, timeoutMs = 20_000, everyMs = 50) {
    const deadline = Date.now() + timeoutMs;
    let last;
    let lastError;
    for (;;) {
        try {
            last = await check();
            if (last)
                return last;
        }
        catch (err) {
            lastError = err;
        }
        if (Date.now() > deadline) {
            const detail = lastError ? ` (last error: ${lastError.message})` : ` (last value: ${JSON.stringify(last)})`;
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
        }
        await new Promise((r) => setTimeout(r, everyMs));
    }
}
export const uniqueName = (prefix) => `${prefix}-${Date.now().toString(36).slice(-4)}${Math.random().toString(36).slice(2, 6)}`;
//# sourceMappingURL=wait.js.map