// Backups into a real object store and back: a real PG17 primary, a full and
// an incremental backup streamed into the fs store and into S3 (a real s3rver
// process), each restored into a plain directory that Postgres starts on with
// exactly the data at the backup's end. Then the faults: a flipped byte in a
// part is named and refused (and the restore leaves its target empty), and a
// store that dies mid-backup fails the backup without a backup.json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { FsObjectStore, S3ObjectStore, type ObjectStore } from '../object-store/index.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../postgres/settings.js';
import { makeTempPrimary, type TempPrimary, startCopy } from '../../test/helpers/postgres.js';
import { startS3rver, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY } from '../../test/helpers/s3rver.js';
import { BACKUP_MANIFEST_NAME, orderChain } from './manifest.js';
import { restoreChain } from './restore.js';
import { listBackupManifests } from './store-io.js';
import { takeBackup } from './take-backup.js';
import { verifyBackupObjects } from './verify-objects.js';

const DIGEST = `SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t`;

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

async function backupRoundTrip(t: { diagnostic(m: string): void }, primary: TempPrimary, store: ObjectStore, corrupt: (key: string) => void): Promise<void> {
  const q = (sql: string) => primary.pg.query(sql);
  const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
  const common = { store, clusterPrefix: 'clusters/test/', cluster: 'test', conn, node: 'n1', sourceRole: 'primary' as const, partBytes: 256 * 1024 };
  const full = await takeBackup({ ...common, id: 'b-full' });
  const atFull = (await q(DIGEST)).rows[0];
  assert.ok(full.parts.length > 1, `several parts (${full.parts.length})`);
  await q(`UPDATE t SET v = 'after the full backup ' || id WHERE id % 50 = 0`);
  await q('CHECKPOINT');
  await q('SELECT pg_switch_wal()');
  const inc = await takeBackup({ ...common, id: 'b-inc', parent: full });
  const atInc = (await q(DIGEST)).rows[0];
  assert.notDeepEqual(atInc, atFull);
  t.diagnostic(
    `${store.description}: full ${(full.tarBytes / 1e6).toFixed(1)} MB tar -> ${(full.storedBytes / 1e6).toFixed(1)} MB stored in ${full.parts.length} parts; incremental ${(inc.tarBytes / 1e6).toFixed(1)} MB -> ${(inc.storedBytes / 1e6).toFixed(1)} MB`,
  );
  assert.equal(inc.kind, 'incremental');
  assert.equal(inc.parent, 'b-full');

  const listed = await listBackupManifests(store, 'clusters/test/');
  assert.deepEqual(
    listed.map((m) => m.id),
    ['b-full', 'b-inc'],
  );
  const byId = (id: string) => listed.find((m) => m.id === id);

  for (const [which, chain, want] of [
    ['full', orderChain(full, byId), atFull],
    ['full + incremental', orderChain(inc, byId), atInc],
  ] as const) {
    const dir = path.join(primary.root, `restore-${chain.length}`);
    await restoreChain(store, chain, dir, { owner: primary.pg.user, fsync: false });
    const restored = await startCopy(dir);
    try {
      assert.deepEqual((await restored.query(DIGEST)).rows[0], want, `${which}: the data at the backup's end`);
    } finally {
      await restored.stop('immediate', { timeoutMs: 10_000 });
    }
  }

  // A flipped byte in one part: verification and the restore name that object; the restore refuses it and leaves its target empty.
  const good = await verifyBackupObjects(store, full);
  assert.ok(good.ok && good.files > 900, JSON.stringify(good));
  assert.deepEqual(good, { ok: true, objects: full.parts.length + 1, bytes: full.storedBytes + full.pgManifest.bytes, files: good.files });
  const victim = full.parts[1]!.key;
  corrupt(victim);
  const verdict = await verifyBackupObjects(store, full);
  assert.ok(!verdict.ok && verdict.detail.includes(victim), JSON.stringify(verdict));
  const dir = path.join(primary.root, 'restore-corrupt');
  await assert.rejects(
    restoreChain(store, [full], dir, { owner: primary.pg.user, fsync: false }),
    new RegExp(`${victim.replace(/[.]/g, '\\.')}: .*the object is damaged and the restore refuses it`),
  );
  assert.deepEqual(fs.readdirSync(dir), []);
}

test('backups in the fs store: full and incremental restore exactly; a corrupted part is refused', async (t) => {
  const primary = await makeTempPrimary({
    nodeId: 'p1',
    settings: { parameters: { summarize_wal: 'on', shared_buffers: '32MB', max_connections: 30, fsync: false } },
  });
  const storeDir = path.join(primary.root, 'objects');
  const store = new FsObjectStore({ dir: storeDir });
  try {
    await primary.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g`);
    await backupRoundTrip(t, primary, store, (key) => {
      const rec = JSON.parse(fs.readFileSync(path.join(storeDir, 'objects', key), 'utf8')) as { blob: string };
      flipByte(path.join(storeDir, rec.blob), 100);
    });
  } finally {
    await store.close();
    await primary.cleanup();
  }
});

test('backups in S3 (a real s3rver): full and incremental restore exactly; a corrupted part is refused; a store that dies mid-backup fails it without a backup.json', async (t) => {
  const primary = await makeTempPrimary({
    nodeId: 'p1',
    settings: { parameters: { summarize_wal: 'on', shared_buffers: '32MB', max_connections: 30, fsync: false } },
  });
  const server = await startS3rver();
  const store = new S3ObjectStore({
    endpoint: server.endpoint,
    region: 'us-east-1',
    bucket: server.bucket,
    prefix: 'ogel',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY, from: 'test' },
    connectTimeoutMs: 2000,
    requestTimeoutMs: 10_000,
    maxAttempts: 1,
  });
  try {
    await primary.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g`);
    await backupRoundTrip(t, primary, store, (key) => flipByte(path.join(server.dir, server.bucket, 'ogel', `${key}._S3rver_object`), 100));

    // The store dies after the first part: the backup fails, and no backup.json exists for it.
    const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
    let parts = 0;
    const dying: ObjectStore = {
      ...store,
      description: store.description,
      put: async (key, body, opts) => {
        if (key.includes('base.tar') && ++parts === 2) await server.stop();
        return store.put(key, body, opts);
      },
      putIfAbsent: (k, b, s) => store.putIfAbsent(k, b, s),
      get: (k, o) => store.get(k, o),
      head: (k) => store.head(k),
      list: (p, o) => store.list(p, o),
      delete: (k) => store.delete(k),
      check: () => store.check(),
      close: () => store.close(),
    };
    await assert.rejects(
      takeBackup({
        store: dying,
        clusterPrefix: 'clusters/test/',
        cluster: 'test',
        id: 'b-dies',
        conn,
        node: 'n1',
        sourceRole: 'primary',
        partBytes: 256 * 1024,
      }),
      /127\.0\.0\.1|unreachable|ECONNREFUSED|connect/i,
    );
    assert.ok(!fs.existsSync(path.join(server.dir, server.bucket, 'ogel', 'clusters/test/basebackups/b-dies', `${BACKUP_MANIFEST_NAME}._S3rver_object`)));
  } finally {
    await store.close();
    await server.stop();
    await primary.cleanup();
  }
});
