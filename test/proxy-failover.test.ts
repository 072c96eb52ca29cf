// Holding clients through a change of primary (docs/proxy.md, Routing and
// Failover), with a StaticRouter standing in for the state machine and two real
// Postgres 17 servers standing in for the old and the new primary:
// - new transactions wait (bounded) while there is no writable primary, then run
//   on the new one; past holdTimeoutMs they fail with 57P03 naming the failover;
// - a transaction in flight on a lost server fails with an error naming the
//   failover, and the session carries on against the new primary;
// - a statement whose server backend was terminated before answering (a fence)
//   runs again on a server transparently;
// - after a generation change nothing reaches the old primary (I3).
// A server is lost here as the cluster loses it: fenced (fence() below, as the
// agent fences a primary whose lease lapses), stopped, or replaced in the view.
// A bare pg_terminate_backend() on a server that is not fenced, while the view
// still names it, is an operator stopping a query: the client gets the 57P01
// and nothing runs again (test/proxy-driver-edges).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { makeAppPostgres, startProxy, type ProxyFixture } from './helpers/proxy.js';
import { StaticRouter } from '../src/proxy/router.js';
import type { TempPrimary } from './helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A query's error (or null), caught at once so no rejection goes unhandled while the test acts. */
const outcome = (q: Promise<unknown>): Promise<(Error & { code?: string }) | null> =>
  q.then(
    () => null,
    (e: Error) => e,
  );
/**
 * The fence as the agent raises it on a primary whose lease lapses
 * (postgres/agent.ts enforceFence, postgres/instance.ts setReadOnly): pg_hba.conf
 * closed to TCP clients, read-only by ALTER SYSTEM, then every client session
 * terminated (57P01). The proxy's fresh connection (termination-check.ts) is
 * refused: the cluster ended the session.
 */
