/**
 * Source offsets to the 1-based line and column users and editors count in.
 *
 * js-yaml events carry offsets only; every position of a problem goes
 * through here. `\n`, `\r\n` and a lone `\r` all end a line, as in YAML.
 */
/** Offsets to 1-based line and column. */
export class LineIndex {
    starts = [0];
    constructor(text) {
        for (let i = 0; i < text.length; i++) {
            const c = text.charCodeAt(i);
            if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10))
                this.starts.push(i + 1);
        }
    }
    /** Offset where a 1-based line starts. */
    lineStart(line) {
        return this.starts[Math.max(0, Math.min(line - 1, this.starts.length - 1))] ?? 0;
    }
    pos(offset) {
        let lo = 0;
        let hi = this.starts.length - 1;
        while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if ((this.starts[mid] ?? 0) <= offset)
                lo = mid;
            else
                hi = mid - 1;
        }
        return { line: lo + 1, column: offset - (this.starts[lo] ?? 0) + 1 };
    }
}
//# sourceMappingURL=line-index.js.map