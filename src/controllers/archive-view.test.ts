// The restore window from a hand-made index: backups and archive ranges on one
// or more timelines, gaps, backups the archive does not follow, nothing at all.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backup, WalRange } from '../../fsm/index.js';
import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import { restoreWindow } from './archive-view.js';

const range = (timeline: number, startLsn: string, endLsn: string, endAtMs: number): WalRange => ({ timeline, startLsn, endLsn, startAtMs: 0, endAtMs });
const backup = (id: string, timeline: number, endLsn: string, finishedAtMs: number, o: Partial<Backup> = {}): Backup =>
  fsmBackup(id, { timeline, startLsn: '0/1000028', endLsn, finishedAtMs, ...o });

function view(backups: Backup[], ranges: WalRange[], historyTimelines: number[] = []) {
  return restoreWindow({ backups: new Map(backups.map((b) => [b.id, b])), walArchive: { ranges, historyTimelines } });
}

describe('restoreWindow', () => {
  test('nothing at all, no backup, no archive', () => {
    assert.deepEqual(view([], []), { timeline: null, window: null, reason: 'no backup and no archived WAL yet', note: null, ranges: 0, timelineRanges: 0 });
    const noArchive = view([backup('b1', 1, '0/2000100', 1_000)], []);
    assert.equal(noArchive.window, null);
    assert.equal(noArchive.reason, 'no WAL archived yet');
    assert.equal(noArchive.timeline, 1);
    const noBackup = view([], [range(1, '0/2000000', '0/5000000', 9_000)]);
    assert.equal(noBackup.window, null);
    assert.equal(noBackup.reason, 'no complete backup yet');
    assert.equal(noBackup.timelineRanges, 1);
  });

  test('one range: from the end of the oldest backup it covers to the end of the archive', () => {
    const v = view([backup('b1', 1, '0/2000100', 1_000), backup('b2', 1, '0/4000100', 5_000)], [range(1, '0/2000000', '0/6000000', 9_000)]);
    assert.deepEqual(v, {
      timeline: 1,
      window: { backup: 'b1', timeline: 1, fromLsn: '0/2000100', fromAtMs: 1_000, toLsn: '0/6000000', toAtMs: 9_000 },
      reason: null,
      note: null,
      ranges: 1,
      timelineRanges: 1,
    });
  });

  test('backups the archive does not follow, running, failed or failing verification do not count', () => {
    const failedVerify = { verification: { state: 'failed', atMs: 1, detail: 'bad', kind: 'checksums' } } as const;
    const v = view(
      [
        backup('before', 1, '0/1800000', 500), // ends before the archive starts (retention trimmed it)
        backup('bad', 1, '0/2100000', 800, failedVerify),
        backup('run', 1, '0/2200000', 900, { state: 'running', endLsn: null, finishedAtMs: null }),
        backup('failed', 1, '0/2300000', 950, { state: 'failed' }),
        backup('b1', 1, '0/3000100', 2_000),
      ],
      [range(1, '0/2000000', '0/6000000', 9_000)],
    );
    assert.equal(v.window?.backup, 'b1');
    assert.equal(v.window?.fromLsn, '0/3000100');
    assert.equal(v.note, null);
  });

  test('a gap after the oldest backup: the window starts at the first backup after it', () => {
    const v = view(
      [backup('b1', 1, '0/2000100', 1_000), backup('b2', 1, '0/8000100', 20_000), backup('b3', 1, '0/9000100', 30_000)],
      [range(1, '0/2000000', '0/5000000', 9_000), range(1, '0/7000000', '0/A000000', 40_000)],
    );
    assert.deepEqual(v.window, { backup: 'b2', timeline: 1, fromLsn: '0/8000100', fromAtMs: 20_000, toLsn: '0/A000000', toAtMs: 40_000 });
    assert.equal(v.timelineRanges, 2);
    assert.match(v.note ?? '', /gap in the archive before 0\/7000000 on timeline 1 cuts off the older backups/);
  });

  test('a gap with no backup after it yet: the window before the gap, and a note', () => {
    const v = view([backup('b1', 1, '0/2000100', 1_000)], [range(1, '0/2000000', '0/5000000', 9_000), range(1, '0/7000000', '0/A000000', 40_000)]);
    assert.deepEqual(v.window, { backup: 'b1', timeline: 1, fromLsn: '0/2000100', fromAtMs: 1_000, toLsn: '0/5000000', toAtMs: 9_000 });
    assert.match(v.note ?? '', /gap after 0\/5000000 on timeline 1: what came after it is restorable only from a backup taken after the gap/);
  });

  test('backups the archive has not reached, or that came before it started', () => {
    const before = view([backup('b1', 1, '0/1000100', 1_000)], [range(1, '0/2000000', '0/5000000', 9_000)]);
    assert.equal(before.window, null);
    assert.equal(before.reason, 'no backup since the archive started');
    const ahead = view([backup('b1', 1, '0/6000100', 1_000)], [range(1, '0/2000000', '0/5000000', 9_000)]);
    assert.equal(ahead.reason, 'the archive does not (yet) cover the end of any backup on timeline 1');
  });

  test('an instant is never before the backup ended: a range reported before the backup finished', () => {
    const v = view([backup('b1', 1, '0/2000100', 10_000)], [range(1, '0/2000000', '0/2000100', 9_000)]);
    assert.equal(v.window?.toAtMs, 10_000);
    assert.equal(v.window?.toLsn, '0/2000100');
  });

  test('several timelines: the newest one decides', () => {
    const tl1 = [range(1, '0/2000000', '0/5000000', 9_000)];
    const b1 = backup('b1', 1, '0/2000100', 1_000);
    // After a failover the archive is on timeline 2 before any backup is.
    const noBackupYet = view([b1], [...tl1, range(2, '0/5000000', '0/6000000', 12_000)], [2]);
    assert.equal(noBackupYet.timeline, 2);
    assert.equal(noBackupYet.window, null);
    assert.equal(noBackupYet.reason, 'no complete backup on timeline 2 (the newest) yet');
    assert.equal(noBackupYet.ranges, 2);
    assert.equal(noBackupYet.timelineRanges, 1, 'one range per timeline is no gap');
    const b2 = backup('b2', 2, '0/5800000', 11_000);
    const both = view([b1, b2], [...tl1, range(2, '0/5000000', '0/6000000', 12_000)], [2]);
    assert.deepEqual(both.window, { backup: 'b2', timeline: 2, fromLsn: '0/5800000', fromAtMs: 11_000, toLsn: '0/6000000', toAtMs: 12_000 });
    // A timeline is restorable only once its history file is archived.
    const noHistory = view([b1, b2], [...tl1, range(2, '0/5000000', '0/6000000', 12_000)], []);
    assert.equal(noHistory.window, null);
    assert.equal(noHistory.reason, 'the history file of timeline 2 is not archived yet');
    // A backup on a timeline the archive has not reached yet.
    const ahead = view([b1, backup('b3', 3, '0/7000100', 13_000)], [...tl1, range(2, '0/5000000', '0/6000000', 12_000)], [2]);
    assert.equal(ahead.timeline, 3);
    assert.equal(ahead.reason, 'no WAL archived on timeline 3 (the newest) yet');
  });
});
