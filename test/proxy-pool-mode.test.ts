// Pooling mode per connection (docs/proxy.md, Pooling): a proxy in transaction
// mode gives a client that asks with options=pool_mode=session a server
// connection of its own for its whole session, so LISTEN, temporary tables and
// session SET work as directly against Postgres, while the tenant's other
// clients stay in transaction mode. Checked with node-postgres on a real
// Postgres 17: with the tenant's pool at one server connection, a session-mode
// client pins it (a transaction-mode client waits until it leaves), and what it
// left on the connection (a temporary table, a setting, a LISTEN) is gone for
// the next client (DISCARD ALL). A bad value is refused at startup, naming it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startProxy, type ProxyFixture } from './helpers/proxy.js';

describe('proxy: pool_mode per connection', { timeout: 120_000 }, () => {
  let fx: ProxyFixture;

  before(async () => {
    fx = await startProxy({ pool: { mode: 'transaction', defaultPoolSize: 4 } });
  });
  after(async () => {
    await fx?.cleanup();
  });

  const sessionClient = () => new pg.Client(fx.clientConfig({ options: 'pool_mode=session' }));

  it('a session-mode client keeps one backend, its temporary table and settings across transactions; LISTEN gets NOTIFY', async () => {
    const s = sessionClient();
    const others = Array.from({ length: 3 }, () => new pg.Client(fx.clientConfig()));
    await Promise.all([s, ...others].map((c) => c.connect()));
    try {
      const pid = (await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await s.query('CREATE TEMPORARY TABLE scratch (n int)');
      await s.query(`SET application_name = 'session-client'`);
      await s.query('LISTEN ping');
      const heard = new Promise<string | undefined>((resolve) => s.once('notification', (n) => resolve(n.payload)));
      for (let i = 0; i < 10; i++) {
        // The transaction-mode clients keep the pool's other connections busy meanwhile.
        await Promise.all(others.map((o) => o.query('SELECT pg_sleep(0.01)')));
        await s.query('INSERT INTO scratch VALUES ($1)', [i]);
        assert.equal((await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid, pid, `statement ${i} on the same backend`);
      }
      assert.equal((await s.query<{ n: number }>('SELECT count(*)::int AS n FROM scratch')).rows[0]!.n, 10);
      assert.equal((await s.query<{ a: string }>("SELECT current_setting('application_name') AS a")).rows[0]!.a, 'session-client');
      await others[0]!.query(`NOTIFY ping, 'from a transaction-mode client'`);
      assert.equal(await heard, 'from a transaction-mode client');
    } finally {
      await Promise.all([s, ...others].map((c) => c.end()));
    }
  });

  it('with one server connection, a session-mode client pins it until it leaves; the next client finds it clean', async () => {
    const small = await startProxy({ pg: fx.pg, pool: { mode: 'transaction' }, poolSize: 1 });
    const s = new pg.Client(small.clientConfig({ options: 'pool_mode=session' }));
    const t = new pg.Client(small.clientConfig());
    try {
      await t.connect(); // first: a login takes a server connection for its welcome, and s keeps the only one from its own
      await s.connect();
      const pid = (await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await s.query('CREATE TEMPORARY TABLE mine (n int)');
      await s.query(`SET application_name = 'pinned'`);
      await s.query('LISTEN pinned_channel');
      let answered = false;
      const waiting = t.query<{ pid: number; app: string; temp: string | null; listening: number }>(
        `SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app, to_regclass('pg_temp.mine')::text AS temp,
                (SELECT count(*)::int FROM pg_listening_channels()) AS listening`,
      );
      void waiting.then(() => {
        answered = true;
      });
      // Several round trips of the session client: the transaction-mode client is still waiting.
      for (let i = 0; i < 5; i++) await s.query('SELECT pg_sleep(0.05)');
      assert.equal(answered, false, 'a transaction-mode client waits while the session-mode client holds the only server connection');
      await s.end();
      const r = (await waiting).rows[0]!;
      assert.equal(r.pid, pid, 'the same server connection, once the session-mode client left');
      assert.notEqual(r.app, 'pinned');
      assert.equal(r.temp, null, 'its temporary table is gone');
      assert.equal(r.listening, 0, 'its LISTEN is gone');
    } finally {
      await t.end().catch(() => {});
      await s.end().catch(() => {});
      await small.cleanup();
    }
  });

  it('in a session-mode proxy, a client that asks for transaction mode gets it: its named statements follow it across server connections', async () => {
    const sessionProxy = await startProxy({ pg: fx.pg, pool: { mode: 'session' }, poolSize: 2 });
    const t = new pg.Client(sessionProxy.clientConfig({ options: 'pool_mode=transaction' }));
    const holder = new pg.Client(sessionProxy.clientConfig({ options: 'pool_mode=transaction' }));
    try {
      await t.connect();
      await holder.connect();
      const byName = { name: 'pid_of', text: 'SELECT pg_backend_pid() AS pid, $1::int AS n' };
      const first = (await t.query<{ pid: number }>({ ...byName, values: [1] })).rows[0]!.pid;
      // The holder's open block takes the connection t just used (the idle one last given back): t's next run is elsewhere.
      await holder.query('BEGIN');
      const held = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const second = await t.query<{ pid: number; n: number }>({ ...byName, values: [2] });
      assert.equal(second.rows[0]!.n, 2);
      assert.equal(held, first, 'the holder took the connection the statement was prepared on');
      assert.notEqual(second.rows[0]!.pid, first, 'so the statement ran again on another server connection');
      await holder.query('COMMIT');
    } finally {
      await t.end().catch(() => {});
      await holder.end().catch(() => {});
      await sessionProxy.cleanup();
    }
  });

  it('an unknown pool_mode is refused at startup, naming the value and the choices', async () => {
    const c = new pg.Client(fx.clientConfig({ options: 'pool_mode=statement' }));
    c.on('error', () => {});
    await assert.rejects(c.connect(), (e: Error & { code?: string }) => {
      assert.equal(e.code, '08P01');
      assert.match(e.message, /invalid pool_mode in options: "statement"/);
      return true;
    });
  });
});
