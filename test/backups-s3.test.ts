// Backups through real daemons into a real S3-protocol server (s3rver on
// loopback): the leader's schedule takes the first full backup by itself (a
// minute after it took office, nothing requested), from a streaming standby,
// and `ogel restore` from the bucket alone gives a directory Postgres starts on
// with exactly the rows written before it.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { waitHealthy } from './helpers/pg-health.js';
import { startCopy } from './helpers/postgres.js';
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3rver, type S3rver } from './helpers/s3rver.js';

interface BackupJson {
  id: string;
  kind: string;
  state: string;
  node: string | null;
  failureReason: string | null;
}

describe('scheduled backups through the daemons into S3 (s3rver)', () => {
  let s3: S3rver;
  let c: DaemonCluster;
  let password: string;

  before(async () => {
    s3 = await startS3rver();
    const storage =
      `storage:\n  backend: s3\n  s3:\n    endpoint: ${s3.endpoint}\n    bucket: ${s3.bucket}\n    forcePathStyle: true\n` +
      `    accessKeyId: ${S3RVER_ACCESS_KEY_ID}\n    secretAccessKey: ${S3RVER_SECRET_ACCESS_KEY}\n`;
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], storage);
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => {
    await c?.destroy();
    await s3?.stop();
  });

  it('the schedule takes a full backup on its own from a standby; ogel restore from the bucket has every row', { timeout: 300_000 }, async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = view.primary!;
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(primary)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    let want: unknown;
    try {
      await client.query('CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 30000) g');
      want = (await client.query('SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t')).rows[0];
    } finally {
      await client.end();
    }

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

    const dir = join(c.dir, 'restored-from-s3');
    const restore = await c.cli(['restore', '--config', c.configPath, '--backup', done!.id, '--to-dir', dir, '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    const restored = await startCopy(dir, { parameters: {} });
    try {
      assert.deepEqual((await restored.query('SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t')).rows[0], want);
    } finally {
      if (restored.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    }
  });
});
