// The switchover's fence taken apart (src/postgres/instance.ts): refuseNewWrites
// refuses new TCP sessions and makes new transactions read-only, while open ones
// keep writing; writersSince counts the transactions that may still write (the
// drain waits for them); endClientSessions then ends every client session. Real
// PostgreSQL 17, stopped and removed at the end.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { makeTempPrimary, type TempPrimary } from './helpers/postgres.js';

describe('the switchover drain: soft fence, open writers, hard fence', { timeout: 60_000 }, () => {
  let p: TempPrimary;
  const clients: pg.Client[] = [];

  before(async () => {
    p = await makeTempPrimary({ settings: { parameters: { shared_buffers: '32MB', fsync: false } } });
    await p.pg.query("DO $$ BEGIN CREATE ROLE drain_app LOGIN PASSWORD 'pw-drain'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    await p.pg.query('CREATE TABLE drained (x int)');
    await p.pg.query('GRANT SELECT, INSERT ON drained TO drain_app');
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await p?.cleanup();
  });

  async function tcp(): Promise<pg.Client> {
    const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: 'drain_app', password: 'pw-drain', database: 'postgres' });
    c.on('error', () => {});
    await c.connect();
    clients.push(c);
    return c;
  }

  it('open transactions finish and commit; new ones are read-only and not waited for; new sessions are refused; then every client session ends', async () => {
    const early = await tcp(); // began before the soft fence: may write, the drain waits for it
    const idle = await tcp(); // no transaction: nothing to wait for
    const late = await tcp(); // begins after: read-only by default
    await early.query('BEGIN');
    await early.query('INSERT INTO drained VALUES (1)');
    assert.equal(await p.pg.writersSince((await p.pg.query<{ ts: string }>('SELECT clock_timestamp()::text AS ts')).rows[0]!.ts), 1);

    const { sinceTs } = await p.pg.refuseNewWrites();
    assert.equal(await p.pg.writersSince(sinceTs), 1, 'the open writer is counted');
    const refused = new pg.Client({ host: '127.0.0.1', port: p.port, user: 'drain_app', password: 'pw-drain', database: 'postgres' });
    refused.on('error', () => {});
    await assert.rejects(refused.connect(), /pg_hba\.conf rejects connection/, 'no new session: it could override the read-only default');
    await late.query('BEGIN');
    await assert.rejects(late.query('INSERT INTO drained VALUES (2)'), (e: Error & { code?: string }) => e.code === '25006');
    await late.query('ROLLBACK');
    await late.query('BEGIN');
    await late.query('SELECT count(*) FROM drained');
    assert.equal(await p.pg.writersSince(sinceTs), 1, 'a read-only transaction begun after the soft fence is not waited for');
    // The early writer goes on writing and commits: that is what the drain is for.
    await early.query('INSERT INTO drained VALUES (3)');
    await early.query('COMMIT');
    assert.equal(await p.pg.writersSince(sinceTs), 0);
    // A session may override the default (BEGIN READ WRITE): once it wrote, it holds an xid and is waited for too.
    await idle.query('BEGIN READ WRITE');
    await idle.query('INSERT INTO drained VALUES (4)');
    assert.equal(await p.pg.writersSince(sinceTs), 1, 'a transaction that wrote after the soft fence is counted');

    const { terminated } = await p.pg.endClientSessions();
    assert.equal(terminated, 3, 'every client session ended');
    await assert.rejects(idle.query('COMMIT'));
    assert.deepEqual(
      (await p.pg.query('SELECT array_agg(x ORDER BY x) AS xs FROM drained')).rows[0]?.xs,
      [1, 3],
      'what committed during the drain stays; the cut-off writer rolled back',
    );
    await p.pg.setReadOnly(false);
    const again = await tcp();
    await again.query('INSERT INTO drained VALUES (5)');
  });
});
