// The archive part of GET /v1/status: the window from the index, the primary's
// archiver and its slot from the replication answer, and why the live part is
// missing when it is.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import type { ReplicationAnswer } from '../postgres/replication-stats.js';
import { ARCHIVE_SLOT } from '../postgres/settings.js';
import { archiveStatusView } from './archive-status.js';

const T0 = 1_700_000_000_000;

function state() {
  const s = run([C.walArchived({ atMs: T0 + 60_000, startLsn: '0/2000000', endLsn: '0/5000000' })], clusterOf3());
  const b = fsmBackup('b1', { timeline: 1, endLsn: '0/2000100', finishedAtMs: T0 });
  return { ...s, backups: new Map([[b.id, b]]) };
}

const answer = (over: Partial<ReplicationAnswer> = {}): ReplicationAnswer => ({
  node: 'n1',
  primary: true,
  currentLsn: '0/5000000',
  standbys: [],
  slots: [
    { slot: 'ogel_n2', active: true, walStatus: 'reserved', safeWalBytes: null },
    { slot: ARCHIVE_SLOT, active: true, walStatus: 'unreserved', safeWalBytes: 0 },
  ],
  measuredAtMs: T0 + 61_000,
  archive: {
    state: 'retrying',
    timeline: 1,
    archivedLsn: '0/5000000',
    lagMs: null,
    lastError: 'store unreachable: ECONNREFUSED',
    gaps: 1,
    conflicts: 0,
    uploadedObjects: 12,
    uploadedBytes: 4096,
  },
  ...over,
});

test('archive status: the window as ISO instants, the primary archiver and its slot', () => {
  const v = archiveStatusView(state(), { ok: true, answer: answer() });
  assert.deepEqual(v.window, {
    backup: 'b1',
    timeline: 1,
    fromLsn: '0/2000100',
    fromAtMs: T0,
    fromAt: new Date(T0).toISOString(),
    toLsn: '0/5000000',
    toAtMs: T0 + 60_000,
    toAt: new Date(T0 + 60_000).toISOString(),
  });
  assert.equal(v.ranges, 1);
  assert.equal(v.liveError, null);
  assert.equal(v.live?.node, 'n1');
  assert.equal(v.live?.state, 'retrying');
  assert.equal(v.live?.lastError, 'store unreachable: ECONNREFUSED');
  assert.deepEqual(v.live?.slot, { slot: ARCHIVE_SLOT, walStatus: 'unreserved', safeWalBytes: 0, active: true });
});

test('archive status: why the live part is missing', () => {
  assert.equal(archiveStatusView(state(), null).liveError, 'not asked on a stale read');
  assert.equal(archiveStatusView({ ...state(), postgres: { ...state().postgres, primary: null } }, null).liveError, 'there is no primary');
  assert.equal(archiveStatusView(state(), { ok: false, error: 'n1: no answer within 500 ms' }).liveError, 'n1: no answer within 500 ms');
  const { archive: _gone, ...older } = answer();
  assert.match(archiveStatusView(state(), { ok: true, answer: older }).liveError ?? '', /n1's daemon does not report its WAL archive/);
  assert.equal(archiveStatusView(state(), { ok: true, answer: answer({ archive: null }) }).liveError, 'the WAL archive has not started on n1');
  const noSlot = archiveStatusView(state(), { ok: true, answer: answer({ slots: [] }) });
  assert.equal(noSlot.live?.slot, null);
});
