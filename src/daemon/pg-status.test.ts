// The postgres part of /v1/status: per-standby lag from the primary's live
// figures, or from the reported LSNs when those are missing (and why), the
// lease's remaining time, and the state machine's fields unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import type { ReplicationAnswer, SlotStatus, StandbyReplication } from '../postgres/replication-stats.js';
import { postgresStatusView, type NodeReplication, type ReplicationSummary } from './pg-status.js';

interface View {
  generation: number;
  primary: string | null;
  lease: { holder: string; remainingMs: number | null; renewalSeq: number } | null;
  nodes: Record<
    string,
    {
      node: string;
      role: string;
      reportedRole: string;
      timeline: number;
      lsn: { replayed: string };
      reportedAtMs: number | null;
      replication: NodeReplication | null;
      slot: { walStatus: string | null; safeWalBytes: number | null; active: boolean } | null;
    }
  >;
  syncStandbys: string[];
  syncQuorum: number;
  failoverBlocked: { reason: string } | null;
  scheduledSwitchover: { to: string | null; notBeforeMs: number; requestedAtMs: number; at: string } | null;
  replication: ReplicationSummary | null;
}

const view = (x: Parameters<typeof postgresStatusView>[0]): View => postgresStatusView(x) as unknown as View;

/** n1 primary (flushed 0/5000000), n2 replayed 0/4FFF000 (4096 bytes behind), n3 ahead of the primary's last report. */
function reported() {
  return run(
    [
      C.pgReport({ node: 'n1', role: 'primary', timeline: 1, lsn: { received: '0/0', flushed: '0/5000000', replayed: '0/0' } }),
      C.pgReport({ node: 'n2', role: 'standby', timeline: 1, lsn: { received: '0/5000000', flushed: '0/5000000', replayed: '0/4FFF000' } }),
      C.pgReport({ node: 'n3', role: 'standby', timeline: 1, lsn: { received: '0/5000100', flushed: '0/5000100', replayed: '0/5000100' } }),
    ],
    clusterOf3(),
  );
}

function row(standby: string, over: Partial<StandbyReplication> = {}): StandbyReplication {
  return {
    standby,
    state: 'streaming',
    syncState: 'quorum',
    sentLsn: '0/5000060',
    writeLsn: '0/5000060',
    flushLsn: '0/5000060',
    replayLsn: '0/5000060',
    lagBytes: 0,
    lagSeconds: null,
    writeLagSeconds: null,
    flushLagSeconds: null,
    ...over,
  };
}

function answer(standbys: StandbyReplication[], slots: SlotStatus[] = []): ReplicationAnswer {
  return { node: 'n1', primary: true, currentLsn: '0/5000060', standbys, slots, measuredAtMs: 1_763_700_000_000 };
}

test('live figures: a listed standby is live, one the primary does not list is disconnected with its reported lag', () => {
  const pg = reported().postgres;
  const v = view({ pg, live: { ok: true, answer: answer([row('n2', { lagBytes: 96, lagSeconds: 0.004 })]) }, leaseRemainingMs: 2100 });
  assert.equal(v.nodes['n1']!.replication, null, 'the primary has no lag');
  assert.deepEqual(v.nodes['n2']!.replication, { source: 'live', state: 'streaming', syncState: 'quorum', lagBytes: 96, lagSeconds: 0.004 });
  assert.deepEqual(v.nodes['n3']!.replication, { source: 'reported', state: 'disconnected', syncState: null, lagBytes: 0, lagSeconds: null });
  assert.deepEqual(v.replication, { source: 'live', from: 'n1', currentLsn: '0/5000060', measuredAtMs: 1_763_700_000_000, error: null });
  assert.equal(v.lease?.remainingMs, 2100);
  assert.equal(v.lease?.holder, 'n1');
  assert.equal(v.nodes['n2']!.slot, null, 'no slot listed: null');
  const withSlots = view({
    pg,
    live: { ok: true, answer: answer([], [{ slot: 'ogel_n3', active: false, walStatus: 'lost', safeWalBytes: null }]) },
    leaseRemainingMs: 2100,
  });
  assert.deepEqual(withSlots.nodes['n3']!.slot, { walStatus: 'lost', safeWalBytes: null, active: false }, "a standby's slot, by its name");
  assert.equal(withSlots.nodes['n1']!.slot, null, 'the primary has none');
});

test('no live figures: lag from the reported LSNs, and why', () => {
  const pg = reported().postgres;
  const v = view({ pg, live: { ok: false, error: 'n1: no answer within 500 ms' }, leaseRemainingMs: -300 });
  assert.deepEqual(v.nodes['n2']!.replication, { source: 'reported', state: null, syncState: null, lagBytes: 4096, lagSeconds: null });
  // n3 reported a position past the primary's last report: no lag, never negative.
  assert.equal(v.nodes['n3']!.replication?.lagBytes, 0);
  assert.deepEqual(v.replication, { source: 'reported', from: 'n1', currentLsn: null, measuredAtMs: null, error: 'n1: no answer within 500 ms' });
  assert.equal(v.lease?.remainingMs, -300);
  const stale = view({ pg, live: null, leaseRemainingMs: null });
  assert.equal(stale.replication?.error, 'not asked (stale read)');
  assert.equal(stale.lease?.remainingMs, null);
});

test('before any report the lag is unknown; without a primary there is none', () => {
  const fresh = clusterOf3().postgres;
  const v = view({ pg: fresh, live: { ok: false, error: 'x' }, leaseRemainingMs: null });
  assert.equal(v.nodes['n2']!.replication?.lagBytes, null);
  const none = run([C.memberAdd('n1', 1), C.memberAdd('n2', 2)]).postgres;
  const n = view({ pg: none, live: null, leaseRemainingMs: null });
  assert.equal(n.primary, null);
  assert.equal(n.lease, null);
  assert.equal(n.replication, null);
  assert.equal(n.nodes['n2']!.replication, null);
});

test("the state machine's fields are kept as they were", () => {
  const s = run([C.failoverBlocked()], reported());
  const v = view({ pg: s.postgres, live: null, leaseRemainingMs: 10 });
  assert.equal(v.generation, 1);
  assert.equal(v.primary, 'n1');
  assert.deepEqual(v.syncStandbys, ['n2', 'n3']);
  assert.equal(v.syncQuorum, 1);
  assert.equal(v.failoverBlocked?.reason, 'n1 and n3 unreachable');
  assert.deepEqual(Object.keys(v.nodes), ['n1', 'n2', 'n3']);
  const n2 = v.nodes['n2']!;
  const fsmN2 = s.postgres.nodes.get('n2')!;
  assert.deepEqual({ ...n2, replication: undefined, slot: undefined }, { ...fsmN2, replication: undefined, slot: undefined });
  assert.deepEqual({ ...v.lease, remainingMs: undefined }, { ...s.postgres.lease, remainingMs: undefined });
  assert.equal(v.scheduledSwitchover, null);
});

test('a scheduled switchover is shown with its instant also in ISO 8601', () => {
  const s = run([C.scheduleSwitchover({ to: 'n2', notBeforeMs: Date.UTC(2026, 10, 21, 10), atMs: 1_763_700_000_000 })], reported());
  const v = view({ pg: s.postgres, live: null, leaseRemainingMs: null });
  assert.deepEqual(v.scheduledSwitchover, {
    to: 'n2',
    notBeforeMs: Date.UTC(2026, 10, 21, 10),
    requestedAtMs: 1_763_700_000_000,
    at: '2026-11-21T10:00:00.000Z',
  });
});
