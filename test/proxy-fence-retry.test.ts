// When the proxy runs a transaction again on the next primary (docs/proxy.md,
// Failover), with a StaticRouter standing in for the state machine and two real
// Postgres 17 servers for the old and the new primary. The old primary is fenced
// as a switchover does it (src/postgres/instance.ts): refuseNewWrites first (new
// sessions refused, new transactions read-only while open ones drain),
// endClientSessions later.
// - moved: a transaction whose client saw nothing but its BEGIN answered, whose
//   first statement was refused as read-only by the fence (simple and extended
//   protocol, named statements too); a one-statement transaction likewise; both
//   also when the view names a new primary that is still being promoted;
// - not moved: a transaction whose client saw a result, a transaction that
//   already wrote when its server was ended, a read-only transaction's own 25006.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { makeAppPostgres, SERVER_PASSWORD, startProxy, TENANT, type ProxyFixture } from './helpers/proxy.js';
import { StaticRouter } from '../src/proxy/router.js';
import { PostgresInstance } from '../src/postgres/instance.js';
import { readReplicationPassword, REPLICATION_ROLE, slotNameFor } from '../src/postgres/settings.js';
import { createStandby } from '../src/postgres/standby.js';
import { freePort, waitFor, type TempPrimary } from './helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A query's error (or null), caught at once so no rejection goes unhandled while the test acts. */
const outcome = (q: Promise<unknown>): Promise<(Error & { code?: string }) | null> =>
  q.then(
    () => null,
    (e: Error) => e,
  );

