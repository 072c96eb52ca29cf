// WAL archive metrics of one daemon, read at scrape time: the restore window
// from the state machine's index (the same on every node), this node's
// archiver (what it streams and its failures since the daemon started), and,
// on the primary, the archive's replication slot. Alert on: the lag, the age of
// the newest restorable instant, any gap or conflict, and the slot being
// unreserved (WAL the archive lacks is about to be freed).

import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterState } from '../../fsm/index.js';
import { restoreWindow } from '../controllers/archive-view.js';
import type { ArchiveReport, SlotStatus } from '../postgres/replication-stats.js';
import { ARCHIVE_SLOT } from '../postgres/settings.js';

export interface ArchiveMetricsView {
  state(): Pick<ClusterState, 'backups' | 'walArchive'>;
  /** This node's archiver; null before it started. */
  archive(): ArchiveReport | null;
  /**
   * The physical slots of this node's Postgres while it is the primary (the
   * replication reading the Postgres metrics share, bounded in time); null
   * elsewhere and when the reading fails.
   */
  slots(): Promise<readonly SlotStatus[] | null>;
}

export function registerArchiveMetrics(r: Registry, view: () => ArchiveMetricsView | undefined): void {
  new Gauge({
    name: 'ogel_archive_lag_seconds',
    help: 'How long the oldest WAL this node received for the archive has waited to be stored, on the timeline it archives. Present only while this node archives (the primary).',
    labelNames: ['timeline'],
    registers: [r],
    collect() {
      this.reset();
      const a = view()?.archive();
      if (a?.state === 'archiving' && a.lagMs !== null && a.timeline !== null) this.set({ timeline: String(a.timeline) }, a.lagMs / 1000);
    },
  });
  const edge = (name: string, help: string, read: (w: NonNullable<ReturnType<typeof restoreWindow>['window']>) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['timeline'],
      registers: [r],
      collect() {
        this.reset();
        const s = view()?.state();
        const w = s === undefined ? null : restoreWindow(s).window;
        if (w !== null) this.set({ timeline: String(w.timeline) }, read(w) / 1000);
      },
    });
  edge(
    'ogel_archive_restore_window_oldest_timestamp_seconds',
    'The oldest instant a point-in-time restore can reach on the newest timeline (the end of the backup it starts from), Unix seconds; absent when nothing is restorable.',
    (w) => w.fromAtMs,
  );
  edge(
    'ogel_archive_restore_window_newest_timestamp_seconds',
    'The newest instant a point-in-time restore can reach (every commit up to it is archived), Unix seconds; absent when nothing is restorable. Alert on its age.',
    (w) => w.toAtMs,
  );
  const mirror = (name: string, help: string, read: (a: ArchiveReport) => number) =>
    new Counter({
      name,
      help,
      registers: [r],
      collect() {
        this.reset();
        const a = view()?.archive();
        this.inc(a ? read(a) : 0);
      },
    });
  mirror('ogel_archive_uploaded_bytes_total', 'Bytes of WAL this node stored in the archive (compressed) since the daemon started.', (a) => a.uploadedBytes);
  mirror(
    'ogel_archive_gaps_total',
    'Times this node found WAL gone before it was archived (a gap in the archive; a full backup is due), since the daemon started. Alert above 0.',
    (a) => a.gaps,
  );
  mirror(
    'ogel_archive_conflicts_total',
    'Times this node found different bytes in the store for WAL it was about to archive (archiving stops), since the daemon started. Alert above 0.',
    (a) => a.conflicts,
  );
  new Gauge({
    name: 'ogel_archive_slot_unreserved',
    help: "On the primary: 1 when the archive's replication slot is past max_slot_wal_keep_size (wal_status unreserved or lost): WAL not yet archived is freed at the next checkpoint, a gap. 0 otherwise; absent elsewhere.",
    labelNames: ['slot'],
    registers: [r],
    async collect() {
      this.reset();
      let slots: readonly SlotStatus[] | null = null;
      try {
        slots = (await view()?.slots()) ?? null;
      } catch {
        // A scrape must not fail because Postgres is down: the series is absent then.
      }
      const s = slots?.find((x) => x.slot === ARCHIVE_SLOT);
      if (s !== undefined) this.set({ slot: s.slot }, s.walStatus === 'unreserved' || s.walStatus === 'lost' ? 1 : 0);
    },
  });
}
