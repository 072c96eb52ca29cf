// Backups through real daemons into a real S3-protocol server (s3rver on
// loopback): the leader's schedule takes the first full backup by itself (a
// minute after it took office, nothing requested), from a streaming standby,
// then an incremental on it (incrementalEveryHours 0.01: 36 s), and `ogel
// restore` from the bucket alone gives, for each, a directory Postgres starts
// on with exactly the rows written before it. Then the store goes down in the
// middle of a backup (the daemons reach s3rver through a link the test cuts):
// that backup fails, its parts are swept once the store is back, and the next
// backup succeeds.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { FaultLink } from './helpers/fault-link.js';
import { waitHealthy } from './helpers/pg-health.js';
import { startCopy } from './helpers/postgres.js';
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3rver, type S3rver } from './helpers/s3rver.js';

interface BackupJson {
  id: string;
  kind: string;
  state: string;
  node: string | null;
  failureReason: string | null;
  atMs: number;
}

describe('scheduled backups through the daemons into S3 (s3rver)', () => {
  let s3: S3rver;
  let link: FaultLink;
  let c: DaemonCluster;
  let password: string;

  before(async () => {
    s3 = await startS3rver();
    link = await FaultLink.start(s3.port);
    const storage =
      `storage:\n  backend: s3\n  s3:\n    endpoint: ${link.endpoint}\n    bucket: ${s3.bucket}\n    forcePathStyle: true\n` +
      `    accessKeyId: ${S3RVER_ACCESS_KEY_ID}\n    secretAccessKey: ${S3RVER_SECRET_ACCESS_KEY}\n`;
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], `${storage}backups:\n  incrementalEveryHours: 0.01\n`);
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => {
    await c?.destroy();
    await link?.close();
    await s3?.stop();
  });

  it('the schedule takes a full backup, then an incremental, on its own from a standby; ogel restore of each from the bucket has every row', {
    timeout: 360_000,
  }, async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = view.primary!;
    await sql(primary, 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 30000) g');
    const want = (await sql(primary, 'SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t'))[0];

    // Nothing requested: the leader's schedule starts the first full backup a minute after it took office.
    let done: BackupJson | undefined;
    await c.waitFor(
      async () => {
        const r = await c.cli(['backup', 'list', '--json']);
        if (r.code !== 0) return false;
        const list = (JSON.parse(r.stdout) as { store: string; backups: BackupJson[] }).backups;
        const failed = list.find((b) => b.state === 'failed');
        if (failed) assert.fail(`a scheduled backup failed: ${failed.failureReason}`);
        done = list.find((b) => b.state === 'complete');
        return done !== undefined;
      },
      'the first scheduled backup to complete',
      180_000,
    );
    assert.equal(done!.kind, 'full');
    assert.notEqual(done!.node, primary, 'taken from a streaming standby');
    const st = await c.cli(['status']);
    assert.match(st.stdout, new RegExp(`Backups: newest ${done!.id} \\(full, `));

    const listed = await c.cli(['restore', '--config', c.configPath, '--list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(done!.id), `the bucket holds ${done!.id}: ${listed.stdout}`);

    await restoreAndCompare(done!.id, 'restored-full', want);

    // More rows, then the schedule's incremental on the full backup (36 s after it).
    await sql(primary, 'INSERT INTO t SELECT g, md5(g::text) FROM generate_series(30001, 40000) g');
    const want2 = (await sql(primary, 'SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t'))[0];
    const insertedAtMs = Date.now(); // an incremental recorded after this has the rows (one comes every 36 s)
    let inc: BackupJson | undefined;
    await c
      .waitFor(
        async () => {
          const r = await c.cli(['backup', 'list', '--json']);
          if (r.code !== 0) return false;
          inc = (JSON.parse(r.stdout) as { backups: BackupJson[] }).backups.find(
            (b) => b.kind === 'incremental' && b.state === 'complete' && b.atMs > insertedAtMs,
          );
          return inc !== undefined;
        },
        'a scheduled incremental to complete',
        120_000,
      )
      .catch(async (e: Error) => {
        const list = (await c.cli(['backup', 'list'])).stdout;
        const logs = [...c.nodes.values()].flatMap((n) => n.log.filter((l) => /backup/i.test(l)).slice(-6));
        throw new Error(`${e.message}\n${list}\n${logs.join('\n')}`);
      });
    await restoreAndCompare(inc!.id, 'restored-chain', want2);
  });

  it('the store going down mid-backup fails that backup; its parts are swept once the store is back; the next backup succeeds', {
    timeout: 300_000,
  }, async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    // About 57 MB of rows that compress about 2:1: the backup spans two 16 MiB parts of its own data
    // (a standby's backup starts at a fresh checkpoint, so the WAL of this load is not in it).
    await sql(view.primary!, 'CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, 500000) g');
    // Bytes/s towards the store: the backup takes many seconds, not a blink; the WAL archive shares the link.
    link.throttle(1_500_000);
    const id = await startFullBackup();
    const parts = join(s3.dir, s3.bucket, 'test', 'basebackups', id);
    await until(async () => objectsUnder(parts) > 0, `a first part of backup ${id} in the bucket`, 60_000);
    // While it streams, every node's API says how far it is (the backup's node from its worker, the others by asking it).
    const running = await backup(id);
    for (const node of c.nodes.keys()) {
      const r = await c.get(node, `/v1/backups/${id}`);
      const p = (r.body as { progress?: { node: string; tarBytes: number; totalBytes: number | null; elapsedMs: number } | null }).progress;
      assert.ok(p, `${node} gives the progress of running backup ${id}: ${JSON.stringify(r.body)}`);
      assert.equal(p.node, running.node);
      assert.ok(p.tarBytes > 16 * 1024 * 1024 && p.totalBytes !== null && p.totalBytes >= p.tarBytes && p.elapsedMs > 0, JSON.stringify(p));
    }
    const shown = await c.cli(['backup', 'show', id]);
    assert.match(shown.stdout, new RegExp(`Progress: backup ${id} on ${running.node}: [\\d.]+ of [\\d.]+ MB \\(\\d+%\\), [\\d.]+ MB/s`), shown.stdout);
    link.cut();

    const failed = await until(
      async () => {
        const b = await backup(id);
        if (b.state === 'complete') assert.fail(`backup ${id} completed although the store went down during it`);
        return b.state === 'failed' ? b : false;
      },
      `backup ${id} to be recorded as failed`,
      120_000,
    );
    assert.match(failed.failureReason ?? '', /store|s3|ECONNRESET|socket|connect/i, `the reason names the store: ${failed.failureReason}`);
    const left = objectsUnder(parts);
    assert.ok(left > 0, 'with the store down, the parts it wrote are still there');

    link.heal();
    await until(async () => objectsUnder(parts) === 0, `the leader's sweep to delete the ${left} objects of failed backup ${id}`, 120_000);
    const next = await startFullBackup();
    const done = await until(
      async () => {
        const b = await backup(next);
        return b.state === 'running' ? false : b;
      },
      `backup ${next} to end`,
      180_000,
    );
    assert.equal(done.state, 'complete', `the backup after the outage: ${done.failureReason}`);
    const verified = await c.cli(['backup', 'verify', next, '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });

  /** A full backup requested now, or (one runs at a time) the one the schedule is running, once it ends. */
  async function startFullBackup(): Promise<string> {
    return until(
      async () => {
        const r = await c.cli(['backup', 'create', '--full', '--json']);
        if (r.code === 0) return (JSON.parse(r.stdout) as { backup: BackupJson }).backup.id;
        assert.match(r.stderr, /running|one backup/i, `backup create: ${r.stderr}`);
        return false;
      },
      'a full backup to start',
      120_000,
    );
  }

  async function backup(id: string): Promise<BackupJson> {
    const r = await c.cli(['backup', 'show', id, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { backup: BackupJson }).backup;
  }

  /** Polls fn until it returns something other than false (each poll may spawn the CLI: not too often). */
  async function until<T>(fn: () => Promise<T | false>, what: string, timeoutMs: number): Promise<T> {
    const deadlineMs = Date.now() + timeoutMs;
    for (;;) {
      const r = await fn();
      if (r !== false) return r;
      if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(100);
    }
  }

  /** s3rver keeps object KEY as <dir>/<bucket>/KEY._S3rver_object (and sidecar files). */
  function objectsUnder(dir: string): number {
    if (!existsSync(dir)) return 0;
    return readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('._S3rver_object')).length;
  }

  async function sql(node: string, text: string): Promise<pg.QueryResultRow[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(node)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  }

  async function restoreAndCompare(id: string, name: string, want: unknown): Promise<void> {
    const dir = join(c.dir, name);
    const restore = await c.cli(['restore', '--config', c.configPath, '--backup', id, '--to-dir', dir, '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    const restored = await startCopy(dir, { parameters: {} });
    try {
      assert.deepEqual((await restored.query('SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t')).rows[0], want, `restore of ${id}`);
    } finally {
      if (restored.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    }
  }
});
