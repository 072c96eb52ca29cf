// A 25006 (read-only) in a retry window makes the proxy suspect a fence, checked
// at the batch's ReadyForQuery (docs/proxy.md, Failover). The suspicion belongs
// to that run of that window: a window that ends without reaching its
// ReadyForQuery (the server lost between the error and the Sync, no rerun;
// the window given up by a Flush) must not leave it behind. Otherwise:
// - the client's NEXT transaction, a committed extended-protocol INSERT, is
//   taken for the suspect batch: the fence check finds the server writable and
//   runs the batch again there, so the INSERT commits twice;
// - a ReadyForQuery after a window given up keeps the server linked (the check
//   never runs without a window), so it is never given back to the pool.
//
// The 25006 is the role's own (ALTER ROLE ... SET default_transaction_read_only,
// read at the server connection's login); a raw client pipelines Parse, Bind,
// Execute without Sync, so the server's error comes before any ReadyForQuery.
// A real Postgres 17, the proxy in transaction mode with one server connection.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { CLIENT_PASSWORD, makeAppPostgres, SERVER_PASSWORD, startProxy, TENANT, type ProxyFixture } from './helpers/proxy.js';
import { login, msg, type Reader } from './helpers/wire.js';
import { waitFor, type TempPrimary } from './helpers/postgres.js';

const cstr = (s: string) => Buffer.from(`${s}\0`);
const i16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const parse = (sql: string) => msg('P', Buffer.concat([cstr(''), cstr(sql), i16(0)]));
const bind = () => msg('B', Buffer.concat([cstr(''), cstr(''), i16(0), i16(0), i16(0)]));
const execute = () => msg('E', Buffer.concat([cstr(''), Buffer.alloc(4)]));
const SYNC = msg('S');
const FLUSH = msg('H');

/** The SQLSTATE of an ErrorResponse body. */
function sqlstate(body: Buffer): string {
  for (const f of body.toString('utf8').split('\0')) if (f.startsWith('C')) return f.slice(1);
  return '';
}

/** The next n messages: their types, and the SQLSTATE of each error. */
async function read(r: Reader, n: number): Promise<{ types: string; codes: string[] }> {
  let types = '';
  const codes: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = await r.next(10_000);
    types += m?.type ?? '?';
    if (m?.type === 'E') codes.push(sqlstate(m.body));
  }
  return { types, codes };
}

describe('proxy: a fence suspicion ends with its window', { timeout: 120_000 }, () => {
  let p: TempPrimary;
  let f: ProxyFixture | null = null;

  before(async () => {
    p = await makeAppPostgres();
    await direct((c) => c.query('CREATE TABLE once (n int)'));
  });
  beforeEach(async () => {
    // The proxy's server connections log in read-only (source: the role's setting).
    await p.pg.query(`ALTER ROLE ${TENANT} SET default_transaction_read_only = on`);
    f = await startProxy({ pg: p, pool: { mode: 'transaction', defaultPoolSize: 1, queueTimeoutMs: 3_000 } });
  });
  afterEach(async () => {
    await f?.cleanup();
    f = null;
    await p.pg.query(`ALTER ROLE ${TENANT} RESET default_transaction_read_only`);
  });
  after(async () => p?.cleanup());

  async function direct<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: TENANT, password: SERVER_PASSWORD, database: TENANT });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }
  const count = async (n: number) => Number((await direct((c) => c.query<{ c: string }>('SELECT count(*) AS c FROM once WHERE n = $1', [n]))).rows[0]!.c);

  /** The proxy's server backend has run the pipelined `sql` into its 25006 (flushed at once) and waits for Sync. */
  async function refusedOnServer(sql: string): Promise<number> {
    return waitFor('the server refused the INSERT (25006) and waits for Sync', async () => {
      // Past its Execute, reading the next message: the statement is still its last.
      const r = await p.pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE usename = $1 AND query = $2 AND wait_event = 'ClientRead'", [
        TENANT,
        sql,
      ]);
      return r.rows[0]?.pid;
    });
  }

  it('the server lost between the 25006 and its Sync, no rerun: the next INSERT commits once', async () => {
    const { s, r } = await login(f!.port, { user: TENANT, database: TENANT }, CLIENT_PASSWORD);
    try {
      // No Sync: the server's 25006 arrives (held back: the window is open), its ReadyForQuery does not.
      s.write(Buffer.concat([parse('INSERT INTO once VALUES (1)'), bind(), execute()]));
      const pid = await refusedOnServer('INSERT INTO once VALUES (1)');
      // New server connections are writable; this one is ended by "an operator" (the
      // proxy asks the server, which answers as a writable primary): no rerun, the
      // client gets what the server said and the termination.
      await p.pg.query(`ALTER ROLE ${TENANT} RESET default_transaction_read_only`);
      await p.pg.query('SELECT pg_terminate_backend($1)', [pid]);
      const lost = await read(r, 4);
      assert.equal(lost.types, '12EE');
      assert.deepEqual(lost.codes, ['25006', '57P01']);
      s.write(SYNC);
      assert.equal((await read(r, 1)).types, 'Z');
      const retried = f!.proxy.stats().counters.retried;

      // The next transaction, on a new (writable) server connection.
      s.write(Buffer.concat([parse('INSERT INTO once VALUES (2)'), bind(), execute(), SYNC]));
      assert.equal((await read(r, 4)).types, '12CZ');
      assert.equal(await count(1), 0);
      assert.equal(await count(2), 1, 'the INSERT the client sent once committed once');
      assert.equal(f!.proxy.stats().counters.retried, retried, 'nothing ran again');
    } finally {
      s.destroy();
    }
  });

  it('the window given up (a Flush) between the 25006 and its Sync: the server is given back at the ReadyForQuery', async () => {
    const { s, r } = await login(f!.port, { user: TENANT, database: TENANT }, CLIENT_PASSWORD);
    const other = new pg.Client(f!.clientConfig());
    other.on('error', () => {});
    try {
      s.write(Buffer.concat([parse('INSERT INTO once VALUES (3)'), bind(), execute()]));
      await refusedOnServer('INSERT INTO once VALUES (3)');
      // The client asks for what it is owed: the window ends, the held answers go out.
      s.write(FLUSH);
      const refused = await read(r, 3);
      assert.equal(refused.types, '12E');
      assert.deepEqual(refused.codes, ['25006']);
      s.write(SYNC);
      assert.equal((await read(r, 1)).types, 'Z');
      // The transaction is over: the one server connection is the pool's again (closed, as
      // one that refused writes, and replaced), so another client gets one.
      await p.pg.query(`ALTER ROLE ${TENANT} RESET default_transaction_read_only`);
      await other.connect();
      const one = await other.query<{ n: number }>('SELECT 1 AS n');
      assert.equal(one.rows[0]!.n, 1);
      // And this client's next transaction runs once, as sent.
      s.write(Buffer.concat([parse('INSERT INTO once VALUES (4)'), bind(), execute(), SYNC]));
      assert.equal((await read(r, 4)).types, '12CZ');
      assert.equal(await count(3), 0);
      assert.equal(await count(4), 1);
    } finally {
      s.destroy();
      await other.end().catch(() => {});
    }
  });
});
