// Where the WAL archive lives in the object store, under the cluster's prefix:
//
//   <cluster>/wal/<TLI>.history                                 a timeline's history file (plain text)
//   <cluster>/wal/<TLI>/<SEGMENT>.full.<atMs>.br                a whole 16 MiB segment, brotli
//   <cluster>/wal/<TLI>/<SEGMENT>.p<start>-<end>.<atMs>.br      bytes [start, end) of a segment, brotli
//
// A part carries what the archiver received since its last upload (at most a
// few hundred ms of WAL), so WAL is in the store within a second of being
// written instead of when its segment fills; once the segment fills, the
// whole segment is uploaded and its parts are deleted. `atMs` is the newest
// instant at which the server's flushed WAL ended at or before the object's
// end (the send time of a stream message whose walEnd it covers): every
// commit made by then is in the object or before it. A restore to a time
// needs exactly that, from a listing alone (the store is all a disaster
// recovery has). Offsets are 8 hex digits, atMs 13 decimal digits, so keys sort by
// segment, then by kind and offset.

import { timelineHex, walFileName, WAL_SEGMENT_BYTES } from './segments.js';

export function walPrefix(clusterPrefix: string): string {
  return `${clusterPrefix}wal/`;
}

export function timelinePrefix(clusterPrefix: string, timeline: number): string {
  return `${walPrefix(clusterPrefix)}${timelineHex(timeline)}/`;
}

export function historyKey(clusterPrefix: string, timeline: number): string {
  return `${walPrefix(clusterPrefix)}${timelineHex(timeline)}.history`;
}

/** Every object of one segment starts with this (a listing of it finds the full copy and the parts). */
export function segmentKeyPrefix(clusterPrefix: string, timeline: number, segno: bigint): string {
  return `${timelinePrefix(clusterPrefix, timeline)}${walFileName(timeline, segno)}.`;
}

const at13 = (atMs: number) => {
  if (!Number.isSafeInteger(atMs) || atMs < 0) throw new RangeError(`atMs must be a non-negative integer, got ${atMs}`);
  return String(atMs).padStart(13, '0');
};
const off8 = (n: number) => n.toString(16).padStart(8, '0');

export function fullSegmentKey(clusterPrefix: string, timeline: number, segno: bigint, atMs: number): string {
  return `${segmentKeyPrefix(clusterPrefix, timeline, segno)}full.${at13(atMs)}.br`;
}

export function partKey(clusterPrefix: string, timeline: number, segno: bigint, startOffset: number, endOffset: number, atMs: number): string {
  if (!(Number.isInteger(startOffset) && Number.isInteger(endOffset) && 0 <= startOffset && startOffset < endOffset && endOffset <= WAL_SEGMENT_BYTES)) {
    throw new RangeError(`a part covers 0 <= start < end <= ${WAL_SEGMENT_BYTES}, got [${startOffset}, ${endOffset})`);
  }
  return `${segmentKeyPrefix(clusterPrefix, timeline, segno)}p${off8(startOffset)}-${off8(endOffset)}.${at13(atMs)}.br`;
}

export type WalObject =
  | { kind: 'history'; key: string; timeline: number; bytes: number }
  | { kind: 'full'; key: string; timeline: number; segment: string; atMs: number; bytes: number }
  | { kind: 'part'; key: string; timeline: number; segment: string; startOffset: number; endOffset: number; atMs: number; bytes: number };

const HISTORY_KEY_RE = /^([0-9A-F]{8})\.history$/;
const SEGMENT_KEY_RE = /^([0-9A-F]{8})\/(([0-9A-F]{8})[0-9A-F]{16})\.(?:full|p([0-9a-f]{8})-([0-9a-f]{8}))\.(\d{13})\.br$/;

/** What a key under walPrefix() names, or null for a key this layout does not write. */
export function parseWalKey(clusterPrefix: string, key: string, bytes: number): WalObject | null {
  const base = walPrefix(clusterPrefix);
  if (!key.startsWith(base)) return null;
  const rest = key.slice(base.length);
  const h = HISTORY_KEY_RE.exec(rest);
  if (h) return { kind: 'history', key, timeline: Number.parseInt(h[1]!, 16), bytes };
  const m = SEGMENT_KEY_RE.exec(rest);
  if (!m || m[1] !== m[3]) return null;
  const timeline = Number.parseInt(m[1]!, 16);
  const atMs = Number(m[6]);
  if (m[4] === undefined) return { kind: 'full', key, timeline, segment: m[2]!, atMs, bytes };
  const startOffset = Number.parseInt(m[4], 16);
  const endOffset = Number.parseInt(m[5]!, 16);
  if (!(startOffset < endOffset && endOffset <= WAL_SEGMENT_BYTES)) return null;
  return { kind: 'part', key, timeline, segment: m[2]!, startOffset, endOffset, atMs, bytes };
}
