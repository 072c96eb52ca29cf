// What the WAL archive holds, read from a listing of the store alone (a
// disaster recovery has nothing else): per timeline, which bytes of which
// segments are there and when they arrived, and which history files.

import type { ObjectStore } from '../object-store/index.js';
import { parseWalKey, walPrefix, type WalObject } from './layout.js';
import { parseWalFileName, segmentStart, WAL_SEGMENT_BYTES } from './segments.js';

export type FullObject = Extract<WalObject, { kind: 'full' }>;
export type PartObject = Extract<WalObject, { kind: 'part' }>;

export interface SegmentObjects {
  readonly timeline: number;
  readonly segno: bigint;
  readonly name: string;
  /** The newest whole copy, if any. */
  full: FullObject | null;
  /** Sorted by start offset, then by end offset descending. */
  parts: PartObject[];
}

export interface WalCatalog {
  /** timeline -> segno -> objects. */
  readonly timelines: Map<number, Map<bigint, SegmentObjects>>;
  /** timeline -> key of its history file. */
  readonly histories: Map<number, string>;
  /** Keys under wal/ this layout does not write (reported, never used or deleted). */
  readonly unrecognized: string[];
}

export async function readCatalog(store: ObjectStore, clusterPrefix: string): Promise<WalCatalog> {
  const cat: WalCatalog = { timelines: new Map(), histories: new Map(), unrecognized: [] };
  for await (const o of store.list(walPrefix(clusterPrefix))) addObject(cat, clusterPrefix, o.key, o.bytes);
  for (const segs of cat.timelines.values()) {
    for (const s of segs.values()) s.parts.sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  }
  return cat;
}

export function addObject(cat: WalCatalog, clusterPrefix: string, key: string, bytes: number): void {
  const o = parseWalKey(clusterPrefix, key, bytes);
  if (o === null) {
    cat.unrecognized.push(key);
    return;
  }
  if (o.kind === 'history') {
    cat.histories.set(o.timeline, o.key);
    return;
  }
  const parsed = parseWalFileName(o.segment);
  if (parsed === null) {
    cat.unrecognized.push(key);
    return;
  }
  let segs = cat.timelines.get(o.timeline);
  if (!segs) {
    segs = new Map();
    cat.timelines.set(o.timeline, segs);
  }
  let s = segs.get(parsed.segno);
  if (!s) {
    s = { timeline: o.timeline, segno: parsed.segno, name: o.segment, full: null, parts: [] };
    segs.set(parsed.segno, s);
  }
  if (o.kind === 'full') {
    if (s.full === null || o.atMs > s.full.atMs) s.full = o;
  } else {
    s.parts.push(o);
  }
}

/** A contiguous stretch of archived WAL: [startLsn, endLsn); every commit made at or before endAtMs on its timeline is in it or before it. */
export interface WalSpan {
  startLsn: bigint;
  endLsn: bigint;
  endAtMs: number;
}

/** The byte intervals (offsets in the segment) one segment's objects cover, merged, with the arrival time of each interval's end. */
export function segmentCoverage(s: SegmentObjects): { start: number; end: number; endAtMs: number }[] {
  const pieces: WalSpan[] = s.parts.map((p) => ({ startLsn: BigInt(p.startOffset), endLsn: BigInt(p.endOffset), endAtMs: p.atMs }));
  if (s.full) pieces.push({ startLsn: 0n, endLsn: BigInt(WAL_SEGMENT_BYTES), endAtMs: s.full.atMs });
  pieces.sort((a, b) => (a.startLsn < b.startLsn ? -1 : a.startLsn > b.startLsn ? 1 : a.endLsn > b.endLsn ? -1 : 1));
  const out: WalSpan[] = [];
  for (const p of pieces) pushSpan(out, p);
  return out.map((c) => ({ start: Number(c.startLsn), end: Number(c.endLsn), endAtMs: c.endAtMs }));
}

/** Contiguous spans of one timeline's archived WAL, in LSN order. */
export function timelineSpans(cat: WalCatalog, timeline: number): WalSpan[] {
  const segs = [...(cat.timelines.get(timeline)?.values() ?? [])].sort((a, b) => (a.segno < b.segno ? -1 : 1));
  const out: WalSpan[] = [];
  for (const s of segs) {
    const base = segmentStart(s.segno);
    for (const c of segmentCoverage(s)) pushSpan(out, { startLsn: base + BigInt(c.start), endLsn: base + BigInt(c.end), endAtMs: c.endAtMs });
  }
  return out;
}

/** Appends `span`, merging it into the last one when they touch or overlap (input in start order). */
export function pushSpan(out: WalSpan[], span: WalSpan): void {
  const last = out[out.length - 1];
  if (last && span.startLsn <= last.endLsn) {
    // An object's instant speaks of its own end only (see atMs in layout.ts).
    if (span.endLsn > last.endLsn) {
      last.endLsn = span.endLsn;
      last.endAtMs = span.endAtMs;
    } else if (span.endLsn === last.endLsn) {
      last.endAtMs = Math.max(last.endAtMs, span.endAtMs);
    }
    return;
  }
  out.push({ ...span });
}
