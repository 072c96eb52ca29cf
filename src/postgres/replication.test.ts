// Quorum-synchronous replication on three real PostgreSQL 17 processes: a
// primary and two standbys cloned with createStandby, then the failover steps
// (stop WAL receivers, compare flushed LSNs, promote, repoint).
// Everything runs in temp dirs on ephemeral ports and is stopped and removed
// even when an assertion fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';

import { compareLsn, type Lsn } from '../../fsm/index.js';
import { PostgresInstance, type InstanceSettings } from './instance.js';
import { readReplicationPassword, REPLICATION_ROLE, slotNameFor } from './settings.js';
import { createStandby, ensurePhysicalSlot, repointStandby, stopWalReceiver, StandbyError } from './standby.js';
import { freePort, makeTempPrimary, type TempPrimary, waitFor } from '../../test/helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with p, or rejects with `message` after ms; never leaves a timer behind. */
async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function settingsFor(nodeId: string, peerNodeIds: string[]): InstanceSettings {
  return {
    nodeId,
    listenAddresses: ['127.0.0.1'],
    syncMode: 'quorum',
    syncQuorum: 1,
    peerNodeIds,
    replicationHosts: ['127.0.0.1'],
    parameters: { shared_buffers: '32MB', max_connections: 30, fsync: false },
  };
}

/** Where a commit ends in the WAL, read back with pg_walinspect: what a synchronous standby must have flushed. */
async function commitEndLsn(primary: PostgresInstance, xid: string, from: Lsn): Promise<Lsn> {
  const r = await primary.query<{ end_lsn: string }>(
    `SELECT end_lsn::text FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_insert_lsn())
      WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' AND xid = $2::xid`,
    [from, xid],
  );
  const lsn = r.rows[0]?.end_lsn;
  assert.ok(lsn, `commit record of xid ${xid} not found after ${from}`);
  return lsn;
}

