// decideBackup on hand-made states: what is due, from which node, and what an
// operator's request gets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backup, ClusterState, PgNode, WalRange } from '../../fsm/index.js';
import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import { backupId, decideBackup, restoreTestDue, type BackupSchedule } from './backup-plan.js';

const H = 3_600_000;
const SCHEDULE: BackupSchedule = { fullEveryMs: 168 * H, incrementalEveryMs: 6 * H };

function pgNode(node: string, role: 'primary' | 'standby', timeline = 2): PgNode {
  return {
    node,
    role: role === 'standby' ? 'absent' : role,
    reportedRole: role,
    timeline,
    lsn: { received: '0/5000000', flushed: '0/5000000', replayed: '0/5000000' },
    reportedAtMs: 1,
  } as PgNode;
}

const backup = (id: string, o: Partial<Backup> = {}): Backup =>
  fsmBackup(id, { timeline: 2, verification: { state: 'unverified', atMs: null, detail: null, kind: null }, ...o });

function state(
  backups: Backup[],
  nodes: PgNode[] = [pgNode('n1', 'primary'), pgNode('n2', 'standby'), pgNode('n3', 'standby')],
  primary: string | null = 'n1',
  ranges: WalRange[] = [],
): ClusterState {
  return {
    backups: new Map(backups.map((b) => [b.id, b])),
    postgres: { primary, nodes: new Map(nodes.map((n) => [n.node, n])) },
    walArchive: { ranges, historyTimelines: [] },
  } as unknown as ClusterState;
}

const range = (timeline: number, startLsn: string, endLsn: string): WalRange => ({ timeline, startLsn, endLsn, startAtMs: 0, endAtMs: 0 });

test('a gap in the WAL archive after every backup makes a full backup due at once (I6), and only then', () => {
  const f = backup('f1', { finishedAtMs: 0, startLsn: '0/1000000', endLsn: '0/2000000' });
  const nodes = [pgNode('n1', 'primary'), pgNode('n2', 'standby'), pgNode('n3', 'standby')];
  assert.deepEqual(decideBackup(state([f], nodes, 'n1', [range(2, '0/1000000', '0/9000000')]), SCHEDULE, 1 * H), { action: 'none', why: 'nothing is due' });
  // The archive lags a second behind a backup that just ended: not a gap.
  assert.equal(decideBackup(state([f], nodes, 'n1', [range(2, '0/1000000', '0/1800000')]), SCHEDULE, 1 * H).action, 'none');
  const gap = decideBackup(state([f], nodes, 'n1', [range(2, '0/1000000', '0/3000000'), range(2, '0/7000000', '0/9000000')]), SCHEDULE, 1 * H);
  assert.ok(
    gap.action === 'start' && gap.kind === 'full' && /gap after every complete backup \(it restarted at 0\/7000000 on timeline 2\)/.test(gap.why),
    JSON.stringify(gap),
  );
  // A backup on the old timeline stays usable across a failover without a gap on the new one.
  const old = backup('f0', { timeline: 1, startLsn: '0/1000000', endLsn: '0/2000000' });
  const across = state([old, backup('f1', { finishedAtMs: 0, startLsn: '0/6000000', endLsn: '0/6800000' })], nodes, 'n1', [
    range(1, '0/1000000', '0/5000000'),
    range(2, '0/5000000', '0/9000000'),
  ]);
  assert.equal(decideBackup(across, SCHEDULE, 1 * H).action, 'none');
  // A failover with a gap: the old timeline's range stops short of where the new one begins.
  const gapAtFailover = state([old], nodes, 'n1', [range(1, '0/1000000', '0/3000000'), range(2, '0/7000000', '0/9000000')]);
  assert.equal(decideBackup(gapAtFailover, SCHEDULE, 1 * H).action, 'start');
});

test("a full backup first, from the lowest streaming standby on the primary's timeline", () => {
  const d = decideBackup(state([]), SCHEDULE, 10 * H);
  assert.equal(d.action, 'start');
  assert.ok(d.action === 'start' && d.kind === 'full' && d.node === 'n2' && d.parent === null && d.timeline === 2);
  const lagging = decideBackup(state([], [pgNode('n1', 'primary'), pgNode('n2', 'standby', 1), pgNode('n3', 'standby')]), SCHEDULE, 0);
  assert.ok(lagging.action === 'start' && lagging.node === 'n3', 'a standby still on the old timeline is skipped');
  const alone = decideBackup(state([], [pgNode('n1', 'primary')]), SCHEDULE, 0);
  assert.ok(alone.action === 'start' && alone.node === 'n1', 'the primary when no standby streams');
});

test('then incrementals on the newest backup when it is older than incrementalEveryMs, and a new full after fullEveryMs', () => {
  const f = backup('f1', { finishedAtMs: 0 });
  assert.deepEqual(decideBackup(state([f]), SCHEDULE, 5 * H), { action: 'none', why: 'nothing is due' });
  const inc = decideBackup(state([f]), SCHEDULE, 6 * H);
  assert.ok(inc.action === 'start' && inc.kind === 'incremental' && inc.parent === 'f1');
  const i1 = backup('i1', { kind: 'incremental', parent: 'f1', finishedAtMs: 6 * H });
  const next = decideBackup(state([f, i1]), SCHEDULE, 12 * H);
  assert.ok(next.action === 'start' && next.kind === 'incremental' && next.parent === 'i1', 'the chain grows on its newest link');
  const weekly = decideBackup(state([f, i1]), SCHEDULE, 168 * H);
  assert.ok(weekly.action === 'start' && weekly.kind === 'full');
  const off = decideBackup(state([f]), { ...SCHEDULE, incrementalEveryMs: null }, 100 * H);
  assert.equal(off.action, 'none');
});

