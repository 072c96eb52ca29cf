// The daemon's Prometheus metrics, scraped from a DaemonMetrics over fake views:
// the Postgres metrics (issue 4) exist with the values of the state machine, the
// agent and the primary's pg_stat_replication, and a scrape survives a failing
// Postgres.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import type { ClusterState } from '../../fsm/index.js';
import { emptyStats, StateRole, type NodeStatus } from '../../raft/index.js';
import type { AgentCounters, AgentStatus } from '../postgres/agent.js';
import type { ReplicationStats } from '../postgres/replication-stats.js';
import { DaemonMetrics, type PostgresMetricsView } from './metrics.js';

const raftStatus: NodeStatus = {
  id: 'n1',
  role: StateRole.Leader,
  term: 3,
  leader: 'n1',
  commitIndex: 10,
  appliedIndex: 10,
  lastIndex: 10,
  firstIndex: 1,
  rejoining: false,
  voters: ['n1', 'n2', 'n3'],
  learners: [],
  leadTransferee: '',
  peers: [],
  leaderChanges: 1,
  transport: emptyStats(),
};

const counters: AgentCounters = { leaseRenewalsOk: 41, leaseRenewalsFailed: 2, fences: 3, unfences: 2, promotions: 1, reclones: 1, standbyRestarts: 0 };

function state(): ClusterState {
  const s = run([C.failoverBlocked(), C.maintenance({ reason: 'upgrade' })], clusterOf3());
  const history = [
    ...s.postgres.history,
    { generation: 2, node: 'n2', reason: 'failover: the lease of n1 lapsed', lsn: '0/5000000', atMs: 2 },
    { generation: 3, node: 'n1', reason: 'switchover to n1', lsn: '0/6000000', atMs: 3 },
  ];
  return { ...s, postgres: { ...s.postgres, history } };
}

const stats: ReplicationStats = {
  currentLsn: '0/5000060',
  standbys: [
    {
      standby: 'n2',
      state: 'streaming',
      syncState: 'quorum',
      sentLsn: null,
      writeLsn: null,
      flushLsn: null,
      replayLsn: '0/5000000',
      lagBytes: 96,
      lagSeconds: 0.25,
      writeLagSeconds: null,
      flushLagSeconds: null,
    },
    {
      standby: 'n3',
      state: 'streaming',
      syncState: 'quorum',
      sentLsn: null,
      writeLsn: null,
      flushLsn: null,
      replayLsn: '0/5000060',
      lagBytes: 0,
      lagSeconds: null,
      writeLagSeconds: null,
      flushLagSeconds: null,
    },
  ],
  slots: [
    { slot: 'ogel_n2', active: true, walStatus: 'reserved', safeWalBytes: 200_000_000 },
    { slot: 'ogel_n3', active: false, walStatus: 'lost', safeWalBytes: null },
  ],
};

function view(nodeId: string, over: Partial<PostgresMetricsView> = {}): PostgresMetricsView & { replicationCalls: number } {
  const agentStatus: AgentStatus = {
    wanted: nodeId === 'n1' ? 'primary' : 'standby',
    observed: nodeId === 'n1' ? 'primary' : 'standby',
    running: true,
    fenced: false,
    leaseRemainingMs: nodeId === 'n1' ? 1500 : null,
    lastError: null,
  };
  const v = {
    nodeId,
    replicationCalls: 0,
    state,
    agent: () => ({ agentStatus: () => agentStatus, agentCounters: () => counters }),
    replication: async () => {
      v.replicationCalls++;
      return stats;
    },
    ...over,
  };
  return v;
}

