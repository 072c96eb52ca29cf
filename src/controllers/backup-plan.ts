// What the backup controller should do now, decided from the state machine
// alone (pure, tested on its own; backup-scheduler.ts does what it says):
//   - at most one backup runs at a time;
//   - a full backup when none is complete yet on the current timeline, or the
//     newest full one is older than fullEveryMs (the chain restarts there);
//   - else an incremental on top of the newest complete backup when that one
//     is older than incrementalEveryMs (null: incrementals off);
//   - an operator's request (ogel backup create) goes first: 'full',
//     'incremental' (refused when there is nothing to build on), or 'auto'
//     (incremental when possible).
// The source is a standby that reported streaming on the primary's timeline
// (a backup reads every file: it should not compete with the primary's
// clients), else the primary. Times are the leader's clock against the
// finishedAtMs the leader recorded; a new leader's clock may differ, which
// only moves a scheduled backup earlier or later, never loses data.

import { compareLsn, type Backup, type ClusterState } from '../../fsm/index.js';

export type BackupKindRequest = 'full' | 'incremental' | 'auto';

/** How long the schedule waits after a failed backup (at most the schedule's own period). */
export const FAILURE_BACKOFF_MS = 10 * 60_000;

export interface BackupSchedule {
  fullEveryMs: number;
  /** null: no scheduled incrementals. */
  incrementalEveryMs: number | null;
}

export type BackupDecision =
  | { action: 'none'; why: string }
  | { action: 'start'; kind: 'full' | 'incremental'; parent: string | null; node: string; timeline: number; startLsn: string; why: string }
  | { action: 'refuse'; why: string };

function complete(state: ClusterState): Backup[] {
  return [...state.backups.values()]
    .filter((b) => b.state === 'complete' && b.verification.state !== 'failed')
    .sort((a, b) => (a.finishedAtMs ?? 0) - (b.finishedAtMs ?? 0));
}

/** The node to copy: a streaming standby on the primary's timeline (lowest id, for stable choices), else the primary. */
export function backupSource(state: ClusterState): { node: string; timeline: number; lsn: string } | undefined {
  const pg = state.postgres;
  if (pg.primary === null) return undefined;
  const primary = pg.nodes.get(pg.primary);
  if (primary === undefined || primary.reportedRole !== 'primary') return undefined;
  // A node's wanted role stays 'absent' for a standby that simply follows: what it reports decides.
  const standbys = [...pg.nodes.values()]
    .filter((n) => n.node !== pg.primary && n.reportedRole === 'standby' && n.role !== 'fenced' && n.role !== 'recloning' && n.timeline === primary.timeline)
    .sort((a, b) => a.node.localeCompare(b.node));
  const src = standbys[0] ?? primary;
  return { node: src.node, timeline: primary.timeline, lsn: src.lsn.replayed === '0/0' ? src.lsn.flushed : src.lsn.replayed };
}

export function decideBackup(state: ClusterState, schedule: BackupSchedule, nowMs: number, request?: BackupKindRequest): BackupDecision {
  const running = [...state.backups.values()].find((b) => b.state === 'running');
  if (running !== undefined)
    return request
      ? { action: 'refuse', why: `backup ${running.id} is still running on ${running.node ?? 'a node'}; one runs at a time` }
      : { action: 'none', why: `backup ${running.id} is running` };
  const src = backupSource(state);
  if (src === undefined)
    return request
      ? { action: 'refuse', why: 'there is no primary reporting right now; retry once the cluster has one' }
      : { action: 'none', why: 'no primary' };
  const done = complete(state).filter((b) => b.timeline <= src.timeline);
  const onTimeline = done.filter((b) => b.timeline === src.timeline);
  const newest = onTimeline.at(-1);
  const newestFull = onTimeline.filter((b) => b.kind === 'full').at(-1);
  // The recorded start is a lower bound, known before BASE_BACKUP runs: the
  // source's replayed LSN, and for an incremental at least its parent's end
  // (Postgres refuses an incremental that would start before it). The exact
  // start is in the backup's backup.json.
  const start = (kind: 'full' | 'incremental', why: string): BackupDecision => {
    const parent = kind === 'incremental' ? newest! : undefined;
    const startLsn = parent?.endLsn != null && compareLsn(parent.endLsn, src.lsn) > 0 ? parent.endLsn : src.lsn;
    return { action: 'start', kind, parent: parent?.id ?? null, node: src.node, timeline: src.timeline, startLsn, why };
  };
  if (request === 'full') return start('full', 'requested');
  if (request === 'incremental' || request === 'auto') {
    if (newest === undefined)
      return request === 'auto'
        ? start('full', 'requested; no complete backup on this timeline to build on')
        : {
            action: 'refuse',
            why: `no complete backup on timeline ${src.timeline} to take an incremental against; take a full backup (ogel backup create --full)`,
          };
    return start('incremental', 'requested');
  }
  // After a failed attempt the schedule waits (an operator's request does not): a
  // backup that fails at once must not be retried in a loop.
  const lastFailed = [...state.backups.values()]
    .filter((b) => b.state === 'failed')
    .sort((a, b) => (a.finishedAtMs ?? 0) - (b.finishedAtMs ?? 0))
    .at(-1);
  const backoffMs = Math.min(FAILURE_BACKOFF_MS, schedule.incrementalEveryMs ?? schedule.fullEveryMs);
  if (
    lastFailed !== undefined &&
    nowMs - (lastFailed.finishedAtMs ?? 0) < backoffMs &&
    (newest === undefined || (lastFailed.finishedAtMs ?? 0) > (newest.finishedAtMs ?? 0))
  ) {
    return {
      action: 'none',
      why: `backup ${lastFailed.id} failed ${Math.round((nowMs - (lastFailed.finishedAtMs ?? 0)) / 1000)} s ago; the next try waits ${Math.round(backoffMs / 1000)} s`,
    };
  }
  if (newestFull === undefined || newest === undefined) return start('full', `no complete full backup on timeline ${src.timeline}`);
  const gap = archiveGapAfterBackups(state, done);
  if (gap !== null) return start('full', gap);
  if (nowMs - (newestFull.finishedAtMs ?? 0) >= schedule.fullEveryMs)
    return start('full', `the newest full backup (${newestFull.id}) is older than ${Math.round(schedule.fullEveryMs / 3_600_000)} h`);
  if (schedule.incrementalEveryMs !== null && nowMs - (newest.finishedAtMs ?? 0) >= schedule.incrementalEveryMs) {
    return start('incremental', `the newest backup (${newest.id}) is older than ${Math.round(schedule.incrementalEveryMs / 60_000)} min`);
  }
  return { action: 'none', why: 'nothing is due' };
}

