/**
 * Newline-delimited JSON over HTTP: viking streams progress (push, rollout)
 * and logs this way, and both the CLI and the API (reading a peer host's
 * logs) consume it. Splits the body into lines as bytes arrive.
 */
/** Calls `onLine` with each non-empty line of the response body, as it arrives. */
export async function readLines(res, onLine) {
    if (!res.body)
        return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body) {
        buffered += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buffered.indexOf('\n')) !== -1) {
            const text = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (text.trim())
                onLine(text);
        }
    }
    if (buffered.trim())
        onLine(buffered);
}
//# sourceMappingURL=ndjson.js.map