/** The value of one sample line, e.g. sample(text, 'ogel_pg_generation') or with labels '{standby="n2"}'. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('Postgres metrics on the primary: history, agent counters, lease, lag per standby, switchover pause', async () => {
  const m = new DaemonMetrics({ status: () => raftStatus, isLeader: () => true });
  const v = view('n1');
  m.setPostgresView(v);
  m.observeSwitchoverPause(0.12);
  assert.throws(() => m.observeSwitchoverPause(-1), RangeError);
  assert.throws(() => m.observeSwitchoverPause(Number.NaN), RangeError);
  const text = await m.text();
  const expected: [string, string, number][] = [
    ['ogel_pg_failovers_total', '', 1],
    ['ogel_pg_switchovers_total', '', 1],
    ['ogel_pg_generation', '', 1],
    ['ogel_pg_is_primary', '', 1],
    ['ogel_pg_failover_blocked', '', 1],
    ['ogel_maintenance_paused', '', 1],
    ['ogel_pg_lease_renewals_total', '{result="ok"}', 41],
    ['ogel_pg_lease_renewals_total', '{result="failed"}', 2],
    ['ogel_pg_fences_total', '', 3],
    ['ogel_pg_promotions_total', '', 1],
    ['ogel_pg_reclones_total', '', 1],
    ['ogel_pg_lease_remaining_seconds', '{generation="1"}', 1.5],
    ['ogel_pg_replication_lag_bytes', '{standby="n2"}', 96],
    ['ogel_pg_replication_lag_bytes', '{standby="n3"}', 0],
    ['ogel_pg_replication_lag_seconds', '{standby="n2"}', 0.25],
    ['ogel_pg_replication_slot_lost', '{slot="ogel_n2"}', 0],
    ['ogel_pg_replication_slot_lost', '{slot="ogel_n3"}', 1],
    ['ogel_pg_replication_slot_safe_wal_bytes', '{slot="ogel_n2"}', 200_000_000],
    ['ogel_pg_switchover_pause_seconds_count', '', 1],
    ['ogel_pg_switchover_pause_seconds_bucket', '{le="0.15"}', 1],
    ['ogel_pg_switchover_pause_seconds_bucket', '{le="0.1"}', 0],
  ];
  for (const [name, labels, value] of expected) assert.equal(sample(text, name, labels), value, `${name}${labels}`);
  // replay_lag is null for an idle standby: no sample rather than a made-up 0.
  assert.equal(sample(text, 'ogel_pg_replication_lag_seconds', '{standby="n3"}'), undefined);
  assert.match(text, /^# TYPE ogel_pg_failovers_total counter$/m);
  assert.match(text, /^# TYPE ogel_pg_switchover_pause_seconds histogram$/m);
  // A lost slot has no safe size: no sample rather than a made-up 0.
  assert.equal(sample(text, 'ogel_pg_replication_slot_safe_wal_bytes', '{slot="ogel_n3"}'), undefined);
  assert.equal(
    v.replicationCalls,
    4,
    'each replication gauge (lag bytes and seconds, slot lost and safe bytes) asks the view, which coalesces (LiveReplication)',
  );
  // Raft metrics are still there.
  assert.equal(sample(text, 'ogel_raft_term'), 3);
});

test('Postgres metrics on a standby, and with Postgres failing: no lag or lease series, the scrape still works', async () => {
  const m = new DaemonMetrics({ status: () => raftStatus, isLeader: () => false });
  const v = view('n2');
  m.setPostgresView(v);
  const text = await m.text();
  assert.equal(sample(text, 'ogel_pg_is_primary'), 0);
  assert.equal(v.replicationCalls, 0, 'a standby does not query pg_stat_replication');
  assert.ok(!/^ogel_pg_replication_lag_bytes\{/m.test(text));
  assert.ok(!/^ogel_pg_lease_remaining_seconds\{/m.test(text));
  assert.equal(sample(text, 'ogel_pg_generation'), 1);

  const failing = new DaemonMetrics({ status: () => raftStatus, isLeader: () => true });
  failing.setPostgresView(view('n1', { replication: () => Promise.reject(new Error('Postgres is not running')), agent: () => undefined }));
  const t2 = await failing.text();
  assert.ok(!/^ogel_pg_replication_lag_bytes\{/m.test(t2));
  assert.equal(sample(t2, 'ogel_pg_is_primary'), 0, 'no agent: not observed as primary');
  assert.equal(sample(t2, 'ogel_pg_lease_renewals_total', '{result="ok"}'), 0);

  // Before the daemon sets the view: every name is there, at 0.
  const early = await new DaemonMetrics({ status: () => raftStatus, isLeader: () => false }).text();
  for (const name of ['ogel_pg_failovers_total', 'ogel_pg_generation', 'ogel_maintenance_paused', 'ogel_pg_fences_total'])
    assert.equal(sample(early, name), 0, name);
});
