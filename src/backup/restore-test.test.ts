// The restore test on a real PG17 backup: a primary with several databases
// (one without a public schema, one read-only by default, one closed to
// connections), TOAST, materialized views, an unlogged and a partitioned
// table, backed up into the fs store. Restored and checked, it passes with
// every database counted; with a heap page damaged after the restore, the
// verdict names the database, the table and its file; a copy that cannot
// start, a deadline that passes and a damaged part are verdicts too; and the
// scratch directory is gone after each. amcheck's rows and errors are turned
// into problems (or a thrown bug) as checkRelation is told.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { FsObjectStore } from '../object-store/index.js';
import { connectSocket } from '../postgres/query.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../postgres/settings.js';
import { setAutoConf } from '../postgres/standby.js';
import { cloneTestStandby, makeTempPrimary, makeTempRoot, testStandbyInstance, type TempPrimary } from '../../test/helpers/postgres.js';
import { AmcheckQueryError, checkRelation, type Queryable, type RelationToCheck } from './amcheck.js';
import type { BackupManifest } from './manifest.js';
import { parsePgManifest } from './pg-manifest-check.js';
import { restoreTest, type RestoreTestProgress } from './restore-test.js';
import { readObject } from './store-io.js';
import { takeBackup } from './take-backup.js';

let primary: TempPrimary;
let store: FsObjectStore;
let storeDir: string;
let full: BackupManifest;
/** The heap file of app's table t, relative to the data directory. */
let tFile: string;
/** Where restoreTest makes its scratch directories: empty after every run. */
let scratchParent: string;
/** How long the clean run took to reach its first check (restore and start). */
let toFirstCheckMs = 0;

