// WAL archive metrics from a hand-made index, archiver report and slots: the
// restore window's edges, the lag while archiving only, the counters, and the
// archive slot's alarm (absent off the primary, and when Postgres fails).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import type { ArchiveReport, SlotStatus } from '../postgres/replication-stats.js';
import { ARCHIVE_SLOT } from '../postgres/settings.js';
import { registerArchiveMetrics, type ArchiveMetricsView } from './archive-metrics.js';
import { DaemonMetrics } from './metrics.js';

const report = (o: Partial<ArchiveReport> = {}): ArchiveReport => ({
  state: 'archiving',
  timeline: 1,
  archivedLsn: '0/5000000',
  lagMs: 120,
  lastError: null,
  gaps: 2,
  conflicts: 1,
  uploadedObjects: 30,
  uploadedBytes: 123_456,
  ...o,
});

const index = () => {
  const b = fsmBackup('b1', { timeline: 1, endLsn: '0/2000100', finishedAtMs: 1_000_000 });
  return {
    backups: new Map([[b.id, b]]),
    walArchive: { ranges: [{ timeline: 1, startLsn: '0/2000000', endLsn: '0/5000000', startAtMs: 0, endAtMs: 1_060_000 }], historyTimelines: [] },
  };
};

async function scrape(view: ArchiveMetricsView | undefined): Promise<{ text: string; value: (line: string) => number | undefined }> {
  const r = new Registry();
  registerArchiveMetrics(r, () => view);
  const text = await r.metrics();
  const value = (line: string) => {
    const m = text.split('\n').find((l) => l.startsWith(`${line} `));
    return m === undefined ? undefined : Number(m.slice(line.length).trim());
  };
  return { text, value };
}

const slots = (walStatus: string | null): SlotStatus[] => [
  { slot: 'ogel_n2', active: true, walStatus: 'lost', safeWalBytes: null },
  { slot: ARCHIVE_SLOT, active: true, walStatus, safeWalBytes: walStatus === 'reserved' ? 1024 : null },
];

test('archive metrics on the primary while it archives', async () => {
  const { value } = await scrape({ state: index, archive: () => report(), slots: async () => slots('reserved') });
  assert.equal(value('ogel_archive_lag_seconds{timeline="1"}'), 0.12);
  assert.equal(value('ogel_archive_restore_window_oldest_timestamp_seconds{timeline="1"}'), 1_000);
  assert.equal(value('ogel_archive_restore_window_newest_timestamp_seconds{timeline="1"}'), 1_060);
  assert.equal(value('ogel_archive_uploaded_bytes_total'), 123_456);
  assert.equal(value('ogel_archive_gaps_total'), 2);
  assert.equal(value('ogel_archive_conflicts_total'), 1);
  assert.equal(value('ogel_archive_slot_unreserved{slot="ogel_wal_archive"}'), 0, "another slot's state is not the archive's");
  for (const walStatus of ['unreserved', 'lost']) {
    assert.equal(
      (await scrape({ state: index, archive: () => report(), slots: async () => slots(walStatus) })).value(
        'ogel_archive_slot_unreserved{slot="ogel_wal_archive"}',
      ),
      1,
    );
  }
});

test('archive metrics: no lag unless archiving, no window unless restorable, no slot off the primary or when Postgres fails', async () => {
  const retrying = await scrape({
    state: () => ({ backups: new Map(), walArchive: index().walArchive }),
    archive: () => report({ state: 'retrying', lagMs: 5_000, lastError: 'store unreachable' }),
    slots: async () => null,
  });
  assert.equal(retrying.value('ogel_archive_lag_seconds{timeline="1"}'), undefined);
  assert.equal(retrying.value('ogel_archive_restore_window_oldest_timestamp_seconds{timeline="1"}'), undefined);
  assert.equal(retrying.value('ogel_archive_restore_window_newest_timestamp_seconds{timeline="1"}'), undefined);
  assert.equal(retrying.value('ogel_archive_slot_unreserved{slot="ogel_wal_archive"}'), undefined);
  assert.equal(retrying.value('ogel_archive_gaps_total'), 2);
  assert.doesNotMatch(retrying.text, /^ogel_archive_(lag_seconds|restore_window|slot_unreserved)/m, 'no sample at all, not a made-up 0');
  const failing = await scrape({
    state: index,
    archive: () => null,
    slots: async () => {
      throw new Error('Postgres is not running on this node');
    },
  });
  assert.equal(failing.value('ogel_archive_slot_unreserved{slot="ogel_wal_archive"}'), undefined);
  assert.equal(failing.value('ogel_archive_uploaded_bytes_total'), 0);
  assert.equal(failing.value('ogel_archive_restore_window_newest_timestamp_seconds{timeline="1"}'), 1_060);
});

test("a daemon's /metrics carries the archive metrics, 0 or absent until they are wired", async () => {
  const m = new DaemonMetrics({ status: () => ({}) as never, isLeader: () => false });
  const text = await m.registry.getSingleMetricAsString('ogel_archive_gaps_total');
  assert.match(text, /^ogel_archive_gaps_total 0$/m);
  m.setArchiveView({ state: index, archive: () => report({ gaps: 3 }), slots: async () => null });
  assert.match(await m.registry.getSingleMetricAsString('ogel_archive_gaps_total'), /^ogel_archive_gaps_total 3$/m);
  assert.match(await m.registry.getSingleMetricAsString('ogel_archive_lag_seconds'), /^ogel_archive_lag_seconds\{timeline="1"\} 0\.12$/m);
});
