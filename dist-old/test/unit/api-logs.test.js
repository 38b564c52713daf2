/**
 * Log plumbing without Docker: Docker's framed log bytes split into lines
 * however the chunks fall, and replicas' lines merged in time order even
 * though Docker's timestamps drop trailing zeros.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameSplitter } from '../../lib/api/container-logs.js';
import { LogMerger, timeKey } from '../../lib/api/logs-route.js';
function frame(stream, text) {
    const payload = Buffer.from(text, 'utf8');
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(payload.length, 4);
    return Buffer.concat([head, payload]);
}
test('frames become lines with their stream and timestamp', () => {
    const out = [];
    const s = new FrameSplitter((l) => out.push(l));
    s.push(frame(1, '2026-01-01T00:00:00.5Z hello\n2026-01-01T00:00:01Z second line\r\n'));
    s.push(frame(2, '2026-01-01T00:00:02.123456789Z oops\n'));
    assert.deepEqual(out, [
        { time: '2026-01-01T00:00:00.5Z', stream: 'stdout', line: 'hello' },
        { time: '2026-01-01T00:00:01Z', stream: 'stdout', line: 'second line' },
        { time: '2026-01-01T00:00:02.123456789Z', stream: 'stderr', line: 'oops' },
    ]);
});
test('a line split across frames, and a frame split across chunks, come out whole', () => {
    const out = [];
    const s = new FrameSplitter((l) => out.push(l));
    const bytes = Buffer.concat([frame(1, '2026-01-01T00:00:00Z par'), frame(1, 'tial ✓\n2026-01-01T00:00:01Z last')]);
    for (let i = 0; i < bytes.length; i += 3)
        s.push(bytes.subarray(i, i + 3));
    assert.deepEqual(out.map((l) => l.line), ['partial ✓']);
    s.end();
    assert.deepEqual(out.map((l) => l.line), ['partial ✓', 'last']);
});
test('any chunking of any framed text gives the same lines', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(1, 2), fc.array(fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).filter((t) => !t.includes('\n') && !t.includes('\r')), { minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }), (frames, cuts) => {
        const want = [];
        const bytes = Buffer.concat(frames.map(([stream, lines]) => {
            for (const l of lines)
                want.push(`${stream}:${l}`);
            return frame(stream, lines.map((l) => `${l}\n`).join(''));
        }));
        const got = [];
        const s = new FrameSplitter((l) => got.push(`${l.stream === 'stdout' ? 1 : 2}:${l.line}`), false);
        let i = 0;
        for (let k = 0; i < bytes.length; k++) {
            const n = cuts[k % cuts.length];
            s.push(bytes.subarray(i, i + n));
            i += n;
        }
        s.end();
        assert.deepEqual(got, want);
    }));
});
test('timeKey orders Docker timestamps whose fractions have different lengths', () => {
    const times = ['2026-01-01T00:00:00.12Z', '2026-01-01T00:00:00.1Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.123456789Z', '2026-01-01T00:00:01Z'];
    const sorted = [...times].sort((a, b) => (timeKey(a) < timeKey(b) ? -1 : 1));
    assert.deepEqual(sorted, ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.1Z', '2026-01-01T00:00:00.12Z', '2026-01-01T00:00:00.123456789Z', '2026-01-01T00:00:01Z']);
});
test('the merger sorts the backlog by time, then passes new lines straight through', () => {
    const out = [];
    const line = (replica, time, text) => ({ replica, host: 'h', tag: 'v1', instance: 1, time, stream: 'stdout', line: text });
    const m = new LogMerger((l) => out.push(`${l.replica} ${l.line}`));
    m.add(line('web.2', '2026-01-01T00:00:02Z', 'b'));
    m.add(line('web.1', '2026-01-01T00:00:01.5Z', 'a'));
    m.add(line('web.1', '2026-01-01T00:00:03Z', 'c'));
    assert.deepEqual(out, [], 'held until flushed');
    m.flush();
    assert.deepEqual(out, ['web.1 a', 'web.2 b', 'web.1 c']);
    m.add(line('web.2', '2026-01-01T00:00:00Z', 'late but live'));
    assert.deepEqual(out.at(-1), 'web.2 late but live');
});
//# sourceMappingURL=api-logs.test.js.map