// The `archive` part of GET /v1/status: the restore window from the state
// machine (controllers/archive-view.ts, the same on every node) and the
// primary's archiver as its daemon reports it in GET
// /v1/internal/pg/replication (asked with the replication figures, bounded in
// time), with the archive's replication slot there. Pure: the live figures are
// passed in.

import type { ClusterState } from '../../fsm/index.js';
import type { ArchiveLive, ArchiveSummary, RestoreWindow } from '../api/contract/index.js';
import { restoreWindow, type WindowView } from '../controllers/archive-view.js';
import { ARCHIVE_SLOT } from '../postgres/settings.js';
import type { LiveFigures } from './pg-status.js';

export function archiveStatusView(state: Pick<ClusterState, 'backups' | 'walArchive' | 'postgres'>, figures: LiveFigures | null): ArchiveSummary {
  const w = restoreWindow(state);
  let live: ArchiveLive | null = null;
  let liveError: string | null = null;
  if (figures === null) liveError = state.postgres.primary === null ? 'there is no primary' : 'not asked on a stale read';
  else if (!figures.ok) liveError = figures.error;
  else {
    const a = figures.answer;
    if (a.archive === undefined) liveError = `${a.node}'s daemon does not report its WAL archive (an older version)`;
    else if (a.archive === null) liveError = `the WAL archive has not started on ${a.node}`;
    else {
      const s = a.slots.find((x) => x.slot === ARCHIVE_SLOT);
      live = {
        ...a.archive,
        node: a.node,
        slot: s === undefined ? null : { slot: s.slot, walStatus: s.walStatus, safeWalBytes: s.safeWalBytes, active: s.active },
        measuredAtMs: a.measuredAtMs,
      };
    }
  }
  return {
    timeline: w.timeline,
    window: w.window === null ? null : windowBody(w.window),
    reason: w.reason,
    note: w.note,
    ranges: w.ranges,
    timelineRanges: w.timelineRanges,
    live,
    liveError,
  };
}

export function windowBody(w: WindowView): RestoreWindow {
  return { ...w, fromAt: new Date(w.fromAtMs).toISOString(), toAt: new Date(w.toAtMs).toISOString() };
}