test('a backup on an older timeline, a failed or failed-verification one is not built on', () => {
  const old = backup('f0', { timeline: 1 });
  assert.ok(decideBackup(state([old]), SCHEDULE, 1 * H).action === 'start');
  const d = decideBackup(state([old]), SCHEDULE, 1 * H);
  assert.ok(d.action === 'start' && d.kind === 'full', 'a new timeline starts a new chain');
  const bad = backup('f1', { verification: { state: 'failed', atMs: 1, detail: 'x', kind: 'checksums' } });
  const d2 = decideBackup(state([bad]), SCHEDULE, 1 * H);
  assert.ok(d2.action === 'start' && d2.kind === 'full');
});

test("operators' requests: refused while one runs or with no primary; incremental needs something to build on; auto falls back to full", () => {
  const running = backup('r1', { state: 'running', node: 'n3', finishedAtMs: null, endLsn: null });
  assert.deepEqual(decideBackup(state([running]), SCHEDULE, 0, 'full'), { action: 'refuse', why: 'backup r1 is still running on n3; one runs at a time' });
  assert.equal(decideBackup(state([], undefined, null), SCHEDULE, 0, 'full').action, 'refuse');
  const noBase = decideBackup(state([]), SCHEDULE, 0, 'incremental');
  assert.ok(noBase.action === 'refuse' && /take a full backup \(ogel backup create --full\)/.test(noBase.why));
  const auto = decideBackup(state([]), SCHEDULE, 0, 'auto');
  assert.ok(auto.action === 'start' && auto.kind === 'full');
  const f = backup('f1');
  const auto2 = decideBackup(state([f]), SCHEDULE, 0, 'auto');
  assert.ok(auto2.action === 'start' && auto2.kind === 'incremental' && auto2.parent === 'f1');
});

test('backup ids sort by time and say their kind', () => {
  assert.equal(backupId(Date.UTC(2026, 11, 7, 19, 30, 5), 'full', 'a1b2c3'), '20261207-193005-f-a1b2c3');
  assert.equal(backupId(Date.UTC(2026, 11, 7, 19, 30, 5), 'incremental', 'a1b2c3'), '20261207-193005-i-a1b2c3');
});

test('restoreTestDue: the newest usable backup once per period, whatever is newest then; never when off', () => {
  const H = 3_600_000;
  const restore = (atMs: number) => ({ state: 'verified', atMs, detail: 'ok', kind: 'restore' }) as const;
  const older = backup('f1', { finishedAtMs: 1 * H });
  const newer = backup('i1', { parent: 'f1', finishedAtMs: 5 * H });
  assert.equal(restoreTestDue([older, newer], 24 * H, 6 * H), 'i1');
  // f1 was restore-tested 2 h ago: nothing is due, though i1 is newer and untested.
  assert.equal(restoreTestDue([backup('f1', { finishedAtMs: 1 * H, verification: restore(4 * H) }), newer], 24 * H, 6 * H), null);
  assert.equal(restoreTestDue([backup('f1', { finishedAtMs: 1 * H, verification: restore(4 * H) }), newer], 24 * H, 29 * H), 'i1');
  // A backup that failed verification is never the one tested; a running one neither.
  const bad = backup('f2', { finishedAtMs: 9 * H, verification: { state: 'failed', atMs: 9 * H, detail: 'x', kind: 'checksums' } });
  assert.equal(restoreTestDue([newer, bad, backup('r1', { state: 'running', finishedAtMs: null })], 24 * H, 10 * H), 'i1');
  assert.equal(restoreTestDue([newer], 0, 10 * H), null);
  assert.equal(restoreTestDue([], 24 * H, 10 * H), null);
});

test('after a failed backup the schedule waits (at most its own period) before trying again; an operator does not', () => {
  const M = 60_000;
  const full = backup('f1', { finishedAtMs: 0 });
  const failed = backup('i1', { kind: 'incremental', parent: 'f1', state: 'failed', finishedAtMs: 7 * H, failureReason: 'x' });
  const sched = { fullEveryMs: 168 * H, incrementalEveryMs: 6 * H };
  const d1 = decideBackup(state([full, failed]), sched, 7 * H + 5 * M);
  assert.equal(d1.action, 'none');
  assert.match(d1.why, /backup i1 failed 300 s ago; the next try waits 600 s/);
  assert.equal(decideBackup(state([full, failed]), sched, 7 * H + 11 * M).action, 'start');
  assert.equal(decideBackup(state([full, failed]), sched, 7 * H + 5 * M, 'incremental').action, 'start');
  // A short schedule waits its own period, not 10 minutes.
  assert.equal(decideBackup(state([full, failed]), { fullEveryMs: 168 * H, incrementalEveryMs: 36_000 }, 7 * H + 40_000).action, 'start');
});