async function inDatabase(database: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = await connectSocket({ ...primary.pg.socketTarget, database });
  try {
    return (await c.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

before(async () => {
  primary = await makeTempPrimary({ nodeId: 'p1' });
  storeDir = path.join(primary.root, 'objects');
  store = new FsObjectStore({ dir: storeDir });
  scratchParent = makeTempRoot('ogel-rt-scratch-');
  for (const db of ['app', 'nopublic', 'closed']) await primary.pg.query(`CREATE DATABASE ${db}`);
  await inDatabase(
    'app',
    `CREATE TABLE t (id int PRIMARY KEY, v text, big text);
     ALTER TABLE t ALTER big SET STORAGE EXTERNAL;
     INSERT INTO t SELECT g, md5(g::text), CASE WHEN g % 200 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 100) i) END
       FROM generate_series(1, 20000) g;
     CREATE INDEX t_v ON t (v);
     CREATE MATERIALIZED VIEW mv AS SELECT id % 10 AS k, count(*) AS n FROM t GROUP BY 1;
     CREATE MATERIALIZED VIEW mv_empty AS SELECT 1 AS x WITH NO DATA;
     CREATE UNLOGGED TABLE u (id int PRIMARY KEY);
     INSERT INTO u SELECT generate_series(1, 100);
     CREATE TABLE parent (id int) PARTITION BY RANGE (id);
     CREATE TABLE part1 PARTITION OF parent FOR VALUES FROM (0) TO (1000);
     CREATE INDEX ON parent (id);
     INSERT INTO parent SELECT generate_series(0, 999);`,
  );
  // Hint bits set now, not by a read during the backup (whose WAL would then carry the page and repair the damage below on replay).
  await inDatabase('app', 'VACUUM FREEZE');
  tFile = String((await inDatabase('app', `SELECT pg_relation_filepath('t') AS f`))[0]!['f']);
  assert.ok(Number((await inDatabase('app', `SELECT count(*) AS n FROM pg_class WHERE relkind = 't' AND relpages > 0`))[0]!['n']) > 0, 'some TOAST data');
  await primary.pg.query(`ALTER DATABASE app SET default_transaction_read_only = on`);
  await inDatabase('nopublic', `DROP SCHEMA public CASCADE; CREATE SCHEMA s; CREATE TABLE s.x (id int PRIMARY KEY); INSERT INTO s.x VALUES (1), (2)`);
  await primary.pg.query(`ALTER DATABASE closed ALLOW_CONNECTIONS false`);
  await primary.pg.query('CHECKPOINT');
  const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
  full = await takeBackup({ store, clusterPrefix: 'c/', cluster: 'c', id: 'b-full', conn, node: 'n1', sourceRole: 'primary', partBytes: 1 << 20 });
});

after(async () => {
  await store?.close();
  await primary?.cleanup();
  if (scratchParent) fs.rmSync(scratchParent, { recursive: true, force: true });
});

test('restoreTest: a real backup restores, starts and checks clean in every database that takes connections', async (t) => {
  const stages = new Set<string>();
  let checked = 0;
  const t0 = performance.now();
  const v = await restoreTest({
    store,
    chain: [full],
    scratchParent,
    timeoutMs: 240_000,
    onProgress: (p: RestoreTestProgress) => {
      stages.add(p.stage);
      if (p.stage === 'check' && checked++ === 0) toFirstCheckMs = performance.now() - t0;
    },
  });
  t.diagnostic(JSON.stringify(v));
  assert.ok(v.ok, JSON.stringify(v));
  // app, nopublic, postgres, template1 (not template0, not closed).
  assert.equal(v.databases, 4);
  assert.ok(v.tables > 4 * 50, `${v.tables} heaps (catalogs included)`);
  assert.ok(v.indexes > 4 * 100, `${v.indexes} btree indexes`);
  assert.equal(checked, v.tables + v.indexes);
  assert.deepEqual([...stages], ['restore', 'start', 'check']);
  assert.deepEqual(fs.readdirSync(scratchParent), [], 'the scratch directory is removed');
});

test('restoreTest: a backup of a streaming standby that was fenced read-only restores as a writable copy and checks clean', async (t) => {
  const dir = await cloneTestStandby(primary, 's1');
  const upstream = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
  // The fence as ALTER SYSTEM leaves it: the backup carries it.
  setAutoConf(dir, { default_transaction_read_only: 'on' }, primary.pg.user);
  const standby = await testStandbyInstance(dir);
  try {
    await standby.start({ timeoutMs: 30_000 });
    const conn = { ...upstream, port: standby.port };
    const b = await takeBackup({ store, clusterPrefix: 'c/', cluster: 'c', id: 'b-standby', conn, node: 's1', sourceRole: 'standby' });
    const listed = parsePgManifest(await readObject(store, b.pgManifest), b.pgManifest.key).files;
    t.diagnostic(`standby.signal ${listed.has('standby.signal') ? 'is' : 'is not'} in the standby's backup`);
    const v = await restoreTest({ store, chain: [b], scratchParent, timeoutMs: 240_000 });
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.databases, 4);
    assert.deepEqual(fs.readdirSync(scratchParent), []);
  } finally {
    await standby.stop('immediate', { timeoutMs: 10_000 });
  }
});

test('restoreTest: a heap page damaged in the restored copy is named: the database, the table and its file', async (t) => {
  const v = await restoreTest({
    store,
    chain: [full],
    scratchParent,
    timeoutMs: 240_000,
    afterRestore: (dataDir) => {
      // 64 bytes of block 0's tuple area, after the manifest check passed: what a bad disk under a restore would do.
      const fd = fs.openSync(path.join(dataDir, tFile), 'r+');
      try {
        fs.writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, 4000);
      } finally {
        fs.closeSync(fd);
      }
    },
  });
  assert.ok(!v.ok, JSON.stringify(v));
  t.diagnostic(v.detail);
  assert.equal(v.stage, 'check');
  const first = v.detail.split('; ')[0]!;
  assert.match(
    first,
    new RegExp(`^restore test of b-full: amcheck found corruption: database "app": table "public"\\."t" \\(${tFile}\\): .*block 0`),
    v.detail,
  );
  assert.deepEqual(fs.readdirSync(scratchParent), []);
});

test('restoreTest: a copy that cannot start, a deadline that passes and a damaged part are verdicts, and the scratch goes each time', async (t) => {
  const noControl = await restoreTest({
    store,
    chain: [full],
    scratchParent,
    timeoutMs: 240_000,
    afterRestore: (dataDir) => fs.rmSync(path.join(dataDir, 'global', 'pg_control')),
  });
  assert.ok(!noControl.ok);
  t.diagnostic(noControl.detail);
  assert.equal(noControl.stage, 'start');
  assert.match(noControl.detail, /^restore test of b-full: Postgres did not start on the restored copy: .*pg_control/);
  assert.deepEqual(fs.readdirSync(scratchParent), []);

  const late = await restoreTest({ store, chain: [full], scratchParent, timeoutMs: 20 });
  assert.ok(!late.ok);
  assert.equal(late.stage, 'restore');
  assert.equal(late.detail, 'restore test of b-full: timed out after 20 ms while at the restore stage');
  assert.ok(late.durationMs < 10_000, `${late.durationMs} ms`);
  assert.deepEqual(fs.readdirSync(scratchParent), []);

  // A deadline that passes during the check: the server is stopped under the running statement.
  const timeoutMs = Math.round(2 * toFirstCheckMs + 3000);
  const t0 = performance.now();
  let waited = false;
  const mid = await restoreTest({
    store,
    chain: [full],
    scratchParent,
    timeoutMs,
    onProgress: (p) => {
      if (p.stage !== 'check' || waited) return;
      waited = true;
      // Blocks this thread past the deadline: the timer fires as the next statement runs.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, t0 + timeoutMs + 20 - performance.now()));
    },
  });
  assert.ok(!mid.ok);
  assert.equal(mid.detail, `restore test of b-full: timed out after ${timeoutMs} ms while at the check stage`);
  assert.deepEqual(fs.readdirSync(scratchParent), []);

  await assert.rejects(restoreTest({ store, chain: [], scratchParent }), TypeError);
  await assert.rejects(restoreTest({ store, chain: [full], scratchParent, timeoutMs: 0 }), RangeError);

  // A flipped byte in a stored part: the restore refuses it, named.
  const victim = full.parts[1]!.key;
  const rec = JSON.parse(fs.readFileSync(path.join(storeDir, 'objects', victim), 'utf8')) as { blob: string };
  const blob = fs.readFileSync(path.join(storeDir, rec.blob));
  blob[100] = blob[100]! ^ 0xff;
  fs.writeFileSync(path.join(storeDir, rec.blob), blob);
  const damaged = await restoreTest({ store, chain: [full], scratchParent, timeoutMs: 240_000 });
  assert.ok(!damaged.ok);
  t.diagnostic(damaged.detail);
  assert.equal(damaged.stage, 'restore');
  assert.ok(damaged.detail.startsWith(`restore test of b-full: the restore failed: ${victim}: `), damaged.detail);
  assert.deepEqual(fs.readdirSync(scratchParent), []);
});

test('checkRelation: verify_heapam rows and errors become problems; our own SQL refused throws; a lost session is said', async () => {
  const heap: RelationToCheck = { oid: '16390', schema: 'public', name: 't', kind: 'table', file: 'base/5/16390' };
  const index: RelationToCheck = { ...heap, name: 't_pkey', kind: 'index', file: 'base/5/16391' };
  const stub = (answer: () => unknown[]): Queryable & { sql: string[] } => {
    const sql: string[] = [];
    return {
      sql,
      query: async (text: string) => {
        sql.push(text);
        return { rows: answer() as never[] };
      },
    };
  };
  const fails = (code: string | undefined, message: string) => () => {
    throw Object.assign(new Error(message), code === undefined ? {} : { code });
  };

  const clean = stub(() => []);
  assert.deepEqual(await checkRelation(clean, 'public', heap), { problems: [], sessionLost: false });
  assert.deepEqual(await checkRelation(clean, 'my schema', index), { problems: [], sessionLost: false });
  assert.match(clean.sql[0]!, /FROM "public"\.verify_heapam\(relation => \$1::oid::regclass\)/);
  assert.match(clean.sql[1]!, /SELECT "my schema"\.bt_index_check\(index => \$1::oid::regclass, heapallindexed => true\)/);

  const rows = stub(() => [
    { blkno: '3', offnum: 7, attnum: null, msg: 'line pointer redirection to item at offset 99 exceeds maximum offset 42' },
    { blkno: '4', offnum: null, attnum: null, msg: 'something else' },
  ]);
  assert.deepEqual(await checkRelation(rows, 'public', heap), {
    problems: [
      'table "public"."t" (base/5/16390): verify_heapam: block 3, offset 7: line pointer redirection to item at offset 99 exceeds maximum offset 42',
      'table "public"."t" (base/5/16390): verify_heapam: block 4: something else',
    ],
    sessionLost: false,
  });
  assert.deepEqual(await checkRelation(stub(fails('XX002', 'index "t_pkey" lacks a main relation fork')), 'public', index), {
    problems: ['index "public"."t_pkey" (base/5/16391): index "t_pkey" lacks a main relation fork (SQLSTATE XX002)'],
    sessionLost: false,
  });
  assert.deepEqual(await checkRelation(stub(fails(undefined, 'Connection terminated unexpectedly')), 'public', heap), {
    problems: ['table "public"."t" (base/5/16390): Connection terminated unexpectedly'],
    sessionLost: true,
  });
  assert.equal(
    (await checkRelation(stub(fails('57P02', 'terminating connection because of crash of another server process')), 'public', heap)).sessionLost,
    true,
  );
  await assert.rejects(checkRelation(stub(fails('42883', 'function verify_heapam does not exist')), 'public', heap), AmcheckQueryError);
});
