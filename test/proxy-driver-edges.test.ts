// Proxy defects found with real drivers (node-postgres) against a real Postgres
// 17, each compared with what the same client sees connected directly:
// - an early Terminate (connect(); end() at once) closes silently;
// - pg_terminate_backend() stops a query in transaction mode (no silent rerun);
// - a pooled server connection that Postgres closed while idle is not handed to
//   a client, nor reported as a failover;
// - session mode delivers a server's FATAL once;
// - a named prepared statement works after a schema change in transaction mode.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { makeAppPostgres, SERVER_PASSWORD, startProxy, TENANT, type ProxyFixture } from './helpers/proxy.js';
import type { TempPrimary } from './helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A query's error (or null), caught at once so no rejection goes unhandled while the test acts. */
const outcome = (q: Promise<unknown>): Promise<(Error & { code?: string }) | null> =>
  q.then(
    () => null,
    (e: Error) => e,
  );

describe('proxy with real drivers: edges that must behave as Postgres does', { timeout: 120_000 }, () => {
  let pgsrv: TempPrimary;
  let tx: ProxyFixture;
  let session: ProxyFixture;
  const clients: pg.Client[] = [];

  before(async () => {
    pgsrv = await makeAppPostgres();
    tx = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 1 } });
    session = await startProxy({ pg: pgsrv, pool: { mode: 'session', defaultPoolSize: 2 } });
  });
  after(async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    await tx?.cleanup();
    await session?.cleanup();
    await pgsrv?.cleanup();
  });

  const directConfig = () => ({ host: '127.0.0.1', port: pgsrv.port, user: TENANT, password: SERVER_PASSWORD, database: TENANT });

  /** A connected client (direct, or through a proxy) whose error events are counted. */
  async function client(config: pg.ClientConfig): Promise<{ c: pg.Client; errors: Error[] }> {
    const c = new pg.Client(config);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await c.connect();
    clients.push(c);
    return { c, errors };
  }

  /** Runs fn on a direct connection to the app database. */
  async function direct<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client(directConfig());
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  /** The pid of the backend running `text` (waits until it runs). */
  async function backendRunning(text: string): Promise<number> {
    for (let i = 0; i < 200; i++) {
      const r = await pgsrv.pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [text]);
      if (r.rows[0]) return r.rows[0].pid;
      await sleep(10);
    }
    throw new Error(`no backend runs ${text}`);
  }

  async function terminate(pid: number): Promise<void> {
    await pgsrv.pg.query('SELECT pg_terminate_backend($1)', [pid]);
  }

  it('an early Terminate (connect() then end() at once) closes silently, as Postgres does', { timeout: 20_000 }, async () => {
    for (const config of [directConfig(), tx.clientConfig()]) {
      const c = new pg.Client(config);
      const errors: Error[] = [];
      c.on('error', (e) => errors.push(e));
      void outcome(c.connect());
      // Not awaited: node-postgres's end() never resolves after an early Terminate, even directly.
      void outcome(c.end());
      await sleep(300);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
        `no error event (port ${config.port})`,
      );
    }
    // On the wire: the proxy sends nothing back and closes.
    const s = net.connect(tx.port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.write(Buffer.from([0x58, 0, 0, 0, 4]));
    await new Promise<void>((r) => s.once('close', () => r()));
    assert.equal(Buffer.concat(got).length, 0, `nothing sent back: ${Buffer.concat(got).toString('latin1')}`);
  });

  it('pg_terminate_backend() stops a query in transaction mode: the client gets 57P01 at once, nothing runs again', { timeout: 20_000 }, async () => {
    const { c } = await client(tx.clientConfig());
    const retried = tx.proxy.stats().counters.retried;
    const text = 'select pg_sleep(2) -- terminate me';
    const q = outcome(c.query(text));
    const pid = await backendRunning(text);
    const t0 = performance.now();
    await terminate(pid);
    const e = await q;
    const tookMs = performance.now() - t0;
    assert.equal(e?.code, '57P01', `the server's own error, not a rerun (${e?.message})`);
    assert.ok(tookMs < 1_500, `at once (${Math.round(tookMs)} ms)`);
    assert.doesNotMatch(e!.message, /failover/);
    assert.equal(tx.proxy.stats().counters.retried, retried, 'not run again');
    // The session goes on.
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  });

  it('a pooled server connection terminated while idle: the next transaction runs on another one, with no failover error', { timeout: 20_000 }, async () => {
    const { c } = await client(tx.clientConfig());
    await c.query('SELECT 1');
    const idle = await pgsrv.pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE usename = $1 AND datname = $1 AND state = 'idle'", [TENANT]);
    assert.ok(idle.rows.length > 0, 'a pooled idle backend');
    for (const r of idle.rows) await terminate(r.pid);
    // Once the backend is gone, the proxy has seen its FATAL on the idle connection: never handed out.
    for (let i = 0; i < 200; i++) {
      const left = await pgsrv.pg.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])', [idle.rows.map((r) => r.pid)]);
      if (left.rows.length === 0) break;
      await sleep(10);
    }
    await sleep(20);
    const e = await outcome(c.query('SELECT 1'));
    assert.equal(e, null, `no error (${e?.message})`);
    // Terminated just as a transaction takes it: the server's 57P01 then cannot be told from an
    // operator stopping that transaction (the same message), so the client may get it; never a failover.
    await c.query('SELECT 1');
    const busy = await pgsrv.pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE usename = $1 AND datname = $1 AND state = 'idle'", [TENANT]);
    const racing = outcome(c.query('SELECT 1'));
    for (const r of busy.rows) await terminate(r.pid);
    const raced = await racing;
    assert.ok(raced === null || raced.code === '57P01', `${raced?.code} ${raced?.message}`);
    assert.doesNotMatch(raced?.message ?? '', /failover/);
  });

  it('a pooled server connection closed by idle_session_timeout (57P05): the next transaction runs on another one', { timeout: 20_000 }, async () => {
    await pgsrv.pg.query(`ALTER ROLE ${TENANT} IN DATABASE ${TENANT} SET idle_session_timeout = '200ms'`);
    const f = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 1 } });
    try {
      const { c } = await client(f.clientConfig());
      for (let i = 0; i < 3; i++) {
        await sleep(400); // the pooled server connection times out meanwhile
        const e = await outcome(c.query('SELECT 1'));
        assert.equal(e, null, `no error (${e?.message})`);
      }
      // The race: a transaction handed the connection as the server times it out
      // (its FATAL 57P05 arrives after the proxy sent the query). Nothing ran there.
      for (let i = 0; i < 40; i++) {
        await sleep(190 + (i % 21)); // around the timeout (200 ms), counted from the last query's end
        const e = await outcome(c.query('SELECT 1'));
        assert.equal(e, null, `no error at round ${i} (${e?.code} ${e?.message})`);
      }
    } finally {
      await pgsrv.pg.query(`ALTER ROLE ${TENANT} IN DATABASE ${TENANT} RESET idle_session_timeout`);
      await f.cleanup();
    }
  });

  it("session mode delivers a server's FATAL once, as Postgres does: the query queued behind gets 'Connection terminated unexpectedly'", {
    timeout: 20_000,
  }, async () => {
    const seen: string[] = [];
    for (const config of [directConfig(), session.clientConfig()]) {
      const { c, errors } = await client(config);
      const text = `select pg_sleep(5) -- session ${config.port}`;
      const running = outcome(c.query(text));
      const queued = outcome(c.query('SELECT 1'));
      await terminate(await backendRunning(text));
      const [a, b] = [await running, await queued];
      await sleep(100);
      seen.push(JSON.stringify({ running: a?.code ?? a?.message, queued: b?.code ?? b?.message, errorEvents: errors.length }));
    }
    assert.equal(seen[1], seen[0], 'through the proxy as directly');
  });

  it('a named prepared statement works after a schema change (transaction mode, statements shared by text)', { timeout: 20_000 }, async () => {
    await direct((c) => c.query('CREATE TABLE IF NOT EXISTS shape (id int PRIMARY KEY); INSERT INTO shape VALUES (1) ON CONFLICT DO NOTHING'));
    const text = 'select * from shape where id = $1';
    const a = await client(tx.clientConfig());
    assert.deepEqual((await a.c.query({ name: 'a', text, values: [1] })).rows, [{ id: 1 }]);
    await direct((c) => c.query('ALTER TABLE shape ADD COLUMN note text'));
    const b = await client(tx.clientConfig());
    const e = await outcome(b.c.query({ name: 'b', text, values: [1] }));
    assert.equal(e, null, `no error (${e?.code} ${e?.message})`);
    assert.deepEqual((await b.c.query({ name: 'b', text, values: [1] })).rows, [{ id: 1, note: null }]);
    // The first client's statement: as directly, its plan changed result type (Postgres's own 0A000 would be
    // raised directly too), but after re-preparing it works.
    const again = await outcome(a.c.query({ name: 'a', text, values: [1] }));
    assert.ok(again === null || again.code === '0A000', `${again?.code} ${again?.message}`);
  });

  it('startup settings drivers send (statement_timeout, options=-c ...) apply to that client only, in both pooling modes, as directly', {
    timeout: 30_000,
  }, async () => {
    const settings = { statement_timeout: 1234, options: '-c lock_timeout=2s --default-transaction-isolation=repeatable\\ read' };
    const show =
      "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt, current_setting('default_transaction_isolation') AS iso";
    const d = await client({ ...directConfig(), ...settings });
    const want = (await d.c.query(show)).rows[0] as unknown;
    await d.c.end();
    assert.deepEqual(want, { st: '1234ms', lt: '2s', iso: 'repeatable read' });
    for (const [mode, proxy] of [
      ['transaction', tx],
      ['session', session],
    ] as const) {
      const a = await client({ ...proxy.clientConfig(), ...settings });
      assert.deepEqual((await a.c.query(show)).rows[0], want, mode);
      const e = await outcome(a.c.query('SELECT pg_sleep(3)'));
      assert.equal(e?.code, '57014', `${mode}: the statement timeout cancels it, as directly (${e?.message})`);
      // Another client of the same tenant (in transaction mode, on the same pooled server connection) runs with its own settings.
      const b = await client(proxy.clientConfig());
      assert.deepEqual((await b.c.query(show)).rows[0], { st: '0', lt: '0', iso: 'read committed' }, mode);
      assert.deepEqual((await a.c.query(show)).rows[0], want, `${mode}: and the first client still with its own`);
      await a.c.end();
      await b.c.end();
    }
    // What would cross the line between roles, or the proxy's routing, is refused with the name.
    const refused = await outcome(client({ ...tx.clientConfig(), options: '-c role=postgres' }));
    assert.equal(refused?.code, '08P01');
    assert.match(refused?.message ?? '', /"role" is not allowed through the proxy/);
  });

  it("a client's session settings (SET, set_config, RESET) follow it across pooled server connections and never reach another client (transaction mode)", {
    timeout: 30_000,
  }, async () => {
    const show = "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt, current_setting('search_path') AS sp";
    const a = await client(tx.clientConfig());
    const b = await client(tx.clientConfig());
    // One server connection (pool size 1): a and b take turns on it.
    await a.c.query("SET statement_timeout = '7s'");
    await a.c.query('SET search_path = app_x, public');
    assert.deepEqual((await b.c.query(show)).rows[0], { st: '0', lt: '0', sp: '"$user", public' }, 'nothing of a reaches b');
    await b.c.query("SELECT set_config('lock_timeout', '4s', false)");
    assert.deepEqual((await a.c.query(show)).rows[0], { st: '7s', lt: '0', sp: 'app_x, public' }, "a keeps its own, and not b's");
    // A SET undone by its transaction's rollback is undone, as in Postgres.
    await a.c.query("BEGIN; SET statement_timeout = '3s'; ROLLBACK");
    assert.equal((await a.c.query(show)).rows[0].st, '7s');
    await a.c.query('RESET statement_timeout');
    assert.deepEqual((await a.c.query(show)).rows[0], { st: '0', lt: '0', sp: 'app_x, public' });
    assert.deepEqual((await b.c.query(show)).rows[0], { st: '0', lt: '4s', sp: '"$user", public' });
    // And with the extended protocol (a prepared statement that sets).
    await b.c.query({ name: 'set-it', text: "SELECT set_config('statement_timeout', '2s', false)" });
    assert.equal((await a.c.query(show)).rows[0].st, '0');
    assert.equal((await b.c.query(show)).rows[0].st, '2s');
    await a.c.end();
    await b.c.end();
  });
});
