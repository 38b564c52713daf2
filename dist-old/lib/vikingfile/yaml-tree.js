/**
 * YAML text to a small tree that remembers where every key and value is.
 *
 * `load()` of js-yaml returns plain objects, which forget positions, and the
 * point of the Vikingfile checks is to say "line 12, column 5". js-yaml 5
 * exposes its parser as a flat event stream whose events carry source
 * offsets, so we build our own tree from it: maps keep their keys in file
 * order with their positions, scalars keep both their resolved value (core
 * schema: `true` is a boolean, `80` an integer, `yes` a string) and the text
 * as written.
 *
 * Aliases and `<<` merge keys are supported because the tree makes them
 * cheap: an alias is the very node its anchor names (no copying, so alias
 * bombs cost nothing), and a merge copies entries that keep the position of
 * their definition, so a problem in a merged value points where it is written.
 * Duplicate keys, unknown tags and multiple documents are reported as
 * `syntax` problems, like `load()` would refuse them.
 */
import { EVENT_ID, SCALAR_STYLE, YAMLException, getScalarValue, parseEvents } from 'js-yaml';
import { show } from './describe.js';
import { LineIndex } from './line-index.js';
import { resolveScalar, standardTag } from './yaml-scalar.js';
/**
 * How many values the document may hold once aliases are expanded. Checks
 * walk an alias once per use, so `*big` used many times would cost
 * (uses x size); a real Vikingfile holds a few hundred values.
 */
