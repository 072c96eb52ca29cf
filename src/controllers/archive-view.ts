// The restore window of the continuous WAL archive, decided from the state
// machine alone (pure; the same answer on every node): what `ogel restore` can
// reach on the newest timeline, for status and the metrics.
//
// On the newest timeline (the highest of the archive's ranges and the complete
// backups), a backup is a starting point when its end is inside one of the
// timeline's ranges (replay needs the archive from there on). The window runs
// from the end of the oldest such backup in the newest range that has one (its
// finishedAtMs: every commit before its end LSN was made by then) to that
// range's end (endAtMs: every commit up to endLsn was archived by then). A gap
// (a second range) after an older backup cuts that backup off: the window then
// starts at the first backup after the gap. Backups that failed verification
// are never used for a restore, so they do not count.
//
// This is a summary of the index: `ogel restore` plans from the store itself
// (src/archive/pitr-plan.ts) and may also follow older timelines' backups along
// a timeline's history, which the index does not hold.

import { compareLsn, type Backup, type ClusterState, type Lsn, type WalRange } from '../../fsm/index.js';

export interface WindowView {
  /** The backup the window starts from. */
  backup: string;
  timeline: number;
  fromLsn: Lsn;
  fromAtMs: number;
  toLsn: Lsn;
  toAtMs: number;
}

export interface RestoreWindowResult {
  /** The newest timeline the index knows of (ranges and complete backups); null when it knows none. */
  timeline: number | null;
  window: WindowView | null;
  /** Why nothing is restorable (window null), else null. */
  reason: string | null;
  /** A warning beside a window: a gap in the archive after it, or before it. */
  note: string | null;
  /** Ranges of the archive over every timeline. */
  ranges: number;
  /** Ranges on `timeline`: more than one means a gap. */
  timelineRanges: number;
}

type Complete = Backup & { endLsn: Lsn; finishedAtMs: number };

function usable(b: Backup): b is Complete {
  return b.state === 'complete' && b.endLsn !== null && b.finishedAtMs !== null && b.verification.state !== 'failed';
}

const inRange = (lsn: Lsn, r: WalRange): boolean => compareLsn(r.startLsn, lsn) <= 0 && compareLsn(lsn, r.endLsn) <= 0;

export function restoreWindow(s: Pick<ClusterState, 'backups' | 'walArchive'>): RestoreWindowResult {
  const ranges = s.walArchive.ranges;
  const complete = [...s.backups.values()].filter(usable);
  let timeline: number | null = null;
  for (const t of [...ranges.map((r) => r.timeline), ...complete.map((b) => b.timeline)]) timeline = timeline === null ? t : Math.max(timeline, t);
  const out = (o: { window?: WindowView; reason?: string; note?: string | null; timelineRanges?: number }): RestoreWindowResult => ({
    timeline,
    window: o.window ?? null,
    reason: o.reason ?? null,
    note: o.note ?? null,
    ranges: ranges.length,
    timelineRanges: o.timelineRanges ?? 0,
  });
  if (timeline === null) return out({ reason: 'no backup and no archived WAL yet' });
  const T = timeline;
  const onT = ranges.filter((r) => r.timeline === T).sort((a, b) => compareLsn(a.startLsn, b.startLsn));
  const backups = complete.filter((b) => b.timeline === T).sort((a, b) => compareLsn(a.endLsn, b.endLsn) || a.finishedAtMs - b.finishedAtMs);
  if (onT.length === 0) return out({ reason: ranges.length === 0 ? 'no WAL archived yet' : `no WAL archived on timeline ${T} (the newest) yet` });
  const n = onT.length;
  if (T > 1 && !s.walArchive.historyTimelines.includes(T)) return out({ reason: `the history file of timeline ${T} is not archived yet`, timelineRanges: n });
  if (backups.length === 0) {
    return out({ reason: complete.length === 0 ? 'no complete backup yet' : `no complete backup on timeline ${T} (the newest) yet`, timelineRanges: n });
  }
  for (let i = n - 1; i >= 0; i--) {
    const r = onT[i]!;
    const first = backups.find((b) => inRange(b.endLsn, r));
    if (first === undefined) continue;
    const window: WindowView = {
      backup: first.id,
      timeline: T,
      fromLsn: first.endLsn,
      fromAtMs: first.finishedAtMs,
      toLsn: r.endLsn,
      toAtMs: Math.max(r.endAtMs, first.finishedAtMs),
    };
    let note: string | null = null;
    if (i < n - 1) {
      note = `the archive has a gap after ${r.endLsn} on timeline ${T}: what came after it is restorable only from a backup taken after the gap`;
    } else if (i > 0 && backups.some((b) => compareLsn(b.endLsn, r.startLsn) < 0 && onT.slice(0, i).some((g) => inRange(b.endLsn, g)))) {
      note = `a gap in the archive before ${r.startLsn} on timeline ${T} cuts off the older backups`;
    }
    return out({ window, note, timelineRanges: n });
  }
  const reason = backups.every((b) => compareLsn(b.endLsn, onT[0]!.startLsn) < 0)
    ? 'no backup since the archive started'
    : `the archive does not (yet) cover the end of any backup on timeline ${T}`;
  return out({ reason, timelineRanges: n });
}
