// WAL segment arithmetic: an LSN's segment number, a segment's file name and
// back. ogel runs Postgres with the default 16 MiB segments (initdb's
// --wal-segsize is never passed), and every archived object is named by its
// segment, so the size is a constant here; the archiver checks the server's
// wal_segment_size before streaming and refuses another.

export const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;
const SEGMENT_BITS = 24n;
/** Segments per 4 GiB "log" (XLogSegmentsPerXLogId): the middle 8 hex digits of a name count these. */
const SEGMENTS_PER_LOG = 0x1_0000_0000 / WAL_SEGMENT_BYTES;

export const WAL_FILE_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
export const HISTORY_FILE_RE = /^([0-9A-F]{8})\.history$/;

export function segmentOf(lsn: bigint): bigint {
  return lsn >> SEGMENT_BITS;
}

export function segmentStart(segno: bigint): bigint {
  return segno << SEGMENT_BITS;
}

/** Byte offset of `lsn` inside its segment. */
export function segmentOffset(lsn: bigint): number {
  return Number(lsn & ((1n << SEGMENT_BITS) - 1n));
}

const hex8 = (n: number | bigint) => n.toString(16).toUpperCase().padStart(8, '0');

/** The file name Postgres gives segment `segno` of `timeline` (XLogFileName). */
export function walFileName(timeline: number, segno: bigint): string {
  const perLog = BigInt(SEGMENTS_PER_LOG);
  return `${hex8(timeline)}${hex8(segno / perLog)}${hex8(segno % perLog)}`;
}

export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

/** { timeline, segno } of a segment file name, or null for anything else. */
export function parseWalFileName(name: string): { timeline: number; segno: bigint } | null {
  const m = WAL_FILE_RE.exec(name);
  if (!m) return null;
  const low = Number.parseInt(m[3]!, 16);
  if (low >= SEGMENTS_PER_LOG) return null;
  return { timeline: Number.parseInt(m[1]!, 16), segno: BigInt(Number.parseInt(m[2]!, 16)) * BigInt(SEGMENTS_PER_LOG) + BigInt(low) };
}

export function timelineHex(timeline: number): string {
  return hex8(timeline);
}

/**
 * A timeline history file: one line per earlier timeline, "<tli>\t<switch LSN>\t<reason>"
 * (writeTimeLineHistory). Returns, oldest first, where each ancestor ended.
 */
export function parseHistory(content: string): { timeline: number; switchLsn: bigint }[] {
  const out: { timeline: number; switchLsn: bigint }[] = [];
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)/.exec(line);
    if (!m) throw new Error(`timeline history line ${JSON.stringify(line)} is not "<timeline> <hi>/<lo> <reason>"`);
    out.push({ timeline: Number(m[1]), switchLsn: (BigInt(`0x${m[2]}`) << 32n) | BigInt(`0x${m[3]}`) });
  }
  return out;
}
