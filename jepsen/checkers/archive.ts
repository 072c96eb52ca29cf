// The WAL archive after the run (docs/pitr.md): once every fault is healed and
// the cluster has recovered, the archive in the object store must catch up,
// with no gap. Judged from a listing of the store alone, as a restore would
// read it (src/archive/catalog.ts, pitr-plan.ts): the contiguous archived
// spans along the path of the final primary's timeline (its ancestors up to
// their switch points, from the history files in the store).
//
//   archive-gap     WAL missing between two archived spans of the path, or
//                   between where the archive began when the run started and
//                   where it begins now (WAL that retention deletes on purpose,
//                   before the segment of the oldest backup's start, excepted).
//                   No nemesis of the matrix may cause one: the primary's slot
//                   keeps every byte the archive lacks, a standby's slot keeps
//                   what the index does not list, and a new primary resumes
//                   where the index ends.
//   archive-behind  the archive did not reach the final primary's
//                   pg_current_wal_flush_lsn() within the bound after the
//                   final heal (or cannot follow its timeline: no history file).
//
// The harness polls the store until this passes or the bound runs out
// (harness/archive-watch.ts) and hands the last observation to check().

import { formatLsn } from '../../fsm/index.js';
import type { WalCatalog, WalSpan } from '../../src/archive/catalog.js';
import { pathSpans, timelinePath, type PathEntry } from '../../src/archive/pitr-plan.js';
import type { Json } from '../history/types.js';
import type { Anomaly, CheckerResult } from './types.js';

export interface ArchiveObservation {
  /** Which store the run used, for messages ("fs", "s3 (s3rver) through the store link"). */
  store: string;
  catalog: WalCatalog;
  /** History file contents by timeline (those in the catalog). */
  histories: ReadonlyMap<number, string>;
  /** The final primary, its timeline and its pg_current_wal_flush_lsn(), read after the final heal and recovery. */
  node: string | null;
  timeline: number;
  flushLsn: bigint;
  /** Where the archive began when the workload started (the first archived span's start); null if nothing was archived yet. */
  startLsn: bigint | null;
  /** Retention deletes WAL before this on purpose (the segment of the oldest stored backup's start); null without a backup. */
  retentionFloorLsn: bigint | null;
  /** How long the harness waited for the archive to catch up, and its bound. */
  waitedMs: number;
  boundMs: number;
  /** The final primary's archiver as `ogel status` showed it (archive.live), for digging; not judged. */
  live?: Json;
}

export interface ArchiveStats {
  store: string;
  node: string | null;
  timeline: number;
  path: { timeline: number; beginLsn: string; endLsn: string | null }[];
  flushLsn: string;
  /** Archived spans along the path that count (past the expected start), in LSN order. */
  spans: { startLsn: string; endLsn: string }[];
  archivedToLsn: string | null;
  expectedStartLsn: string | null;
  caughtUp: boolean;
  waitedMs: number;
  boundMs: number;
  live: Json;
}

export interface ArchiveGapAnomaly {
  type: 'archive-gap';
  message: string;
  timeline: number;
  /** The missing WAL: archived up to fromLsn, then again from toLsn. */
  fromLsn: string;
  toLsn: string;
  bytes: number;
  /** The hole is at the start: the archive no longer begins where it began when the run started. */
  atStart: boolean;
}

export interface ArchiveBehindAnomaly {
  type: 'archive-behind';
  message: string;
  node: string | null;
  timeline: number;
  flushLsn: string;
  /** The end of the archived span that reaches furthest along the path; null when nothing is. */
  archivedToLsn: string | null;
  bytesBehind: number | null;
  waitedMs: number;
  boundMs: number;
}

const MAX_GAPS = 20;

function bigMax(a: bigint | null, b: bigint | null): bigint | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

/** The path's timeline that holds `lsn` (the newest one when at a switch point). */
function timelineAt(path: readonly PathEntry[], lsn: bigint): number {
  for (let i = path.length - 1; i >= 0; i--) if (path[i]!.beginLsn <= lsn) return path[i]!.timeline;
  return path[0]!.timeline;
}