/**
 * Why a full backup is due because of the WAL archive (I6: a gap is closed by
 * a new full backup), or null. Point-in-time restore needs a backup whose end
 * lies in the archive's newest contiguous range R (the newest timeline's last
 * range): on R's timeline, one ending at or after R starts; on an earlier
 * timeline, one ending inside a range of its timeline, when R's timeline has
 * no gap of its own. A backup ending past R's end is fine: the archive is
 * only a second behind and catches up.
 */
export function archiveGapAfterBackups(state: ClusterState, done: readonly Backup[]): string | null {
  const ranges = state.walArchive.ranges;
  if (ranges.length === 0) return null;
  let r = ranges[0]!;
  for (const x of ranges) if (x.timeline > r.timeline || (x.timeline === r.timeline && compareLsn(x.endLsn, r.endLsn) > 0)) r = x;
  const onR = ranges.filter((x) => x.timeline === r.timeline).length;
  const usable = done.some((b) => {
    if (b.endLsn === null) return false;
    if (b.timeline === r.timeline) return compareLsn(b.endLsn, r.startLsn) >= 0;
    if (b.timeline > r.timeline || onR > 1) return false;
    // Its range must also reach where R begins (R starts at the switch segment when the failover left no gap).
    return ranges.some(
      (x) =>
        x.timeline === b.timeline && compareLsn(x.startLsn, b.endLsn!) <= 0 && compareLsn(b.endLsn!, x.endLsn) <= 0 && compareLsn(x.endLsn, r.startLsn) >= 0,
    );
  });
  if (usable) return null;
  return `the WAL archive has a gap after every complete backup (it restarted at ${r.startLsn} on timeline ${r.timeline}): a full backup makes the time since restorable`;
}

/** A backup id from the leader's clock: sortable, readable, unique with the suffix. */
export function backupId(nowMs: number, kind: 'full' | 'incremental', suffix: string): string {
  const t = new Date(nowMs).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-').toLowerCase();
  return `${t}-${kind === 'full' ? 'f' : 'i'}-${suffix}`;
}

/**
 * The backup to restore-test now, or null: the newest complete backup that did
 * not fail verification, when no backup has passed or failed a restore test in
 * the last `everyMs` (one test per period, of whatever is newest then; a new
 * incremental every few hours must not mean a restore test every few hours).
 */
export function restoreTestDue(backups: Iterable<Backup>, everyMs: number, nowMs: number): string | null {
  if (everyMs <= 0) return null;
  let newest: Backup | undefined;
  for (const b of backups) {
    if (b.verification.kind === 'restore' && b.verification.atMs !== null && nowMs - b.verification.atMs < everyMs) return null;
    if (b.state === 'complete' && b.verification.state !== 'failed' && (newest === undefined || (b.finishedAtMs ?? 0) > (newest.finishedAtMs ?? 0))) newest = b;
  }
  return newest?.id ?? null;
}
