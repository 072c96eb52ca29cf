// Plans a point-in-time restore from what the store holds (pure): which
// backup chain to restore, which timeline path to follow, which segments to
// fetch, and which recovery target to give Postgres; or a refusal that names
// the restorable windows, before any work is done.
//
// A backup B is usable for timeline path P when B was taken on P before P
// left B's timeline. From B, replay needs the archive to be contiguous from
// where B's own WAL ends (backup.json `wal`: BASE_BACKUP carried its WAL) up
// to the target. So each usable backup gives a window: from its end (LSN, and
// its finishedAtMs as an instant: every commit before its end LSN was made
// before then) to the end of the contiguous archive that follows it, and the
// instant every commit up to that end is known to be archived by (layout.ts).

import { formatLsn, parseLsn } from '../../fsm/index.js';
import type { BackupManifest } from '../backup/manifest.js';
import { orderChain } from '../backup/manifest.js';
import { pushSpan, timelineSpans, type WalCatalog, type WalSpan } from './catalog.js';
import { parseHistory, segmentOf, segmentOffset, walFileName } from './segments.js';

export type PitrTarget =
  | { kind: 'time'; atMs: number /** As Postgres takes it: 'YYYY-MM-DD HH:MM:SS.mmm+00'. */; pgText: string }
  | { kind: 'lsn'; lsn: bigint }
  | { kind: 'name'; name: string /** Where the restore point was made (recorded by `ogel restore-point create`). */; lsn: bigint; timeline: number }
  | { kind: 'latest' };

export interface PathEntry {
  timeline: number;
  /** Where the timeline begins on this path (0 for the first). */
  beginLsn: bigint;
  /** Where the path leaves it (its switch point), or null for the path's own timeline. */
  endLsn: bigint | null;
}

export interface RestoreWindow {
  backup: string;
  timeline: number;
  fromLsn: bigint;
  fromAtMs: number;
  toLsn: bigint;
  toAtMs: number;
}

export interface PlannedSegment {
  timeline: number;
  segno: bigint;
  name: string;
  /**
   * Set when the path leaves this segment's timeline inside it and the next
   * timeline's copy is not archived: the bytes from here on are zeroed. An old
   * primary may have archived WAL past the switch point that no standby had;
   * zeros read as the end of WAL, as Postgres's own .partial rename intends.
   */
  cutOffset?: number;
}

export interface PitrPlan {
  chain: BackupManifest[];
  timeline: number;
  path: PathEntry[];
  window: RestoreWindow;
  /** In replay order: what restore_command will be asked for. */
  segments: PlannedSegment[];
  /** History files to hand to Postgres (the path's timelines > 1). */
  histories: number[];
  target: PitrTarget;
}

export type PlanResult = { ok: true; plan: PitrPlan } | { ok: false; reason: string; windows: RestoreWindow[] };

export interface PlanInput {
  backups: readonly BackupManifest[];
  catalog: WalCatalog;
  /** History file contents by timeline (those in the catalog). */
  histories: ReadonlyMap<number, string>;
  target: PitrTarget;
  /** Follow this timeline (default: the newest the archive knows). */
  timeline?: number | undefined;
  nowMs: number;
}

export function newestTimeline(catalog: WalCatalog, backups: readonly BackupManifest[]): number {
  let t = 1;
  for (const k of catalog.timelines.keys()) t = Math.max(t, k);
  for (const k of catalog.histories.keys()) t = Math.max(t, k);
  for (const b of backups) t = Math.max(t, b.timeline);
  return t;
}

/** The path to `timeline`: its ancestors from its history file, each with where the path leaves it. */
export function timelinePath(timeline: number, histories: ReadonlyMap<number, string>): PathEntry[] | string {
  if (timeline === 1) return [{ timeline: 1, beginLsn: 0n, endLsn: null }];
  const content = histories.get(timeline);
  if (content === undefined) return `the history file of timeline ${timeline} is not in the archive`;
  const out: PathEntry[] = [];
  let begin = 0n;
  let entries: ReturnType<typeof parseHistory>;
  try {
    entries = parseHistory(content);
  } catch (e) {
    return `its history file is damaged: ${(e as Error).message}`;
  }
  for (const h of entries) {
    out.push({ timeline: h.timeline, beginLsn: begin, endLsn: h.switchLsn });
    begin = h.switchLsn;
  }
  out.push({ timeline, beginLsn: begin, endLsn: null });
  return out;
}