function gap(path: readonly PathEntry[], from: bigint, to: bigint, atStart: boolean, store: string): ArchiveGapAnomaly {
  const where = atStart ? ' (at the start: the archive began there when the run started)' : '';
  return {
    type: 'archive-gap',
    message: `the WAL archive (${store}) has a gap: WAL from ${formatLsn(from)} to ${formatLsn(to)} (${to - from} bytes) on timeline ${timelineAt(path, from)} is not archived${where}`,
    timeline: timelineAt(path, from),
    fromLsn: formatLsn(from),
    toLsn: formatLsn(to),
    bytes: Number(to - from),
    atStart,
  };
}

function behind(o: ArchiveObservation, archivedTo: bigint | null, why: string): ArchiveBehindAnomaly {
  return {
    type: 'archive-behind',
    message: `the WAL archive (${o.store}) did not catch up within ${o.boundMs} ms of the recovery: ${why}`,
    node: o.node,
    timeline: o.timeline,
    flushLsn: formatLsn(o.flushLsn),
    archivedToLsn: archivedTo === null ? null : formatLsn(archivedTo),
    bytesBehind: archivedTo === null ? null : Number(o.flushLsn - archivedTo),
    waitedMs: Math.round(o.waitedMs),
    boundMs: o.boundMs,
  };
}

export function checkArchive(o: ArchiveObservation): CheckerResult<ArchiveStats> {
  const expectedStart = bigMax(o.startLsn, o.retentionFloorLsn);
  const stats: ArchiveStats = {
    store: o.store,
    node: o.node,
    timeline: o.timeline,
    path: [],
    flushLsn: formatLsn(o.flushLsn),
    spans: [],
    archivedToLsn: null,
    expectedStartLsn: expectedStart === null ? null : formatLsn(expectedStart),
    caughtUp: false,
    waitedMs: Math.round(o.waitedMs),
    boundMs: o.boundMs,
    live: o.live ?? null,
  };
  const path = timelinePath(o.timeline, o.histories);
  if (typeof path === 'string') {
    const why = `it cannot follow timeline ${o.timeline}, the final primary's (${o.node ?? 'unknown'}): ${path}`;
    return { valid: false, anomalies: [behind(o, null, why)], stats };
  }
  stats.path = path.map((e) => ({ timeline: e.timeline, beginLsn: formatLsn(e.beginLsn), endLsn: e.endLsn === null ? null : formatLsn(e.endLsn) }));
  const all = pathSpans(o.catalog, path);
  // Spans that end by the expected start are what retention has not deleted yet: they do not count.
  const lo = expectedStart ?? -1n;
  const dropped = all.filter((s) => s.endLsn <= lo);
  const spans: WalSpan[] = all.filter((s) => s.endLsn > lo);
  stats.spans = spans.map((s) => ({ startLsn: formatLsn(s.startLsn), endLsn: formatLsn(s.endLsn) }));
  const anomalies: Anomaly[] = [];
  const first = spans[0];
  if (first !== undefined && expectedStart !== null && first.startLsn > expectedStart) {
    const before = dropped[dropped.length - 1];
    anomalies.push(gap(path, before?.endLsn ?? expectedStart, first.startLsn, before === undefined, o.store));
  }
  for (let i = 1; i < spans.length && anomalies.length < MAX_GAPS; i++) anomalies.push(gap(path, spans[i - 1]!.endLsn, spans[i]!.startLsn, false, o.store));
  const last = spans[spans.length - 1];
  stats.archivedToLsn = last === undefined ? null : formatLsn(last.endLsn);
  if (last === undefined) {
    anomalies.push(
      behind(o, null, `nothing is archived along timeline ${o.timeline}'s path; the final primary (${o.node ?? 'unknown'}) is at ${formatLsn(o.flushLsn)}`),
    );
  } else if (last.endLsn < o.flushLsn) {
    anomalies.push(
      behind(
        o,
        last.endLsn,
        `archived to ${formatLsn(last.endLsn)}, ${o.flushLsn - last.endLsn} bytes short of the final primary's (${o.node ?? 'unknown'}) flush position ${formatLsn(o.flushLsn)} on timeline ${o.timeline}`,
      ),
    );
  } else {
    stats.caughtUp = true;
  }
  return { valid: anomalies.length === 0, anomalies, stats };
}