export const MAX_EXPANDED_VALUES = 100_000;
/** Header of a block scalar: `|` or `>`, optional indicators, optional comment. */
const BLOCK_HEADER = /[|>][1-9+-]{0,2}[ \t]*(?:#.*)?$/;
/** Builds the positioned tree of the single document of `text`; problems go to `problems`. */
class TreeBuilder {
    text;
    problems;
    index;
    anchors = new Map();
    stack = [];
    documents = [];
    /** Values under each collection, aliases counted at each use (see MAX_EXPANDED_VALUES). */
    sizes = new WeakMap();
    /** Where the first alias is: where an alias bomb is reported. */
    firstAlias = null;
    /** Position of the latest located event: where an empty value is reported. */
    last = { line: 1, column: 1 };
    constructor(text, problems) {
        this.text = text;
        this.problems = problems;
        this.index = new LineIndex(text);
    }
    run(events) {
        for (const ev of events) {
            switch (ev.type) {
                case EVENT_ID.DOCUMENT:
                    this.stack.push({ kind: 'doc', root: null });
                    break;
                case EVENT_ID.MAPPING:
                case EVENT_ID.SEQUENCE: {
                    const at = this.index.pos(ev.start);
                    this.last = at;
                    const anchor = ev.anchorStart >= 0 ? this.text.slice(ev.anchorStart, ev.anchorEnd) : null;
                    if (ev.tagStart >= 0)
                        this.checkCollectionTag(ev.tagStart, ev.tagEnd, ev.type === EVENT_ID.MAPPING ? 'map' : 'seq');
                    if (ev.type === EVENT_ID.MAPPING) {
                        const node = { kind: 'map', entries: [], ...at };
                        this.stack.push({ kind: 'map', node, anchor, key: null, seen: new Map(), merges: [] });
                    }
                    else {
                        this.stack.push({ kind: 'seq', node: { kind: 'seq', items: [], ...at }, anchor });
                    }
                    break;
                }
                case EVENT_ID.SCALAR:
                    this.attach(this.scalar(ev));
                    break;
                case EVENT_ID.ALIAS: {
                    const name = this.text.slice(ev.anchorStart, ev.anchorEnd);
                    const at = this.index.pos(Math.max(0, ev.anchorStart - 1));
                    this.last = at;
                    this.firstAlias ??= at;
                    const target = this.anchors.get(name);
                    if (target === undefined) {
                        this.problems.add('syntax', at, `alias '*${show(name)}' names no anchor defined before it; define '&${show(name)}' first`);
                        this.attach({ kind: 'scalar', value: null, text: '', plain: true, ...at });
                    }
                    else {
                        this.attach(target);
                    }
                    break;
                }
                case EVENT_ID.POP:
                    this.pop();
                    break;
            }
        }
    }
    pop() {
        const frame = this.stack.pop();
        if (frame === undefined)
            return;
        if (frame.kind === 'doc') {
            this.documents.push(frame.root);
            return;
        }
        if (frame.kind === 'map')
            this.applyMerges(frame.node, frame.merges);
        const children = frame.kind === 'map' ? frame.node.entries.map((e) => e.value) : frame.node.items;
        this.sizes.set(frame.node, children.reduce((sum, child) => Math.min(sum + this.sizeOf(child) + 1, Number.MAX_SAFE_INTEGER), 1));
        if (frame.anchor !== null)
            this.anchors.set(frame.anchor, frame.node);
        this.attach(frame.node);
    }
    /** 1 for a scalar, else the count kept in `sizes`. */
    sizeOf(node) {
        return this.sizes.get(node) ?? 1;
    }
    attach(node) {
        const frame = this.stack[this.stack.length - 1];
        if (frame === undefined)
            return;
        if (frame.kind === 'doc')
            frame.root = node;
        else if (frame.kind === 'seq')
            frame.node.items.push(node);
        else if (frame.key === null)
            frame.key = node;
        else {
            this.addPair(frame, frame.key, node);
            frame.key = null;
        }
    }
    addPair(frame, keyNode, value) {
        if (keyNode.kind !== 'scalar') {
            this.problems.add('syntax', keyNode, 'a key must be a plain name, not a list or a mapping');
            return;
        }
        const keyPos = { line: keyNode.line, column: keyNode.column };
        if (keyNode.text === '<<' && keyNode.plain) {
            const sources = value.kind === 'seq' ? value.items : [value];
            const maps = [];
            for (const s of sources) {
                if (s.kind === 'map')
                    maps.push(s);
                else
                    this.problems.add('syntax', s, 'a merge key (<<) takes a mapping or a list of mappings, e.g. <<: *defaults');
            }
            frame.merges.push({ at: frame.node.entries.length, sources: maps });
            return;
        }
        const first = frame.seen.get(keyNode.text);
        if (first !== undefined) {
            this.problems.add('syntax', keyPos, `duplicate key '${show(keyNode.text)}' (first at line ${first.line}); YAML keeps only one, remove or rename one of them`);
            return;
        }
        frame.seen.set(keyNode.text, keyPos);
        frame.node.entries.push({ key: keyNode.text, keyPos, value });
    }
    /** `<<` entries: keys written in the map win, then earlier merge sources win; merged keys sit where `<<` was. */
    applyMerges(node, merges) {
        if (merges.length === 0)
            return;
        const present = new Set(node.entries.map((e) => e.key));
        const result = [];
        let next = 0;
        for (const merge of merges) {
            while (next < merge.at)
                result.push(node.entries[next++]);
            for (const source of merge.sources) {
                for (const entry of source.entries) {
                    if (present.has(entry.key))
                        continue;
                    present.add(entry.key);
                    result.push(entry);
                }
            }
        }
        while (next < node.entries.length)
            result.push(node.entries[next++]);
        node.entries = result;
    }
    scalar(ev) {
        const text = getScalarValue(this.text, ev);
        const tag = ev.tagStart >= 0 ? this.text.slice(ev.tagStart, ev.tagEnd) : null;
        const isBlock = ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK;
        let at;
        let block;
        if (ev.valueStart < 0) {
            at = this.last;
        }
        else if (isBlock) {
            const content = this.index.pos(ev.valueStart);
            at = this.blockHeader(content.line - 1) ?? content;
            if (ev.style === SCALAR_STYLE.LITERAL_BLOCK)
                block = { line: content.line, indent: Math.max(0, ev.indent) };
        }
        else {
            const quoted = ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED;
            at = this.index.pos(quoted ? Math.max(0, ev.valueStart - 1) : ev.valueStart);
        }
        this.last = at;
        const node = {
            kind: 'scalar',
            value: this.resolve(text, ev.style === SCALAR_STYLE.PLAIN, tag, tag === null ? at : this.index.pos(ev.tagStart)),
            text,
            plain: ev.style === SCALAR_STYLE.PLAIN && tag === null,
            ...at,
        };
        if (block !== undefined)
            node.block = block;
        if (ev.anchorStart >= 0)
            this.anchors.set(this.text.slice(ev.anchorStart, ev.anchorEnd), node);
        return node;
    }
    /** Where the `|` or `>` of a block scalar is, on the line before its content. */
    blockHeader(line) {
        if (line < 1)
            return null;
        const start = this.index.lineStart(line);
        const end = this.index.lineStart(line + 1);
        const header = this.text.slice(start, end === start ? undefined : end).replace(/\r?\n$|\r$/, '');
        const m = BLOCK_HEADER.exec(header);
        return m ? { line, column: m.index + 1 } : null;
    }
    /** The typed value of a scalar; a tag it cannot be read with is a problem reported `at` the tag. */
    resolve(text, plain, tag, at) {
        const resolved = resolveScalar(text, plain, tag);
        if (resolved.ok)
            return resolved.value;
        this.problems.add('syntax', at, resolved.message);
        return text;
    }
    checkCollectionTag(start, end, kind) {
        const tag = this.text.slice(start, end);
        if (tag === '!' || standardTag(tag) === kind)
            return;
        this.problems.add('syntax', this.index.pos(start), `unsupported YAML tag '${show(tag)}'; remove it (a Vikingfile only uses plain mappings and lists)`);
    }
}
/** Parses `text`; YAML errors become `syntax` problems, never exceptions. */
export function readYamlTree(text, problems) {
    let events;
    try {
        events = parseEvents(text, {});
    }
    catch (err) {
        if (err instanceof YAMLException && err.mark !== undefined) {
            problems.add('syntax', { line: err.mark.line + 1, column: err.mark.column + 1 }, `YAML syntax error: ${show(err.reason, 200)}`);
        }
        else {
            const message = err instanceof Error ? err.message : String(err);
            problems.add('syntax', { line: 1, column: 1 }, `YAML could not be read: ${show(message, 200)}`);
        }
        return { root: null, parsed: false };
    }
    const builder = new TreeBuilder(text, problems);
    builder.run(events);
    const [first, second] = builder.documents;
    if (first != null && builder.sizeOf(first) > MAX_EXPANDED_VALUES) {
        problems.add('syntax', builder.firstAlias ?? first, `the aliases (*name) of this file expand to more than ${MAX_EXPANDED_VALUES} values; write the Vikingfile without repeating large anchors`);
        return { root: null, parsed: false };
    }
    if (builder.documents.length > 1) {
        const at = second ?? { line: 1, column: 1 };
        problems.add('syntax', at, 'a Vikingfile holds a single YAML document; remove the second one (after ---)');
    }
    return { root: first ?? null, parsed: true };
}
//# sourceMappingURL=yaml-tree.js.map