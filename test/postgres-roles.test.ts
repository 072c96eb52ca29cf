// Changing roles on three real Postgres 17 nodes (issue 4, acceptance 1):
// switchover both ways with no acknowledged write lost; an old primary that shut
// down cleanly rejoins as a standby without a re-clone; one whose WAL went past
// the fork point is detected and re-cloned automatically; `ogel reinit` re-clones
// a standby on request. One cluster walks through the scenarios in order.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { slotNameFor } from '../src/postgres/settings.js';
import { resolvePostgresBinaries } from '../src/postgres/binaries.js';
import { PostgresInstance } from '../src/postgres/instance.js';
import { ensurePostgresUser } from '../src/postgres/os-user.js';
import { DaemonCluster } from './helpers/daemons.js';
import { pgView, waitHealthy, type PgView } from './helpers/pg-health.js';
import { adminPassword } from '../src/auth/passwords.js';

describe('role changes: switchover, rejoin, re-clone, reinit', () => {
  let c: DaemonCluster;
  let password: string;
  let nextRow = 1;
  const acked: number[] = [];

  before(async () => {
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], 'postgres:\n  leaseMs: 1000\n');
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => c.destroy());

  const view = (): Promise<PgView> => pgView(c);

  async function connect(id: string): Promise<pg.Client> {
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(id)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  async function query<T extends pg.QueryResultRow>(id: string, sql: string, values: unknown[] = []): Promise<T[]> {
    const client = await connect(id);
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  const healthy = (what: string): Promise<PgView> => waitHealthy(c, password, what);

  /** Acknowledged inserts on the primary (each waits for a standby: ANY 1). */
  async function writeRows(primary: string, count: number): Promise<void> {
    const client = await connect(primary);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS acked (n int primary key)');
      for (let i = 0; i < count; i++) {
        await client.query('INSERT INTO acked VALUES ($1)', [nextRow]);
        acked.push(nextRow++);
      }
    } finally {
      await client.end();
    }
  }

  async function assertAllAcked(id: string): Promise<void> {
    const rows = await query<{ n: number }>(id, 'SELECT n FROM acked ORDER BY n');
    assert.deepEqual(
      rows.map((r) => r.n),
      acked,
      `every acknowledged row is on ${id}`,
    );
  }

  /** Until `id` has replayed every acknowledged row (it streams from the primary). */
  async function caughtUp(id: string): Promise<void> {
    await c.waitFor(
      async () => {
        try {
          const rows = await query<{ n: number }>(id, 'SELECT count(*)::int AS n FROM acked');
          return rows[0]?.n === acked.length;
        } catch {
          return false;
        }
      },
      `${id} to replay every acknowledged row`,
      15_000,
    );
  }

  /** Until another node is the writable primary of the next generation; returns it. */
  async function failedOver(before: PgView, old: string, what: string): Promise<string> {
    let next = '';
    await c.waitFor(
      async () => {
        try {
          const w = await view();
          next = w.primary ?? '';
          // Writable: a fenced primary (before its first renewal) refuses connections.
          const promoted = w.generation === before.generation + 1 && next !== '' && next !== old && w.nodes[next]?.reportedRole === 'primary';
          return promoted && w.lease?.holder === next && w.lease.renewalSeq >= 1 && (await c.get(next, '/primary', null)).status === 200;
        } catch {
          return false;
        }
      },
      what,
      30_000,
    );
    return next;
  }

  const logOf = (id: string) => c.nodes.get(id)!.log.join('\n');

  it('bootstraps, then switches over to a named standby and back, losing nothing', async () => {
    const v1 = await healthy('a healthy cluster');
    const first = v1.primary!;
    await writeRows(first, 50);
    const target = ['n1', 'n2', 'n3'].find((id) => id !== first)!;

    const r = await c.cli(['switchover', '--to', target, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { from: string; to: string; generation: number; pauseMs: number };
    assert.equal(result.from, first);
    assert.equal(result.to, target);
    assert.equal(result.generation, v1.generation + 1);
    assert.ok(result.pauseMs > 0 && result.pauseMs < 10_000, `pause ${result.pauseMs} ms`);

    const v2 = await healthy('the old primary streaming from the new one');
    assert.equal(v2.primary, target);
    await assertAllAcked(target);
    await writeRows(target, 20);
    await caughtUp(first);
    await c.waitFor(async () => /rejoined: following the primary/.test(logOf(first)), `${first}'s rejoin to be logged`, 15_000);
    assert.doesNotMatch(logOf(first), /re-cloning/, 'a clean switchover needs no re-clone');

    // And back, with the human output.
    const back = await c.cli(['switchover', '--to', first]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, new RegExp(`switchover ${target} -> ${first}: generation ${v1.generation + 2}, write pause \\d+ ms`));
    const v3 = await healthy('healthy after switching back');
    assert.equal(v3.primary, first);
    await assertAllAcked(first);
    await writeRows(first, 10);
    const history = (await c.cli(['history', '--json'])).stdout;
    assert.match(history, /switchover/);
    process.stderr.write(`switchover pause: ${result.pauseMs} ms there, ${back.stdout.trim()}\n`);
  });

  it('a switchover is refused with a clear error for a bad target', async () => {
    const v = await view();
    const self = await c.cli(['switchover', '--to', v.primary!]);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /already the primary/);
    const unknown = await c.cli(['switchover', '--to', 'n9']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /n9: no such member/);
    const live = await c.cli(['failover']);
    assert.equal(live.code, 1);
    assert.match(live.stderr, /holds a valid lease.*\n.*switchover/s);
  });

  it('an old primary stopped cleanly rejoins as a standby after the failover, without a re-clone', async () => {
    const v = await healthy('healthy');
    const old = v.primary!;
    await writeRows(old, 30);
    await c.terminate(old); // SIGTERM: the daemon stops Postgres with a fast (clean) shutdown
    const next = await failedOver(v, old, 'a failover after the clean stop');
    await assertAllAcked(next);
    const mark = c.nodes.get(old)!.log.length;
    await c.start(old);
    await healthy('the old primary rejoined');
    // Streaming shows in the status a moment before the agent has seen it hold and logs it.
    await c.waitFor(
      async () =>
        c.nodes
          .get(old)!
          .log.slice(mark)
          .some((l) => /rejoined: following the primary/.test(l)),
      `${old}'s rejoin to be logged`,
      15_000,
    );
    const since = c.nodes.get(old)!.log.slice(mark).join('\n');
    assert.doesNotMatch(since, /re-cloning/);
    await writeRows(next, 10);
    await caughtUp(old);
  });

  it('an old primary whose WAL went past the fork point is re-cloned automatically', async () => {
    const v = await healthy('healthy');
    const old = v.primary!;
    await writeRows(old, 20);
    await c.kill9(old); // the death guard stops its Postgres too (SIGQUIT: no clean shutdown)
    const next = await failedOver(v, old, 'a failover after kill -9');
    await assertAllAcked(next);

    // While its daemon is down, the old primary's Postgres takes a write that no
    // standby ever sees: its WAL now goes past the new timeline's fork point.
    const dataDir = c.postgresSocketDir(old);
    await c.waitFor(async () => !existsSync(`${dataDir}/postmaster.pid`), 'the old postmaster to exit', 15_000);
    const inst = new PostgresInstance({ dataDir, port: c.nodes.get(old)!.postgresPort, binaries: resolvePostgresBinaries(), user: ensurePostgresUser() });
    await inst.start();
    try {
      await inst.query('BEGIN READ WRITE; SET LOCAL synchronous_commit = local; INSERT INTO acked VALUES (-1); COMMIT');
    } finally {
      await inst.stop('fast');
    }

    const mark = c.nodes.get(old)!.log.length;
    await c.start(old);
    await healthy('the diverged old primary re-cloned and streaming');
    const since = c.nodes.get(old)!.log.slice(mark).join('\n');
    assert.match(since, /diverged from the primary: re-cloning/);
    assert.match(since, /past [0-9A-F]+\/[0-9A-F]+ where the primary's timeline \d+ forked off/);
    assert.ok(existsSync(`${dataDir}.previous/PG_VERSION`), 'the diverged data directory is kept aside');
    await writeRows(next, 10);
    await caughtUp(old);
    const rows = await query<{ n: number }>(old, 'SELECT count(*)::int AS n FROM acked WHERE n = -1');
    assert.equal(rows[0]?.n, 0, 'the write past the fork point is gone with the re-clone');
  });

  it('ogel reinit re-clones a standby on request', async () => {
    const v = await healthy('healthy');
    const standby = Object.keys(v.nodes).find((id) => id !== v.primary)!;
    const refused = await c.cli(['reinit', v.primary!, '--yes']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is the primary/);
    const mark = c.nodes.get(standby)!.log.length;
    const r = await c.cli(['reinit', standby, '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { role: string }).role, 'recloning');
    await c.waitFor(
      async () =>
        c.nodes
          .get(standby)!
          .log.slice(mark)
          .some((l) => /re-cloned: standby again/.test(l)),
      `${standby} to re-clone`,
      60_000,
    );
    await healthy('healthy after the reinit');
    await writeRows(v.primary!, 5);
    await caughtUp(standby);
  });

  it('a standby that fell behind the WAL the primary keeps is re-cloned automatically', async () => {
    // As after a failover with a node cut off: the new primary has no slot for it,
    // and recycles the WAL it would need to catch up.
    const v = await healthy('healthy');
    const primary = v.primary!;
    const standby = Object.keys(v.nodes).find((id) => id !== primary)!;
    await c.terminate(standby);
    await query(primary, 'ALTER SYSTEM SET wal_keep_size = 0');
    await query(primary, 'SELECT pg_reload_conf()');
    await query(primary, 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slotNameFor(standby)]);
    for (let i = 0; i < 4; i++) {
      await writeRows(primary, 3);
      await query(primary, 'SELECT pg_switch_wal()');
      await query(primary, 'CHECKPOINT');
    }
    // The WAL archive's slot keeps WAL until it is archived (I6): once it has moved on,
    // a checkpoint recycles what the standby would need.
    const end = (await query<{ l: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await c.waitFor(
      async () =>
        (
          await query<{ ok: boolean }>(primary, "SELECT restart_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'ogel_wal_archive'", [end])
        )[0]?.ok === true,
      'the WAL archive to pass the writes',
      30_000,
    );
    await query(primary, 'SELECT pg_switch_wal()');
    await query(primary, 'CHECKPOINT');
    const mark = c.nodes.get(standby)!.log.length;
    await c.start(standby);
    await c
      .waitFor(
        async () =>
          c.nodes
            .get(standby)!
            .log.slice(mark)
            .some((l) => /re-cloned: standby again/.test(l)),
        `${standby} to find its WAL gone and re-clone`,
        90_000,
      )
      .catch((e: Error) => {
        throw new Error(
          `${e.message}; its log since the restart:\n${c.nodes
            .get(standby)!
            .log.slice(mark)
            .filter((l) => !/skipping special/.test(l))
            .slice(-25)
            .join('\n')}`,
        );
      });
    assert.ok(
      c.nodes
        .get(standby)!
        .log.slice(mark)
        .some((l) => /the primary no longer has the WAL this standby needs: re-cloning/.test(l)),
    );
    await query(primary, 'ALTER SYSTEM RESET wal_keep_size');
    await query(primary, 'SELECT pg_reload_conf()');
    await healthy('healthy after the re-clone');
    await writeRows(primary, 5);
    await caughtUp(standby);
    await assertAllAcked(standby);
  });
});
