// Real clients through the proxy (issue 5 acceptance): node-postgres (simple,
// extended, prepared, COPY, cancel; LISTEN/NOTIFY in session mode), psql and
// pgbench, against a real Postgres 17, in transaction and session mode.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { makeAppPostgres, run, startProxy, CLIENT_PASSWORD, type ProxyFixture } from './helpers/proxy.js';
import type { TempPrimary } from './helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** COPY ... FROM STDIN with node-postgres, without pg-copy-streams: a submittable that sends the rows. */
class CopyIn {
  private connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void; query(text: string): void } | null = null;
  readonly done: Promise<string>;
  private resolve!: (tag: string) => void;
  private reject!: (e: Error) => void;
  private tag = '';
  constructor(
    private readonly sql: string,
    private readonly data: string,
  ) {
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }
  submit(connection: NonNullable<CopyIn['connection']>): void {
    this.connection = connection;
    connection.query(this.sql);
  }
  handleCopyInResponse(): void {
    this.connection!.sendCopyFromChunk(Buffer.from(this.data));
    this.connection!.endCopyFrom();
  }
  handleCommandComplete(msg: { text: string }): void {
    this.tag = msg.text;
  }
  handleReadyForQuery(): void {
    this.resolve(this.tag);
  }
  handleError(e: Error): void {
    this.reject(e);
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** COPY ... TO STDOUT: collects the CopyData. */
class CopyOut {
  readonly chunks: Buffer[] = [];
  readonly done: Promise<string>;
  private resolve!: (s: string) => void;
  private reject!: (e: Error) => void;
  constructor(private readonly sql: string) {
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }
  submit(connection: { query(text: string): void }): void {
    connection.query(this.sql);
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    this.chunks.push(Buffer.from(msg.chunk));
  }
  handleCommandComplete(): void {}
  handleReadyForQuery(): void {
    this.resolve(Buffer.concat(this.chunks).toString());
  }
  handleError(e: Error): void {
    this.reject(e);
  }
  handleCopyInResponse(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

async function withClient<T>(f: ProxyFixture, fn: (c: pg.Client) => Promise<T>, extra: Record<string, unknown> = {}): Promise<T> {
  const c = new pg.Client(f.clientConfig(extra));
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

describe('proxy with real clients', { timeout: 180_000 }, () => {
  let pgsrv: TempPrimary;
  let tx: ProxyFixture;
  let session: ProxyFixture;

  before(async () => {
    pgsrv = await makeAppPostgres();
    tx = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 4 } });
    session = await startProxy({ pg: pgsrv, pool: { mode: 'session', defaultPoolSize: 4 } });
  });
  after(async () => {
    await tx?.cleanup();
    await session?.cleanup();
    await pgsrv?.cleanup();
  });

  it('node-postgres: simple and extended queries, errors, transactions (transaction mode)', async () => {
    await withClient(tx, async (c) => {
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
      assert.deepEqual((await c.query('SELECT $1::int + $2::int AS s, $3::text AS t', [2, 3, 'x'])).rows[0], { s: 5, t: 'x' });
      await assert.rejects(c.query('SELECT * FROM missing_table'), /relation "missing_table" does not exist/);
      await c.query('CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v int)');
      await c.query('BEGIN');
      await c.query("INSERT INTO kv VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET v = 1");
      await assert.rejects(c.query('SELECT 1/0'), /division by zero/);
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await c.query("INSERT INTO kv VALUES ('b', 2) ON CONFLICT (k) DO UPDATE SET v = 2");
      await c.query('COMMIT');
      assert.equal((await c.query("SELECT v FROM kv WHERE k = 'b'")).rows[0].v, 2);
      assert.equal((await c.query("SELECT count(*)::int AS n FROM kv WHERE k = 'a'")).rows[0].n, 0, 'the rolled back insert is not there');
      // Multi-statement simple query, and an empty query.
      const r = (await c.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
      assert.equal(r[1]!.rows[0].b, 2);
    });
  });

  it('node-postgres: named prepared statements survive transaction pooling (shared, re-prepared per server connection)', async () => {
    const clients = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async () => {
        const c = new pg.Client(tx.clientConfig());
        c.on('error', () => {});
        await c.connect();
        return c;
      }),
    );
    try {
      // 6 clients over 4 server connections: statements must follow the clients, whatever server runs them.
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          clients.map(async (c, i) => {
            const r = await c.query({ name: 'twice', text: 'SELECT $1::int * 2 AS d', values: [i + round] });
            assert.equal(r.rows[0].d, (i + round) * 2);
            const r2 = await c.query({ name: `own_${i}`, text: `SELECT $1::text || '-${i}' AS s`, values: ['v'] });
            assert.equal(r2.rows[0].s, `v-${i}`);
          }),
        );
      }
      // A prepared statement whose Parse fails is not kept: using the name again parses again.
      await assert.rejects(clients[0]!.query({ name: 'bad', text: 'SELECT * FROM nope', values: [] }), /does not exist/);
      await clients[0]!.query('CREATE TABLE IF NOT EXISTS nope (x int)');
      assert.deepEqual((await clients[0]!.query({ name: 'bad', text: 'SELECT * FROM nope', values: [] })).rows, []);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
    const pool = tx.proxy.stats().pools[0]!;
    assert.ok(pool.opened <= 4, `at most 4 server connections, opened ${pool.opened}`);
  });

  it('node-postgres: COPY in and out', async () => {
    await withClient(tx, async (c) => {
      await c.query('CREATE TABLE IF NOT EXISTS copied (n int, s text)');
      await c.query('TRUNCATE copied');
      const rows = Array.from({ length: 5000 }, (_, i) => `${i}\trow ${i}\n`).join('');
      const cin = new CopyIn('COPY copied FROM STDIN', rows);
      void c.query(cin as never);
      assert.equal(await cin.done, 'COPY 5000');
      assert.equal((await c.query('SELECT count(*)::int AS n, sum(n)::int AS s FROM copied')).rows[0].n, 5000);
      const cout = new CopyOut('COPY (SELECT n, s FROM copied ORDER BY n LIMIT 3) TO STDOUT');
      void c.query(cout as never);
      assert.equal(await cout.done, '0\trow 0\n1\trow 1\n2\trow 2\n');
      // A failing COPY in leaves the session usable.
      const bad = new CopyIn('COPY copied FROM STDIN', 'not-a-number\tx\n');
      void c.query(bad as never);
      await assert.rejects(bad.done, /invalid input syntax for type integer/);
      assert.equal((await c.query('SELECT 1 AS ok')).rows[0].ok, 1);
    });
  });

  it('node-postgres: a cancel request reaches the server backend running the query', async () => {
    await withClient(tx, async (c) => {
      const started = performance.now();
      const q = c.query('SELECT pg_sleep(20)');
      await sleep(300);
      // node-postgres's own cancel: a new connection carrying the BackendKeyData the proxy gave this client.
      const canceller = new pg.Client(tx.clientConfig()) as pg.Client & { cancel(c: pg.Client, q: unknown): void };
      canceller.cancel(c, (c as unknown as { _activeQuery: unknown })._activeQuery);
      await assert.rejects(q, /canceling statement due to user request/);
      assert.ok(performance.now() - started < 10_000, 'cancelled well before the sleep ended');
      assert.equal((await c.query('SELECT 2 AS two')).rows[0].two, 2);
    });
    assert.ok(tx.proxy.stats().counters.cancelsForwarded >= 1);
  });

  it("a cancel request sent to another node's proxy is relayed to the proxy holding the session", async () => {
    // Two proxies as two nodes (tags 1 and 2), each knowing the other's address: as behind a load balancer.
    const addresses = new Map<number, { host: string; port: number }>();
    const peerOf = (tag: number) => addresses.get(tag);
    const a = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 2 }, cancelRouting: { selfTag: 1, peerOf } });
    const b = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 2 }, cancelRouting: { selfTag: 2, peerOf } });
    addresses.set(1, { host: '127.0.0.1', port: a.port });
    addresses.set(2, { host: '127.0.0.1', port: b.port });
    try {
      await withClient(a, async (c) => {
        assert.equal((c as unknown as { processID: number }).processID >>> 24, 1, "the key names proxy a's tag");
        const q = c.query('SELECT pg_sleep(20)');
        await sleep(300);
        const canceller = new pg.Client(b.clientConfig()) as pg.Client & { cancel(c: pg.Client, q: unknown): void };
        canceller.cancel(c, (c as unknown as { _activeQuery: unknown })._activeQuery);
        await assert.rejects(q, /canceling statement due to user request/);
        assert.equal((await c.query('SELECT 3 AS three')).rows[0].three, 3);
      });
      assert.equal(b.proxy.stats().counters.cancelsRelayed, 1);
      assert.equal(a.proxy.stats().counters.cancelsForwarded, 1);
      assert.equal(a.proxy.stats().counters.cancelsRelayed, 0, 'a looked its own key up, it did not relay it back');
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it('node-postgres: LISTEN/NOTIFY in session mode', async () => {
    const listener = new pg.Client(session.clientConfig());
    listener.on('error', () => {});
    await listener.connect();
    try {
      const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
      await listener.query('LISTEN events');
      await withClient(session, (c) => c.query("SELECT pg_notify('events', 'hello')"));
      const n = await got;
      assert.equal(n.channel, 'events');
      assert.equal(n.payload, 'hello');
    } finally {
      await listener.end();
    }
  });

  it('session mode: a server connection is reset before the next client gets it', async () => {
    await withClient(session, async (c) => {
      await c.query("SET search_path TO 'nowhere'");
      await c.query({ name: 'left_behind', text: 'SELECT 1' });
    });
    for (let i = 0; i < 4; i++) {
      await withClient(session, async (c) => {
        assert.notEqual((await c.query('SHOW search_path')).rows[0].search_path, 'nowhere');
        assert.deepEqual((await c.query({ name: 'left_behind', text: 'SELECT 2 AS x' })).rows, [{ x: 2 }]);
      });
    }
  });

  it('startup parameters reach the server and follow the client across server connections', async () => {
    const a = new pg.Client({ ...tx.clientConfig(), application_name: 'client-a' } as pg.ClientConfig);
    const b = new pg.Client({ ...tx.clientConfig(), application_name: 'client-b' } as pg.ClientConfig);
    await a.connect();
    await b.connect();
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await a.query('SHOW application_name')).rows[0].application_name, 'client-a');
        assert.equal((await b.query('SHOW application_name')).rows[0].application_name, 'client-b');
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('psql: queries, \\copy in and out, errors', async () => {
    const url = tx.url();
    let r = await run('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-At', '-c', 'SELECT 40 + 2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '42');
    r = await run('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-At'], {
      input: [
        'CREATE TABLE IF NOT EXISTS psql_t (n int);',
        'TRUNCATE psql_t;',
        '\\copy psql_t FROM STDIN',
        '1',
        '2',
        '3',
        '\\.',
        'SELECT sum(n) FROM psql_t;',
        '\\copy (SELECT n FROM psql_t ORDER BY n) TO STDOUT',
        '',
      ].join('\n'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^6\n1\n2\n3\n?$/m);
    r = await run('psql', [url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT * FROM nothing_here']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /relation "nothing_here" does not exist/);
    r = await run('psql', [`postgresql://app:wrong@127.0.0.1:${tx.port}/app`, '-X', '-c', 'SELECT 1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /password authentication failed/);
  });

  it('pgbench: initialize (COPY) and run select-only and TPC-B in every query mode', async () => {
    const env = { PGPASSWORD: CLIENT_PASSWORD };
    const conn = ['-h', '127.0.0.1', '-p', String(tx.port), '-U', 'app', 'app'];
    let r = await run('pgbench', ['-i', '-s', '1', '-q', ...conn], { env });
    assert.equal(r.code, 0, r.stderr);
    for (const mode of ['simple', 'extended', 'prepared']) {
      r = await run('pgbench', ['-S', '-c', '8', '-j', '2', '-t', '200', '-M', mode, ...conn], { env });
      assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
      assert.match(r.stdout, /number of failed transactions: 0/);
      assert.match(r.stdout, /number of transactions actually processed: 1600\/1600/);
    }
    r = await run('pgbench', ['-c', '4', '-j', '2', '-t', '100', '-M', 'prepared', ...conn], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /number of transactions actually processed: 400\/400/);
    // Session mode too.
    r = await run('pgbench', ['-S', '-c', '4', '-j', '2', '-t', '100', '-M', 'prepared', '-h', '127.0.0.1', '-p', String(session.port), '-U', 'app', 'app'], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
  });
});
