// Three ogel daemons bring up three real Postgres 17 nodes: the first primary is
// chosen and initialised, the others clone it and stream with quorum sync, and a
// client reaches the primary with the admin password and sees its writes on a standby.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { adminPassword } from '../src/auth/passwords.js';

interface PgView {
  primary: string | null;
  generation: number;
  lease: { holder: string; renewalSeq: number } | null;
  nodes: Record<string, { reportedRole: string; timeline: number }>;
}

describe('ogel daemons supervise real Postgres nodes', () => {
  let c: DaemonCluster;
  let password: string;
  before(async () => {
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], 'postgres:\n  leaseMs: 1000\n');
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => c.destroy());

  async function pgView(): Promise<PgView> {
    const leader = await c.waitForLeader();
    return ((await c.get(leader, '/v1/status')).body as { postgres: PgView }).postgres;
  }

  it('bootstraps a primary and two streaming standbys', async () => {
    await c.waitFor(
      async () => {
        const v = await pgView();
        const roles = Object.values(v.nodes)
          .map((n) => n.reportedRole)
          .sort();
        return v.primary !== null && roles.join(',') === 'primary,standby,standby';
      },
      'a primary and two standbys reported',
      60_000,
    );
    const v = await pgView();
    assert.equal(v.generation, 1);
    assert.equal(v.lease?.holder, v.primary);
    const table = await c.cli(['status']);
    assert.equal(table.code, 0, table.stderr);
    assert.equal((table.stdout.match(/\| standby /g) ?? []).length, 2, table.stdout);
    assert.equal((table.stdout.match(/\| primary /g) ?? []).length, 1, table.stdout);
    const seq = v.lease!.renewalSeq;
    await c.waitFor(async () => ((await pgView()).lease?.renewalSeq ?? 0) > seq, 'the lease to be renewed', 5_000);
  });

  it('health endpoints: /primary is 200 only on the primary, /replica on the standbys', async () => {
    const { primary } = await pgView();
    await c.waitFor(async () => (await c.get(primary!, '/primary', null)).status === 200, '/primary on the primary', 10_000);
    for (const id of [...c.nodes.keys()].filter((x) => x !== primary)) {
      assert.equal((await c.get(id, '/primary', null)).status, 503, `/primary on ${id}`);
      await c.waitFor(async () => (await c.get(id, '/replica?lag=104857600', null)).status === 200, `/replica on ${id}`, 10_000);
    }
  });

  it('a client connects to the primary with the admin password, and its writes reach a standby', async () => {
    const { primary } = await pgView();
    const p = c.nodes.get(primary!)!;
    const client = new pg.Client({ host: '127.0.0.1', port: p.postgresPort, user: 'postgres', password, database: 'postgres' });
    await client.connect();
    try {
      await client.query('CREATE TABLE IF NOT EXISTS t (id int primary key, v text)');
      await client.query("INSERT INTO t VALUES (1, 'replicated')");
      const gen = await client.query('SELECT generation FROM ogel.generation');
      assert.equal(Number(gen.rows[0].generation), 1);
      // A base backup's walsender (state 'backup': the schedule's first backup) is no standby.
      const sync = await client.query(
        "SELECT application_name, sync_state FROM pg_stat_replication WHERE state <> 'backup' AND application_name <> 'ogel-wal-archive' ORDER BY 1",
      );
      assert.deepEqual(
        sync.rows.map((r: { sync_state: string }) => r.sync_state),
        ['quorum', 'quorum'],
      );
    } finally {
      await client.end();
    }
    const standby = c.nodes.get([...c.nodes.keys()].find((x) => x !== primary)!)!;
    const reader = new pg.Client({ host: '127.0.0.1', port: standby.postgresPort, user: 'postgres', password, database: 'postgres' });
    await reader.connect();
    try {
      const r = await reader.query('SELECT v FROM t WHERE id = 1');
      assert.equal(r.rows[0]?.v, 'replicated');
      await assert.rejects(reader.query("INSERT INTO t VALUES (2, 'no')"), /read-only/);
    } finally {
      await reader.end();
    }
  });

  it("kill -9 of the primary's daemon: a standby is promoted and no acknowledged write is lost (I4)", async () => {
    const before = await pgView();
    const old = before.primary!;
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(old)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    await client.connect();
    await client.query('CREATE TABLE IF NOT EXISTS acked (n int primary key)');
    const acked: number[] = [];
    for (let n = 1; n <= 100; n++) {
      await client.query('INSERT INTO acked VALUES ($1)', [n]); // returns once a standby has it (ANY 1)
      acked.push(n);
    }
    await client.end();
    const t0 = performance.now();
    await c.kill9(old);
    let view: PgView | undefined;
    await c.waitFor(
      async () => {
        try {
          view = await pgView();
        } catch {
          return false;
        }
        return view.generation === before.generation + 1 && view.primary !== old && view.nodes[view.primary!]?.reportedRole === 'primary';
      },
      'a new primary of the next generation',
      30_000,
    );
    const next = view!.primary!;
    await c.waitFor(async () => (await c.get(next, '/primary', null)).status === 200, '/primary on the new primary', 15_000);
    const failoverMs = performance.now() - t0;
    const n2 = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(next)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    await n2.connect();
    try {
      const r = await n2.query('SELECT n FROM acked ORDER BY n');
      assert.deepEqual(
        r.rows.map((x: { n: number }) => x.n),
        acked,
        'every acknowledged write survived',
      );
      await n2.query('INSERT INTO acked VALUES (101)');
      const gen = await n2.query('SELECT generation FROM ogel.generation');
      assert.equal(Number(gen.rows[0].generation), before.generation + 1);
    } finally {
      await n2.end();
    }
    const history = (await c.get(next, '/v1/history')).body as { history: { generation: number; node: string; reason: string }[] };
    assert.match(history.history.at(-1)!.reason, /failover/);
    process.stderr.write(`failover took ${Math.round(failoverMs)} ms (kill -9 to a writable new primary)\n`);
  });

  it('a wrong password is refused', async () => {
    const { primary } = await pgView();
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(primary!)!.postgresPort, user: 'postgres', password: 'wrong', database: 'postgres' });
    await assert.rejects(client.connect(), /password authentication failed/);
  });
});
