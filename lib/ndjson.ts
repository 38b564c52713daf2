/**
 * Newline-delimited JSON over HTTP: viking streams progress (push, rollout)
 * and logs this way, and both the CLI and the API (reading a peer host's
 * logs) consume it. Splits the body into lines as bytes arrive.
 */

/** Calls `onLine` with each non-empty line of the response body, as it arrives. */
export async function readLines(res: Response, onLine: (text: string) => void): Promise<void> {
  for await (const text of linesOf(res)) onLine(text);
}

/**
 * The non-empty lines of a response body, read only as fast as they are
 * taken (so a slow consumer slows the sender, and memory stays at a chunk).
 */
export async function* linesOf(res: Response): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const text of parts) if (text.trim()) yield text;
  }
  buffered += decoder.decode();
  if (buffered.trim()) yield buffered;
}