/** Contiguous archived WAL along the path, in LSN order. */
export function pathSpans(catalog: WalCatalog, path: readonly PathEntry[]): WalSpan[] {
  const pieces: WalSpan[] = [];
  for (const e of path) {
    for (const s of timelineSpans(catalog, e.timeline)) {
      const start = bigMax(s.startLsn, e.beginLsn);
      const end = e.endLsn !== null && s.endLsn > e.endLsn ? e.endLsn : s.endLsn;
      if (start < end) pieces.push({ startLsn: start, endLsn: end, endAtMs: s.endAtMs });
    }
  }
  pieces.sort((a, b) => (a.startLsn < b.startLsn ? -1 : a.startLsn > b.startLsn ? 1 : 0));
  const out: WalSpan[] = [];
  for (const p of pieces) pushSpan(out, p);
  return out;
}

function onPath(b: BackupManifest, path: readonly PathEntry[]): boolean {
  const start = parseLsn(b.startLsn)!;
  const end = parseLsn(b.endLsn)!;
  return path.some((e) => e.timeline === b.timeline && start >= e.beginLsn && (e.endLsn === null || end <= e.endLsn));
}

export function windowsFor(backups: readonly BackupManifest[], spans: readonly WalSpan[], path: readonly PathEntry[]): RestoreWindow[] {
  const out: RestoreWindow[] = [];
  for (const b of backups) {
    if (!onPath(b, path)) continue;
    const end = parseLsn(b.endLsn)!;
    const need = b.wal ? end : parseLsn(b.startLsn)!;
    const span = spans.find((s) => s.startLsn <= need && need <= s.endLsn);
    const last = path[path.length - 1]!;
    if (span && span.endLsn >= end) {
      out.push({
        backup: b.id,
        timeline: last.timeline,
        fromLsn: end,
        fromAtMs: b.finishedAtMs,
        toLsn: span.endLsn,
        toAtMs: Math.max(span.endAtMs, b.finishedAtMs),
      });
    } else if (b.wal) {
      out.push({ backup: b.id, timeline: last.timeline, fromLsn: end, fromAtMs: b.finishedAtMs, toLsn: end, toAtMs: b.finishedAtMs });
    }
  }
  return out.sort((a, b) => (a.fromLsn < b.fromLsn ? -1 : a.fromLsn > b.fromLsn ? 1 : 0));
}

function contains(w: RestoreWindow, t: PitrTarget): boolean {
  switch (t.kind) {
    case 'time':
      return w.fromAtMs <= t.atMs && t.atMs <= w.toAtMs;
    case 'lsn':
    case 'name':
      return w.fromLsn <= t.lsn && t.lsn <= w.toLsn;
    case 'latest':
      return true;
  }
}