test('quorum sync replication (ANY 1 of 2 standbys), fencing WAL receivers, promotion and repointing', async (t) => {
  const primary: TempPrimary = await makeTempPrimary({ nodeId: 'p1', peerNodeIds: ['s1', 's2'] });
  const standbys = new Map<string, PostgresInstance>();
  const clients: pg.Client[] = [];
  try {
    const password = readReplicationPassword(primary.dataDir);
    const upstreamAt = (port: number) => ({ host: '127.0.0.1', port, user: REPLICATION_ROLE, password });
    assert.equal((await primary.pg.query<{ s: string }>(`SELECT current_setting('synchronous_standby_names') AS s`)).rows[0]?.s, 'ANY 1 ("s1", "s2")');

    // --- clone two standbys (concurrently: two base backups at once)
    const t0 = performance.now();
    await Promise.all(
      ['s1', 's2'].map(async (name) => {
        const dir = join(primary.root, name);
        const made = await createStandby({
          primary: upstreamAt(primary.port),
          replicationUser: REPLICATION_ROLE,
          slotName: slotNameFor(name),
          targetDir: dir,
          owner: primary.pg.user,
          applicationName: name,
          fsync: false,
        });
        assert.equal(made.slotCreated, true);
        const inst = new PostgresInstance({ dataDir: dir, port: await freePort() });
        standbys.set(name, inst);
        inst.writeConfig(settingsFor(name, ['p1', name === 's1' ? 's2' : 's1']));
        await inst.start({ timeoutMs: 15_000 });
      }),
    );
    t.diagnostic(`two standbys cloned and started in ${Math.round(performance.now() - t0)} ms`);
    const s1 = standbys.get('s1')!;
    const s2 = standbys.get('s2')!;

    // Idempotent: the slot exists now and is reused.
    assert.equal((await ensurePhysicalSlot(upstreamAt(primary.port), slotNameFor('s1'))).created, false);

    // --- both stream, as quorum candidates
    const rep = await waitFor('2 quorum standbys in pg_stat_replication', async () => {
      const r = await primary.pg.query<{ application_name: string; state: string; sync_state: string }>(
        'SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name',
      );
      return r.rows.length === 2 && r.rows.every((x) => x.state === 'streaming' && x.sync_state === 'quorum') ? r.rows : undefined;
    });
    assert.deepEqual(
      rep.map((x) => [x.application_name, x.sync_state]),
      [
        ['s1', 'quorum'],
        ['s2', 'quorum'],
      ],
    );
    const slots = await primary.pg.query<{ slot_name: string; active: boolean }>(`SELECT slot_name, active FROM pg_replication_slots ORDER BY slot_name`);
    assert.deepEqual(
      slots.rows.map((s) => [s.slot_name, s.active]),
      [
        ['ogel_s1', true],
        ['ogel_s2', true],
      ],
    );

    // --- a committed row is visible on both standbys after replay
    await primary.pg.query('CREATE EXTENSION pg_walinspect');
    await primary.pg.query('CREATE TABLE t (id int PRIMARY KEY, note text)');
    await primary.pg.query(`INSERT INTO t VALUES (1, 'replicated')`);
    for (const s of [s1, s2]) {
      await waitFor('row 1 on a standby', async () => ((await s.query('SELECT 1 FROM t WHERE id = 1')).rowCount === 1 ? true : undefined));
    }

    // --- with both standbys down, a commit must wait (quorum sync really is on)
    await Promise.all([s1.stop('fast'), s2.stop('fast')]);
    const writer = new pg.Client(primary.pg.clientConfig());
    writer.on('error', () => {});
    clients.push(writer);
    await writer.connect();
    await writer.query('BEGIN');
    const xid = (await writer.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;
    const before = (await writer.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
    await writer.query(`INSERT INTO t VALUES (2, 'waits for a standby')`);
    let committed = false;
    const commit = writer.query('COMMIT').then(() => {
      committed = true;
    });
    await sleep(1000);
    assert.equal(committed, false, 'COMMIT returned with no synchronous standby connected');
    const waiting = await primary.pg.query<{ wait_event: string }>(`SELECT wait_event FROM pg_stat_activity WHERE backend_xid = $1::xid`, [xid]);
    assert.equal(waiting.rows[0]?.wait_event, 'SyncRep');

    // One standby back is a quorum of 1: the commit completes.
    await s1.start({ timeoutMs: 15_000 });
    const tBack = performance.now();
    await within(commit, 10_000, 'COMMIT still waiting 10 s after s1 came back');
    t.diagnostic(`blocked COMMIT completed ${Math.round(performance.now() - tBack)} ms after s1 was ready again`);
    const commitLsn = await commitEndLsn(primary.pg, xid, before);
    await s2.start({ timeoutMs: 15_000 });

    // --- failover fence: stop every standby's WAL receiver, collect flushed LSNs
    const fenced = new Map<string, Awaited<ReturnType<typeof stopWalReceiver>>>();
    for (const [name, s] of standbys) fenced.set(name, await stopWalReceiver(s));
    const f1 = fenced.get('s1')!;
    t.diagnostic(
      `stopWalReceiver: s1 flushed ${f1.flushedLsn} (commit ended at ${commitLsn}) in ${Math.round(f1.ms)} ms; s2 flushed ${fenced.get('s2')!.flushedLsn}`,
    );
    assert.ok(compareLsn(f1.flushedLsn, commitLsn) >= 0, `s1 acknowledged the commit, so it flushed >= ${commitLsn}; got ${f1.flushedLsn}`);
    for (const s of [s1, s2]) assert.equal((await s.query('SELECT * FROM pg_stat_wal_receiver')).rowCount, 0);
    // Idempotent: again, on a standby that no longer streams.
    assert.equal(compareLsn((await stopWalReceiver(s1)).flushedLsn, f1.flushedLsn), 0);
    await assert.rejects(stopWalReceiver(primary.pg), StandbyError);

    // The old primary dies; promote the most advanced standby.
    await primary.pg.stop('immediate');
    const [candName, other] = compareLsn(fenced.get('s1')!.flushedLsn, fenced.get('s2')!.flushedLsn) >= 0 ? ['s1', 's2'] : ['s2', 's1'];
    const cand = standbys.get(candName)!;
    const follower = standbys.get(other)!;
    const promoted = await cand.promote();
    t.diagnostic(`promoted ${candName} in ${Math.round(promoted.ms)} ms`);
    assert.equal((await cand.status()).timeline, 2);
    assert.equal((await cand.query('SELECT 1 FROM t WHERE id = 2')).rowCount, 1, 'the acknowledged commit survived the failover');

    // --- repoint the other standby; a commit on the new primary needs it (ANY 1 of p1, other)
    const re = await repointStandby(follower, { ...upstreamAt(cand.port), applicationName: other }, slotNameFor(other));
    t.diagnostic(`repointed ${other} to ${candName}: streaming in ${Math.round(re.ms)} ms`);
    const fst = await follower.status();
    assert.equal(fst.walReceiver?.senderPort, cand.port);
    await waitFor('the follower on timeline 2', async () => ((await follower.status()).timeline === 2 ? true : undefined));
    await within(cand.query(`INSERT INTO t VALUES (3, 'after failover')`), 10_000, `INSERT on the new primary still waiting for ${other} after 10 s`);
    await waitFor('row 3 on the follower', async () => ((await follower.query('SELECT 1 FROM t WHERE id = 3')).rowCount === 1 ? true : undefined));
    const newRep = await cand.query<{ application_name: string; sync_state: string }>('SELECT application_name, sync_state FROM pg_stat_replication');
    assert.deepEqual(
      newRep.rows.map((r) => [r.application_name, r.sync_state]),
      [[other, 'quorum']],
    );
  } finally {
    for (const c of clients) await c.end().catch(() => {});
    for (const s of standbys.values()) {
      if (s.isRunning()) await s.stop('immediate', { timeoutMs: 10_000 }).catch(() => {});
    }
    await primary.cleanup();
  }
});
