// Backup metrics of one daemon, read at scrape time from the backup index in
// the state machine (the same on every node) and from this node's backup worker
// (what it uploaded). Alert on: the age of the newest successful backup, and
// any verification failure.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { Backup } from '../../fsm/index.js';

export interface BackupMetricsView {
  backups(): ReadonlyMap<string, Backup>;
  /** Stored bytes of the backups this node's worker completed since the daemon started. */
  uploadedBytes(): number;
}

const KINDS = ['full', 'incremental'] as const;

function newestComplete(all: ReadonlyMap<string, Backup>, kind: Backup['kind']): Backup | undefined {
  let best: Backup | undefined;
  for (const b of all.values())
    if (b.kind === kind && b.state === 'complete' && (best === undefined || (b.finishedAtMs ?? 0) > (best.finishedAtMs ?? 0))) best = b;
  return best;
}

export function registerBackupMetrics(r: Registry, view: () => BackupMetricsView | undefined): void {
  const perKind = (name: string, help: string, read: (b: Backup) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['kind'],
      registers: [r],
      collect() {
        this.reset();
        const all = view()?.backups();
        if (all === undefined) return;
        for (const kind of KINDS) {
          const b = newestComplete(all, kind);
          const v = b === undefined ? null : read(b);
          if (v !== null) this.set({ kind }, v);
        }
      },
    });
  perKind('ogel_backup_last_success_timestamp_seconds', 'When the newest complete backup of each kind finished (Unix seconds).', (b) =>
    b.finishedAtMs === null ? null : b.finishedAtMs / 1000,
  );
  perKind('ogel_backup_last_size_bytes', 'Bytes in the object store of the newest complete backup of each kind.', (b) => b.storedBytes);
  perKind('ogel_backup_last_duration_seconds', 'How long the newest complete backup of each kind took, from its record to its end.', (b) =>
    b.finishedAtMs === null ? null : Math.max(0, b.finishedAtMs - b.atMs) / 1000,
  );
  new Gauge({
    name: 'ogel_backup_verification_failures',
    help: 'Backups in the index whose latest verification failed: they are never used for a restore. Alert above 0.',
    registers: [r],
    collect() {
      const all = view()?.backups();
      this.set(all === undefined ? 0 : [...all.values()].filter((b) => b.verification.state === 'failed').length);
    },
  });
  new Gauge({
    name: 'ogel_backup_running',
    help: '1 while a backup is running in the cluster (one runs at a time), else 0.',
    registers: [r],
    collect() {
      const all = view()?.backups();
      this.set(all !== undefined && [...all.values()].some((b) => b.state === 'running') ? 1 : 0);
    },
  });
  new Counter({
    name: 'ogel_backup_uploaded_bytes_total',
    help: 'Bytes of complete backups this node uploaded to the object store since the daemon started.',
    registers: [r],
    collect() {
      this.reset();
      this.inc(view()?.uploadedBytes() ?? 0);
    },
  });
}