describe('proxy: moving a transaction off a fenced primary', { timeout: 120_000 }, () => {
  let a: TempPrimary;
  let b: TempPrimary;
  let router: StaticRouter;
  let f: ProxyFixture;
  const target = (p: TempPrimary, node: string, generation: number) => ({ node, host: '127.0.0.1', port: p.port, generation });
  let generation = 1;
  const clients: pg.Client[] = [];

  before(async () => {
    [a, b] = await Promise.all([makeAppPostgres(), makeAppPostgres()]);
    for (const p of [a, b]) await direct(p, (c) => c.query('CREATE TABLE moves (n int PRIMARY KEY, how text)'));
    router = new StaticRouter(target(a, 'a', generation));
    f = await startProxy({ pg: a, router, pool: { mode: 'transaction', defaultPoolSize: 4, holdTimeoutMs: 3_000 } });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    // Both writable again, the proxy on `a`, for the next test.
    await Promise.all([a.pg.setReadOnly(false), b.pg.setReadOnly(false)]);
    router.set(target(a, 'a', ++generation));
  });
  after(async () => {
    await f?.cleanup();
    await Promise.all([a?.cleanup(), b?.cleanup()]);
  });

  /** Runs fn on a direct connection to the app database of p (not through the proxy). */
  async function direct<T>(p: TempPrimary, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: TENANT, password: SERVER_PASSWORD, database: TENANT });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }
  const rowsOn = async (p: TempPrimary, how: string) =>
    (await direct(p, (c) => c.query<{ n: number }>('SELECT n FROM moves WHERE how = $1 ORDER BY n', [how]))).rows.map((r) => r.n);

  async function client(): Promise<pg.Client> {
    const c = new pg.Client(f.clientConfig());
    c.on('error', () => {});
    await c.connect();
    clients.push(c);
    return c;
  }

  /** The switchover as the proxy sees it: after `ms`, the view names b, a generation later. */
  function switchToB(ms: number): Promise<void> {
    return sleep(ms).then(() => router.set(target(b, 'b', ++generation)));
  }

  it('BEGIN answered, then the first statement refused by the fence: the transaction moves to the new primary, invisibly', async () => {
    const c = await client();
    await a.pg.refuseNewWrites();
    const retried = f.proxy.stats().counters.retried;
    await c.query('BEGIN'); // on a, read-only now (the drain)
    const t0 = performance.now();
    const moved = switchToB(200);
    // Extended protocol, named statement: it must be prepared again on b.
    await c.query({ name: 'ins', text: 'INSERT INTO moves VALUES ($1, $2)', values: [1, 'extended'] });
    assert.ok(performance.now() - t0 >= 190, 'it waited for the new primary');
    await moved;
    await c.query({ name: 'ins', text: 'INSERT INTO moves VALUES ($1, $2)', values: [2, 'extended'] });
    const port = (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;
    await c.query('COMMIT');
    assert.equal(port, b.port, 'the whole transaction ran on b');
    assert.deepEqual(await rowsOn(b, 'extended'), [1, 2]);
    await a.pg.setReadOnly(false); // let the test look (the fence refuses TCP clients)
    assert.deepEqual(await rowsOn(a, 'extended'), [], 'nothing on the fenced primary');
    assert.ok(f.proxy.stats().counters.retried > retried);
    // The client's statement table is intact: the name is still its own.
    await c.query({ name: 'ins', text: 'INSERT INTO moves VALUES ($1, $2)', values: [3, 'extended'] });
    assert.deepEqual(await rowsOn(b, 'extended'), [1, 2, 3]);
  });

  it('the simple protocol too, the BEGIN run again as the client wrote it, and a one-statement transaction', async () => {
    const c = await client();
    const one = await client();
    await a.pg.refuseNewWrites();
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const moved = switchToB(150);
    const [inBlock, single] = await Promise.all([
      outcome(c.query("INSERT INTO moves VALUES (10, 'simple')")),
      outcome(one.query("INSERT INTO moves VALUES (11, 'simple')")),
    ]);
    assert.equal(inBlock, null);
    assert.equal(single, null);
    await moved;
    const iso = (await c.query<{ i: string }>("SELECT current_setting('transaction_isolation') AS i")).rows[0]!.i;
    await c.query('COMMIT');
    assert.equal(iso, 'repeatable read', 'the BEGIN ran again as the client wrote it');
    assert.deepEqual(await rowsOn(b, 'simple'), [10, 11]);
    await a.pg.setReadOnly(false);
    assert.deepEqual(await rowsOn(a, 'simple'), []);
  });

  it('BEGIN answered, then the hard fence ends the session while the client is idle in its block: it moves too', async () => {
    const c = await client();
    await a.pg.refuseNewWrites();
    await c.query('BEGIN');
    await a.pg.endClientSessions(); // the proxy's server connection is terminated (57P01)
    await sleep(50);
    const moved = switchToB(100);
    await c.query("INSERT INTO moves VALUES (20, 'idle')");
    await moved;
    await c.query('COMMIT');
    assert.deepEqual(await rowsOn(b, 'idle'), [20]);
  });

  it('the view names a new primary that is still being promoted: writes wait for the promotion, then run there', async () => {
    // A standby of b, as a switchover's target is until pg_promote is done (its first
    // lease renewal can commit, and the view calls it writable, just before).
    const dir = join(b.root, 'standby');
    await createStandby({
      primary: { host: '127.0.0.1', port: b.port, password: readReplicationPassword(b.dataDir) },
      replicationUser: REPLICATION_ROLE,
      slotName: slotNameFor('s'),
      targetDir: dir,
      owner: b.pg.user,
      applicationName: 's',
      fsync: false,
    });
    const s = new PostgresInstance({ dataDir: dir, port: await freePort() });
    try {
      s.writeConfig({
        nodeId: 's',
        listenAddresses: ['127.0.0.1'],
        syncMode: 'async',
        syncQuorum: 1,
        peerNodeIds: [],
        replicationHosts: ['127.0.0.1'],
        parameters: { shared_buffers: '32MB', max_connections: 60, fsync: false },
      }); // as b's (a standby needs at least its primary's)
      await s.start({ timeoutMs: 15_000 });
      await waitFor('the standby accepts reads', async () =>
        (await s.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === true ? true : undefined,
      );
      const c = await client();
      const one = await client();
      router.set({ node: 's', host: '127.0.0.1', port: s.port, generation: ++generation });
      await c.query('BEGIN'); // a read-only transaction on the standby
      const inBlock = outcome(c.query('INSERT INTO moves VALUES ($1, $2)', [60, 'promoted']));
      const single = outcome(one.query("INSERT INTO moves VALUES (61, 'promoted')"));
      await sleep(200);
      await s.promote();
      assert.equal(await inBlock, null);
      assert.equal(await single, null);
      await c.query('COMMIT');
      const seen = (
        await one.query<{ p: number; ns: number[] }>("SELECT inet_server_port() AS p, array_agg(n ORDER BY n) AS ns FROM moves WHERE how = 'promoted'")
      ).rows[0]!;
      assert.deepEqual(seen, { p: s.port, ns: [60, 61] }, 'both ran on the promoted node');
    } finally {
      for (const c of clients.splice(0)) await c.end().catch(() => {});
      router.set(target(a, 'a', ++generation));
      if (s.isRunning()) await s.stop('immediate');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('not moved: the client saw a result; the 25006 is passed on and the block is aborted as Postgres would have it', async () => {
    const c = await client();
    await a.pg.refuseNewWrites();
    await c.query('BEGIN');
    await c.query('SELECT 1'); // the client has seen something of this transaction
    const e = await outcome(c.query("INSERT INTO moves VALUES (30, 'seen')"));
    assert.equal(e?.code, '25006');
    assert.equal((await outcome(c.query('SELECT 1')))?.code, '25P02', 'the block is aborted');
    await c.query('ROLLBACK');
    await a.pg.setReadOnly(false);
    assert.deepEqual(await rowsOn(a, 'seen'), []);
  });

  it('not moved: a transaction that already wrote when the hard fence ended it fails with the failover error', async () => {
    const c = await client();
    await c.query('BEGIN');
    await c.query("INSERT INTO moves VALUES (40, 'wrote')");
    await a.pg.refuseNewWrites();
    await a.pg.endClientSessions();
    await sleep(50);
    router.set(target(b, 'b', ++generation));
    const e = await outcome(c.query('COMMIT'));
    assert.equal(e?.code, '08006');
    assert.match(e!.message, /lost during this transaction/);
    await a.pg.setReadOnly(false);
    assert.deepEqual(await rowsOn(a, 'wrote'), []);
    assert.deepEqual(await rowsOn(b, 'wrote'), [], 'never run again elsewhere');
    // The session goes on, on the new primary.
    assert.equal((await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p, b.port);
  });

  it("not moved: a read-only transaction's own 25006 reaches the client, its block aborted, on a server that is not fenced", async () => {
    const c = await client();
    await c.query('BEGIN READ ONLY');
    const e = await outcome(c.query("INSERT INTO moves VALUES (50, 'ro')"));
    assert.equal(e?.code, '25006');
    assert.equal((await outcome(c.query('SELECT 1')))?.code, '25P02', 'the block is aborted');
    const r = await c.query('ROLLBACK');
    assert.equal(r.command, 'ROLLBACK');
    assert.deepEqual(await rowsOn(a, 'ro'), []);
  });
});
