// Backups through real daemons: three nodes with the default object store (a
// directory under the cluster's data directory), a full backup and an
// incremental on demand (the schedule waits a minute after a leader starts), from
// a streaming standby, both shown by the CLI and status, and `ogel restore`
// from the store alone giving a directory Postgres starts on with exactly the
// rows committed before the backup.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig, objectStoreDir } from '../src/config/index.js';
import { FsObjectStore } from '../src/object-store/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { waitHealthy } from './helpers/pg-health.js';
import { startCopy } from './helpers/postgres.js';

interface BackupJson {
  id: string;
  kind: string;
  state: string;
  node: string | null;
  parent: string | null;
  failureReason: string | null;
}

describe('backups through the daemons', () => {
  let c: DaemonCluster;
  let password: string;

  before(async () => {
    // The default lease (3 s): a bulk load on 2 shared cores must not lapse a 1 s lease and fail over mid-test.
    c = await DaemonCluster.create(['n1', 'n2', 'n3']);
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => c.destroy());

  async function sql<T extends pg.QueryResultRow>(id: string, text: string): Promise<T[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(id)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(text)).rows;
    } finally {
      await client.end();
    }
  }

  async function backups(): Promise<BackupJson[]> {
    const r = await c.cli(['backup', 'list', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { backups: BackupJson[] }).backups;
  }

  it('takes a full backup and an incremental on demand from a standby, and restores them from the store alone', async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = view.primary!;
    await sql(primary, 'CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g');

    // The schedule waits a minute after a leader starts; an operator does not.
    const made = await c.cli(['backup', 'create', '--wait', '--wait-timeout-s', '180', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const full = (JSON.parse(made.stdout) as { backup: BackupJson }).backup;
    assert.equal(full.kind, 'full', 'auto: a full backup when there is nothing to build on');
    assert.equal(full.state, 'complete', full.failureReason ?? '');

    await sql(primary, `UPDATE t SET v = 'after the full backup' WHERE id <= 1000`);
    await sql(primary, 'CHECKPOINT');
    await sql(primary, 'SELECT pg_switch_wal()');
    const want = (await sql(primary, 'SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t'))[0];

    const r = await c.cli(['backup', 'create', '--incremental', '--wait', '--wait-timeout-s', '180', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const inc = (JSON.parse(r.stdout) as { backup: BackupJson }).backup;
    assert.equal(inc.state, 'complete', inc.failureReason ?? '');
    assert.equal(inc.kind, 'incremental');
    assert.equal(inc.parent, full.id);
    assert.notEqual(inc.node, primary, 'taken from a streaming standby');

    // Read back and checked after it was taken.
    await c.waitFor(
      async () => {
        const r = await c.cli(['backup', 'show', inc.id, '--json']);
        return (JSON.parse(r.stdout) as { backup: { verification: { state: string } } }).backup.verification.state === 'verified';
      },
      'the incremental verified',
      30_000,
    );
    const st = await c.cli(['status']);
    assert.match(st.stdout, new RegExp(`Backups: newest ${inc.id} \\(incremental, .* ago, verified\\)`));

    const dir = join(c.dir, 'restored');
    const restore = await c.cli(['restore', '--config', c.configPath, '--backup', 'latest', '--to-dir', dir, '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual((JSON.parse(restore.stdout) as { chain: string[] }).chain, [full.id, inc.id]);
    // A free port (the source's is in use); the source's other settings, as a user would start it.
    const restored = await startCopy(dir, { parameters: {} });
    try {
      assert.deepEqual((await restored.query('SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t')).rows[0], want);
      // Taken from a standby, restored as a standalone primary: it takes writes.
      assert.equal((await restored.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false);
      await restored.query('CREATE TABLE written_after_restore (x int)');
    } finally {
      if (restored.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    }
  });

  // Once, in CI, the backup taken right after the killed node returned stayed 'running' on it for minutes and
  // '--wait' (no deadline then) hung the suite. Since then a backup that streams nothing is aborted by its
  // worker, a backup on a node the leader no longer hears from is failed, and --wait takes a deadline; on a
  // timeout the test prints the nodes' logs.
  it('a backup whose daemon is killed mid-way is recorded as failed when that daemon returns, its objects are deleted, and the next backup succeeds', {
    timeout: 420_000,
  }, async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    // Enough data that the backup takes a few seconds.
    await sql(view.primary!, "CREATE TABLE big AS SELECT g AS id, md5(g::text) || repeat('x', 200) AS v FROM generate_series(1, 600000) g");
    await sql(view.primary!, 'CHECKPOINT');
    const started = await c.cli(['backup', 'create', '--full', '--json']);
    assert.equal(started.code, 0, started.stderr);
    const victim = (JSON.parse(started.stdout) as { backup: BackupJson }).backup;
    assert.equal(victim.state, 'running');
    const node = victim.node!;
    await c.kill9(node);
    await c.start(node);
    await c.waitFor(async () => (await backups()).find((b) => b.id === victim.id)?.state === 'failed', `${victim.id} recorded as failed`, 90_000);
    const failed = (await backups()).find((b) => b.id === victim.id)!;
    if (failed.failureReason?.startsWith('interrupted') !== true) {
      // The kill may have landed after the backup had finished; then this run proves nothing about it.
      assert.fail(`the kill did not interrupt the backup (it ended: ${failed.state}, ${failed.failureReason ?? ''}); the test needs a longer backup`);
    }
    const store = new FsObjectStore({ dir: objectStoreDir(loadConfig(c.configPath)) });
    try {
      await c.waitFor(
        async () => {
          for await (const _ of store.list(`test/basebackups/${victim.id}/`)) return false;
          return true;
        },
        `the objects of ${victim.id} deleted`,
        30_000,
      );
    } finally {
      await store.close();
    }
    const next = await c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
    if (next.code !== 0) {
      const logs = [...c.nodes.values()].map((n) => `==== ${n.id}\n${n.log.slice(-40).join('\n')}`).join('\n');
      assert.fail(`the backup after the restart did not complete: ${next.stdout}${next.stderr}\n${logs}`);
    }
    assert.equal((JSON.parse(next.stdout) as { backup: BackupJson }).backup.state, 'complete');
  });

  it('refuses a second backup while one runs, and an incremental with nothing to build on names the fix', async () => {
    const first = await c.cli(['backup', 'create', '--full', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const second = await c.cli(['backup', 'create', '--full']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /is still running on n\d; one runs at a time/);
    await c.waitFor(async () => (await backups()).every((b) => b.state !== 'running'), 'the full backup to finish', 60_000);
  });

  it('retention retires what the policy does not keep and the sweep deletes its objects; verify --restore-test passes, a flipped byte fails verify naming the object; delete forgets a backup and its objects go', {
    timeout: 300_000,
  }, async () => {
    const storeDir = objectStoreDir(loadConfig(c.configPath));
    const store = new FsObjectStore({ dir: storeDir });
    const prefixes = async () => {
      const ids = new Set<string>();
      for await (const o of store.list('test/basebackups/')) ids.add(o.key.split('/')[2]!);
      return [...ids].sort();
    };
    try {
      // The default policy keeps the newest backup of each of the last 7 days: every backup
      // here is from today, so only the newest complete one (with no chain) stays.
      let complete: BackupJson[] = [];
      await c.waitFor(
        async () => {
          complete = (await backups()).filter((b) => b.state === 'complete');
          return complete.length === 1;
        },
        'retention to keep only the newest complete backup',
        120_000,
      );
      const kept = complete[0]!;
      await c.waitFor(async () => (await prefixes()).join() === kept.id, `the objects of retired backups swept (left: ${(await prefixes()).join()})`, 60_000);

      const test = await c.cli(['backup', 'verify', kept.id, '--restore-test', '--json']);
      assert.equal(test.code, 0, `${test.stdout}${test.stderr}`);
      const verdict = JSON.parse(test.stdout) as {
        verdict: { ok: boolean; kind: string; detail: string };
        backup: { verification: { state: string; kind: string } };
      };
      assert.deepEqual([verdict.verdict.ok, verdict.verdict.kind], [true, 'restore'], verdict.verdict.detail);
      assert.match(verdict.verdict.detail, /amcheck clean: \d+ databases, \d+ tables, \d+ indexes/);
      assert.deepEqual([verdict.backup.verification.state, verdict.backup.verification.kind], ['verified', 'restore']);

      // A flipped byte in one stored part.
      const part = [] as string[];
      for await (const o of store.list(`test/basebackups/${kept.id}/`)) if (o.key.includes('/base.tar')) part.push(o.key);
      assert.ok(part.length > 0, 'the backup has parts');
      const rec = JSON.parse(readFileSync(join(storeDir, 'objects', part[0]!), 'utf8')) as { blob: string };
      const blob = join(storeDir, rec.blob);
      const bytes = readFileSync(blob);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(blob, bytes);
      const bad = await c.cli(['backup', 'verify', kept.id]);
      assert.equal(bad.code, 1, bad.stdout);
      assert.ok(
        bad.stdout.includes(part[0]!) && bad.stdout.includes('FAILED verification'),
        `the verdict names the damaged object: ${bad.stdout}${bad.stderr}`,
      );
      const shown = JSON.parse((await c.cli(['backup', 'show', kept.id, '--json'])).stdout) as { backup: { verification: { state: string } } };
      assert.equal(shown.backup.verification.state, 'failed');
      const st = await c.cli(['status']);
      assert.match(st.stdout, new RegExp(`Backups: newest ${kept.id} \\(full, .*, FAILED verification: not used for restores\\)`), st.stdout);

      const del = await c.cli(['backup', 'delete', kept.id, '--json']);
      assert.equal(del.code, 0, del.stderr);
      assert.ok(!(await backups()).some((b) => b.id === kept.id));
      // (With no complete backup left, the schedule takes a new full one at once: only this one's objects must go.)
      try {
        await c.waitFor(async () => !(await prefixes()).includes(kept.id), "the deleted backup's objects swept", 30_000);
      } catch (e) {
        const lines = [...c.nodes.values()].flatMap((n) => n.log.filter((l) => /sweep|backup/i.test(l)).slice(-15));
        throw new Error(`${(e as Error).message}; left: ${(await prefixes()).join()}\n${lines.join('\n')}`);
      }
      const again = await c.cli(['backup', 'delete', kept.id]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /no backup/);
    } finally {
      await store.close();
    }
  });
});
