// replicationStats on a real PostgreSQL 17 primary with one quorum standby: the
// walsender row (state, sync state, LSNs), lag in bytes while the standby's replay
// is paused, null on the standby itself; and the checks on another node's answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { compareLsn } from '../../fsm/index.js';
import { type PostgresInstance, PostgresStateError } from './instance.js';
import { parseReplicationAnswer, replicationStats } from './replication-stats.js';
import { cloneTestStandby, makeTempPrimary, testStandbyInstance, waitFor } from '../../test/helpers/postgres.js';

test('replicationStats: streaming quorum standby, lag while replay is paused, null on a standby', async (t) => {
  const primary = await makeTempPrimary({ nodeId: 'p1', peerNodeIds: ['s1'] });
  let standby: PostgresInstance | undefined;
  try {
    standby = await testStandbyInstance(await cloneTestStandby(primary, 's1'), { syncMode: 'quorum', peerNodeIds: ['p1'] });
    await standby.start({ timeoutMs: 15_000 });
    const s = standby;

    const streaming = await waitFor('s1 streaming as a quorum standby', async () => {
      const st = await replicationStats(primary.pg);
      const row = st?.standbys[0];
      return st && row?.state === 'streaming' && row.syncState === 'quorum' && row.replayLsn !== null ? st : undefined;
    });
    assert.equal(streaming.standbys.length, 1);
    const row = streaming.standbys[0]!;
    assert.equal(row.standby, 's1');
    assert.ok(row.lagBytes !== null && row.lagBytes >= 0);
    assert.ok(compareLsn(streaming.currentLsn, row.replayLsn!) >= 0, 'the primary is at or past what s1 replayed');
    for (const v of [row.lagSeconds, row.writeLagSeconds, row.flushLagSeconds]) assert.ok(v === null || (typeof v === 'number' && v >= 0));

    // With replay paused, a commit still completes (it waits for the flush, not the
    // replay), so the standby falls behind by at least the bytes written.
    await s.query('SELECT pg_wal_replay_pause()');
    await primary.pg.query("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 2000) g");
    const behind = await waitFor('s1 behind by the filler table', async () => {
      const r = (await replicationStats(primary.pg))?.standbys[0];
      return r && r.lagBytes !== null && r.lagBytes > 100_000 ? r : undefined;
    });
    t.diagnostic(`paused replay: s1 is ${behind.lagBytes} bytes behind, replay_lag ${behind.lagSeconds} s`);
    await s.query('SELECT pg_wal_replay_resume()');
    await waitFor('s1 caught up', async () => {
      const r = (await replicationStats(primary.pg))?.standbys[0];
      return r?.lagBytes === 0 ? true : undefined;
    });

    // A standby has no standbys: null, not an empty primary view.
    assert.equal(await replicationStats(s), null);
    await assert.rejects(replicationStats(primary.pg, { timeoutMs: 0 }), RangeError);
    await s.stop('fast');
    await assert.rejects(replicationStats(s), PostgresStateError);
    // The standby gone, the primary lists nobody (and keeps answering).
    const alone = await waitFor('s1 gone from pg_stat_replication', async () => {
      const st = await replicationStats(primary.pg);
      return st && st.standbys.length === 0 ? st : undefined;
    });
    assert.ok(compareLsn(alone.currentLsn, row.replayLsn!) >= 0);
  } finally {
    if (standby?.isRunning()) await standby.stop('immediate', { timeoutMs: 10_000 }).catch(() => {});
    await primary.cleanup();
  }
});

test('parseReplicationAnswer accepts a well-formed answer and names the first problem otherwise', () => {
  const good = {
    node: 'n1',
    primary: true,
    currentLsn: '0/5000060',
    standbys: [
      {
        standby: 'n2',
        state: 'streaming',
        syncState: 'quorum',
        sentLsn: '0/5000060',
        writeLsn: '0/5000060',
        flushLsn: '0/5000060',
        replayLsn: '0/5000000',
        lagBytes: 96,
        lagSeconds: 0.0012,
        writeLagSeconds: null,
        flushLagSeconds: null,
      },
    ],
    slots: [{ slot: 'ogel_n2', active: true, walStatus: 'reserved', safeWalBytes: 67_108_864 }],
    measuredAtMs: 1763700000000,
  };
  assert.deepEqual(parseReplicationAnswer(good), good);
  assert.deepEqual(parseReplicationAnswer({ ...good, slots: undefined }).slots, [], 'from a daemon that predates slots: none');
  assert.throws(
    () => parseReplicationAnswer({ ...good, slots: [{ slot: 'ogel_n2', active: 'yes', walStatus: null, safeWalBytes: null }] }),
    /malformed replication answer: slots\.0\.active/,
  );
  assert.deepEqual(parseReplicationAnswer({ node: 'n2', primary: false, currentLsn: null, standbys: [], measuredAtMs: 1 }).standbys, []);
  assert.throws(() => parseReplicationAnswer(null), /malformed replication answer: \(root\)/);
  assert.throws(() => parseReplicationAnswer({ ...good, currentLsn: 'nope' }), /malformed replication answer: currentLsn: not an LSN/);
  assert.throws(
    () => parseReplicationAnswer({ ...good, standbys: [{ ...good.standbys[0], lagBytes: -1 }] }),
    /malformed replication answer: standbys\.0\.lagBytes/,
  );
});