export function planRestore(input: PlanInput): PlanResult {
  const timeline = input.timeline ?? newestTimeline(input.catalog, input.backups);
  const path = timelinePath(timeline, input.histories);
  if (typeof path === 'string') return { ok: false, reason: `cannot follow timeline ${timeline}: ${path}`, windows: [] };
  const spans = pathSpans(input.catalog, path);
  const windows = windowsFor(input.backups, spans, path);
  const t = input.target;
  if (windows.length === 0) {
    return {
      ok: false,
      reason: `nothing is restorable on timeline ${timeline}: no backup on its path${input.backups.length === 0 ? ' (the store holds no backup)' : ''}`,
      windows,
    };
  }
  if (t.kind === 'name' && t.timeline !== timeline && !path.some((e) => e.timeline === t.timeline)) {
    return {
      ok: false,
      reason: `restore point ${JSON.stringify(t.name)} was made on timeline ${t.timeline}, which is not on the path of timeline ${timeline}; pass --timeline ${t.timeline}`,
      windows,
    };
  }
  const fits = windows.filter((w) => contains(w, t));
  // The newest backup that reaches the target replays the least WAL; for 'latest', the window that reaches furthest.
  const chosen =
    t.kind === 'latest'
      ? [...windows].sort((a, b) => (a.toLsn > b.toLsn ? -1 : a.toLsn < b.toLsn ? 1 : a.fromLsn > b.fromLsn ? -1 : 1))[0]
      : fits[fits.length - 1];
  if (chosen === undefined) return { ok: false, reason: refusal(t, windows, input.nowMs), windows };
  const byId = new Map(input.backups.map((b) => [b.id, b]));
  const chain = orderChain(byId.get(chosen.backup)!, (id) => byId.get(id));
  const first = parseLsn(chain[chain.length - 1]!.startLsn)!;
  return {
    ok: true,
    plan: {
      chain,
      timeline,
      path,
      window: chosen,
      segments: plannedSegments(input.catalog, path, segmentOf(first), chosen.toLsn),
      histories: path.map((e) => e.timeline).filter((x) => x > 1 && input.histories.has(x)),
      target: t,
    },
  };
}

/**
 * The segments replay will ask for, from the one holding the backup's start to
 * the one holding `end`: each under the newest timeline of the path that has
 * begun by that segment and has it archived (Postgres tries the newest
 * timeline first, XLogFileReadAnyTLI).
 */
export function plannedSegments(catalog: WalCatalog, path: readonly PathEntry[], fromSegno: bigint, end: bigint): PlannedSegment[] {
  const out: PlannedSegment[] = [];
  const last = end > 0n ? segmentOf(end - 1n) : 0n;
  for (let segno = fromSegno; segno <= last; segno++) {
    for (let i = path.length - 1; i >= 0; i--) {
      const e = path[i]!;
      if (segmentOf(e.beginLsn) > segno || (e.endLsn !== null && segmentOf(e.endLsn) < segno)) continue;
      if (!catalog.timelines.get(e.timeline)?.has(segno)) continue;
      const cut = e.endLsn !== null && segmentOf(e.endLsn) === segno ? segmentOffset(e.endLsn) : undefined;
      out.push({ timeline: e.timeline, segno, name: walFileName(e.timeline, segno), ...(cut === undefined ? {} : { cutOffset: cut }) });
      break;
    }
  }
  return out;
}

export function describeWindow(w: RestoreWindow): string {
  return `from ${iso(w.fromAtMs)} (LSN ${formatLsn(w.fromLsn)}, backup ${w.backup}) to ${iso(w.toAtMs)} (LSN ${formatLsn(w.toLsn)}) on timeline ${w.timeline}`;
}

function refusal(t: PitrTarget, windows: readonly RestoreWindow[], nowMs: number): string {
  const what =
    t.kind === 'time'
      ? `time ${iso(t.atMs)}`
      : t.kind === 'lsn'
        ? `LSN ${formatLsn(t.lsn)}`
        : t.kind === 'name'
          ? `restore point ${JSON.stringify(t.name)} (LSN ${formatLsn(t.lsn)})`
          : 'latest';
  const newest = windows[windows.length - 1]!;
  const oldest = windows[0]!;
  let why: string;
  if (t.kind === 'time' && t.atMs > nowMs) why = 'it is in the future';
  else if (t.kind === 'time' ? t.atMs > newest.toAtMs : t.kind !== 'latest' && t.lsn > newest.toLsn) why = 'it is past the end of the archive';
  else if (t.kind === 'time' ? t.atMs < oldest.fromAtMs : t.kind !== 'latest' && t.lsn < oldest.fromLsn) why = 'it is before the end of the oldest backup';
  else why = 'it falls in a gap of the archive';
  return `cannot restore to ${what}: ${why}. Restorable: ${windows.map(describeWindow).join('; ')}`;
}

function bigMax(a: bigint, b: bigint): bigint {
  return a >= b ? a : b;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