const fence = (p: TempPrimary) => p.pg.setReadOnly(true);
/** The fence lifted (the agent's enforceFence once the lease renewal commits): writable, open to TCP clients. */
const unfence = (p: TempPrimary) => p.pg.setReadOnly(false);
/** Whether a backend still runs on p. */
const alive = async (p: TempPrimary, pid: number) => (await p.pg.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rows.length > 0;

describe('proxy: holding clients through failover and switchover', { timeout: 120_000 }, () => {
  let a: TempPrimary;
  let b: TempPrimary;
  let router: StaticRouter;
  let f: ProxyFixture;
  const target = (p: TempPrimary, node: string, generation: number) => ({ node, host: '127.0.0.1', port: p.port, generation });

  before(async () => {
    [a, b] = await Promise.all([makeAppPostgres(), makeAppPostgres()]);
    router = new StaticRouter(target(a, 'a', 1));
    f = await startProxy({ pg: a, router, pool: { mode: 'transaction', defaultPoolSize: 2, holdTimeoutMs: 3_000 } });
  });
  after(async () => {
    await f?.cleanup();
    await Promise.all([a?.cleanup(), b?.cleanup()]);
  });

  async function client(): Promise<pg.Client> {
    const c = new pg.Client(f.clientConfig());
    c.on('error', () => {});
    await c.connect();
    return c;
  }
  const port = async (c: pg.Client) => (await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p;

  it('a new transaction waits while there is no primary, then runs on the new one', async () => {
    router.set(target(a, 'a', 1));
    const c = await client();
    try {
      assert.equal(await port(c), a.port);
      router.set(null, [], 'no primary after generation 1 (a failover or switchover is in progress)');
      const t0 = performance.now();
      const q = port(c);
      await sleep(300);
      router.set(target(b, 'b', 2));
      assert.equal(await q, b.port, 'the held transaction ran on the new primary');
      assert.ok(performance.now() - t0 >= 290, 'it waited for the new primary');
      // The session carries on against the new primary; the old primary's pool is retired.
      assert.equal(await port(c), b.port);
      await sleep(250); // the generation check runs every 100 ms
      const old = f.proxy.stats().pools.filter((p) => p.node === 'a');
      assert.ok(
        old.every((p) => p.idle === 0),
        'no idle connection to the old primary is kept',
      );
      assert.ok(f.proxy.stats().counters.held >= 1);
    } finally {
      await c.end();
    }
  });

  it('past holdTimeoutMs a held transaction fails with 57P03 naming the failover; the session goes on', async () => {
    router.set(target(b, 'b', 2));
    const c = await client();
    try {
      router.set(null, [], 'no primary after generation 2 (a failover or switchover is in progress)');
      const t0 = performance.now();
      await assert.rejects(c.query('SELECT 1'), (e: Error & { code?: string }) => {
        assert.equal(e.code, '57P03');
        assert.match(e.message, /holdTimeoutMs=3000.*failover or switchover/);
        return true;
      });
      assert.ok(performance.now() - t0 >= 2_900);
      router.set(target(a, 'a', 3));
      assert.equal(await port(c), a.port);
      // Extended protocol too (a Parse/Bind/Execute/Sync batch held, then failed).
      router.set(null);
      await assert.rejects(c.query('SELECT $1::int AS x', [1]), /57P03|holdTimeoutMs/);
      router.set(target(a, 'a', 3));
      assert.deepEqual((await c.query('SELECT $1::int AS x', [7])).rows, [{ x: 7 }]);
    } finally {
      await c.end();
    }
  });

  it('a transaction in flight on a lost server fails with an error naming the failover; the next one runs', async () => {
    router.set(target(a, 'a', 3));
    const c = await client();
    try {
      await c.query('BEGIN');
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const q = outcome(c.query('SELECT pg_sleep(10)'));
      await sleep(200);
      // The old primary is lost: fenced (its lease lapsed), which terminates the
      // backend running the statement; the view names the new primary later.
      await fence(a);
      assert.equal(await alive(a, pid), false, 'the fence ended the session');
      const e = await q;
      assert.equal(e?.code, '08006');
      assert.match(e.message, /lost during this transaction.*failover/);
      router.set(target(b, 'b', 4));
      assert.equal(await port(c), b.port, 'the session carries on against the new primary');
      assert.ok(f.proxy.stats().counters.failedInFlight >= 1);
    } finally {
      await c.end();
      await unfence(a); // a is the primary again in later tests
    }
  });

  it('idle in a transaction when the server is lost: the next statement fails instead of running outside the transaction', async () => {
    router.set(target(b, 'b', 4));
    const c = await client();
    try {
      await c.query('BEGIN');
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // The server is lost while the client is idle in its block: fenced (its lease
      // lapsed), which ends the session holding the transaction.
      await fence(b);
      assert.equal(await alive(b, pid), false, 'the fence ended the session');
      await sleep(100);
      await assert.rejects(c.query('SELECT 1'), /lost during this transaction/);
      // The lease renewal commits after all: the agent lifts the fence (same
      // primary, same generation), and the session carries on there.
      await unfence(b);
      assert.deepEqual((await c.query('SELECT 2 AS two')).rows, [{ two: 2 }]);
    } finally {
      await c.end();
      await unfence(b);
    }
  });

  it('a statement whose backend was terminated before it answered runs again, transparently, and once', async () => {
    router.set(target(b, 'b', 4));
    const c = await client();
    /** The proxy decided to run the statement again (it asked the fenced server, and was refused). */
    const rerunDecided = async (n: number) => {
      for (let i = 0; f.proxy.stats().counters.retried < n; i++) {
        assert.ok(i < 500, 'the proxy saw the fence and decided to run the statement again');
        await sleep(10);
      }
    };
    try {
      await c.query('CREATE TABLE IF NOT EXISTS runs (n int)');
      await c.query('TRUNCATE runs');
      const retriedBefore = f.proxy.stats().counters.retried;
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // DO answers nothing until it is done (a SELECT would send its RowDescription first).
      const q = c.query('DO $$ BEGIN PERFORM pg_sleep(1); INSERT INTO runs VALUES (1); END $$');
      await sleep(150);
      // The fence (the lease about to lapse) terminates the backend running it; the
      // statement waits, refused by the fenced server, until the lease renewal
      // commits and the fence is lifted (same primary, same generation).
      await fence(b);
      assert.equal(await alive(b, pid), false, 'the fence ended the session');
      await rerunDecided(retriedBefore + 1);
      await unfence(b);
      await q;
      assert.equal(f.proxy.stats().counters.retried, retriedBefore + 1);
      assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM runs')).rows, [{ n: 1 }], 'the terminated run rolled back; the retry ran once');
      // The extended protocol: the server buffers ParseComplete, BindComplete and RowDescription until Sync;
      // a FATAL flushes them. The proxy held them back, so the retry is invisible.
      const pid2 = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const q2 = c.query<{ pid: number }>('SELECT pg_sleep($1::float8), pg_backend_pid() AS pid', [1]);
      await sleep(150);
      await fence(b);
      await rerunDecided(retriedBefore + 2);
      await unfence(b);
      assert.notEqual((await q2).rows[0]!.pid, pid2, 'it ran again on another server connection');
      assert.equal(f.proxy.stats().counters.retried, retriedBefore + 2);
    } finally {
      await c.end();
      await unfence(b);
    }
  });

  it('a server that vanishes (immediate stop) fails the transaction in flight, never runs it twice', async () => {
    router.set(target(b, 'b', 4));
    const c = await client();
    try {
      const q = outcome(c.query('SELECT pg_sleep(10)'));
      await sleep(200);
      await b.pg.stop('immediate');
      router.set(target(a, 'a', 5));
      assert.match((await q)?.message ?? 'no error', /lost during this transaction/);
      assert.equal(await port(c), a.port);
    } finally {
      await c.end();
    }
  });

  it('a transaction still running on the old primary when a new one is promoted fails at once, naming the failover', async () => {
    // As with a partitioned or paused old primary, which would never answer: the
    // statement here just runs on; the promotion (the view's new generation) ends it.
    router.set(target(a, 'a', 5));
    const c = await client();
    try {
      await c.query('BEGIN');
      const q = outcome(c.query('SELECT pg_sleep(30)'));
      // Promote only once the statement runs on the old primary (not a fixed sleep).
      for (let i = 0; ; i++) {
        const r = await a.pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'");
        if (r.rows[0]!.n > 0) break;
        assert.ok(i < 500, 'the statement reached the old primary');
        await sleep(10);
      }
      const t0 = performance.now();
      // The new primary: the same server under another name here (b was stopped by the test before).
      router.set(target(a, 'a2', 6));
      const e = await q;
      assert.ok(performance.now() - t0 < 2_000, 'failed at the promotion, not when the statement would have ended');
      assert.equal(e?.code, '08006');
      assert.match(
        e!.message,
        /the primary a \(generation 5\) was replaced by the primary of generation 6 while this transaction ran there.*outcome is unknown/,
      );
      assert.equal(await port(c), a.port, 'the next transaction runs on the new primary');
    } finally {
      await c.end();
      router.set(target(a, 'a', 7));
    }
  });

  it('a statement sent to a server already gone, before the proxy sees it close, fails once; the client is read again', async () => {
    router.set(target(a, 'a', 7));
    // The window between a server socket's end (its peer closed) and its close
    // event: a write to it is refused and it never drains. The proxy once paused
    // the client's reading for that drain, and the session hung for good. The
    // window is made wide here by delaying the close of the proxy's sockets to a.
    const c = await client();
    const ended = new WeakSet<net.Socket>();
    let sawEnd!: () => void;
    const serverEnded = new Promise<void>((r) => (sawEnd = r));
    const emit = net.Socket.prototype.emit;
    net.Socket.prototype.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'end' && this.remotePort === a.port && this.localPort !== undefined) {
        ended.add(this);
        sawEnd();
      }
      if (event === 'close' && ended.has(this)) {
        setTimeout(() => Reflect.apply(emit, this, [event, ...args]), 300);
        return true;
      }
      return Reflect.apply(emit, this, [event, ...args]) as boolean;
    } as typeof emit;
    try {
      await c.query('BEGIN');
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // The server is lost to a fence (its lease lapsed), which ends the session.
      await fence(a);
      assert.equal(await alive(a, pid), false, 'the fence ended the session');
      await serverEnded;
      const e = await outcome(c.query('SELECT 2'));
      assert.match(e?.message ?? 'no error', /lost during this transaction/);
      // The lease renewal commits after all: the fence is lifted, the session goes on there.
      await unfence(a);
      const next = c.query<{ three: number }>('SELECT 3 AS three');
      const hung = sleep(5_000).then(() => 'no answer within 5 s');
      assert.deepEqual(await Promise.race([next.then((r) => r.rows), hung]), [{ three: 3 }]);
    } finally {
      net.Socket.prototype.emit = emit;
      await c.end();
      await unfence(a);
    }
  });
});
