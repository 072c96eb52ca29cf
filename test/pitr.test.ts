// The continuous WAL archive and point-in-time restore through real daemons:
// three nodes with the default object store, the primary's WAL streamed into
// it, a full backup, then rows committed one by one with the instant and the
// WAL position right after each commit. `ogel restore` from the store alone
// must give exactly the rows committed at or before a time, an LSN, a named
// restore point and the latest, and refuse targets it cannot reach, naming
// what is restorable.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { formatLsn, parseLsn } from '../fsm/index.js';
import { readArchiveView } from '../src/archive/pitr-command.js';
import { pathSpans, timelinePath } from '../src/archive/pitr-plan.js';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig, objectStoreDir } from '../src/config/index.js';
import { FsObjectStore } from '../src/object-store/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { pgView, waitHealthy } from './helpers/pg-health.js';
import { startCopy } from './helpers/postgres.js';
import { waitOrShowArchiveLogs } from './helpers/archive-logs.js';

describe('point-in-time restore through the daemons', () => {
  let c: DaemonCluster;
  let password: string;
  let store: FsObjectStore;
  /** Every committed row: its id, the instant and WAL insert position right after its commit. */
  const rows: { id: number; atMs: number; lsn: string }[] = [];

  before(async () => {
    // No scheduled backups: a full backup taken on its own after the failover (a new timeline), and the
    // retention that follows it on the same day, would move the restore window while the test looks at it.
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], 'backups:\n  scheduled: false\n');
    const config = loadConfig(c.configPath);
    password = adminPassword(config);
    store = new FsObjectStore({ dir: objectStoreDir(config) });
    await c.startAll();
  });
  after(async () => {
    await store?.close();
    await c?.destroy();
  });

  async function connect(id: string): Promise<pg.Client> {
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(id)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  /** Waits until the store's archive holds WAL up to `lsn` on the newest timeline. */
  async function archivedTo(lsn: string, timeline: number): Promise<void> {
    const want = parseLsn(lsn)!;
    await waitOrShowArchiveLogs(c, () =>
      c.waitFor(
        async () => {
          const view = await readArchiveView(store, 'test/');
          const path = timelinePath(timeline, view.histories);
          if (typeof path === 'string') return false;
          return pathSpans(view.catalog, path).some((s) => s.endLsn >= want);
        },
        `the archive to reach ${lsn} on timeline ${timeline}`,
        30_000,
      ),
    );
  }

  async function restoreAndCount(args: string[], name: string): Promise<{ ids: number[]; out: Record<string, unknown> }> {
    const dir = join(c.dir, name);
    const r = await c.cli(['restore', '--config', c.configPath, ...args, '--to-dir', dir, '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const copy = await startCopy(dir, { parameters: {} });
    try {
      const rows = (await copy.query<{ id: number }>('SELECT id FROM pitr ORDER BY id')).rows;
      assert.equal((await copy.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'the copy is promoted');
      return { ids: rows.map((x) => x.id), out: JSON.parse(r.stdout) as Record<string, unknown> };
    } finally {
      if (copy.isRunning()) await copy.stop('immediate', { timeoutMs: 10_000 });
    }
  }

  it('restores exactly to a time, an LSN, a restore point and the latest, and refuses what the archive cannot reach', async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = await connect(view.primary!);
    try {
      await primary.query('CREATE TABLE pitr (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
      const made = await c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
      assert.equal(made.code, 0, made.stderr);
      const backupDoneMs = Date.now();

      // One row per transaction, 80 ms apart: right after each commit, the
      // instant and the WAL insert position (the next row's records all come after it).
      const committed: { id: number; atMs: number; lsn: string }[] = [];
      for (let id = 1; id <= 30; id++) {
        if (id === 26) {
          const rp = await c.cli(['restore-point', 'create', 'after-25', '--json']);
          assert.equal(rp.code, 0, rp.stderr);
        }
        await primary.query('INSERT INTO pitr (id) VALUES ($1)', [id]);
        const lsn = (await primary.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
        committed.push({ id, atMs: Date.now(), lsn });
        await new Promise((r) => setTimeout(r, 80));
      }
      const tl = Number.parseInt((await primary.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f.slice(0, 8), 16);
      const t0 = performance.now();
      await archivedTo(committed.at(-1)!.lsn, tl);
      process.stdout.write(`# archive caught up ${Math.round(performance.now() - t0)} ms after the last commit returned\n`);

      const atTime = committed[9]!.atMs + 40;
      const byTime = await restoreAndCount(['--target-time', new Date(atTime).toISOString()], 'by-time');
      assert.deepEqual(byTime.ids, range(1, 10), 'every row committed at or before the time, none after');

      const byLsn = await restoreAndCount(['--target-lsn', committed[19]!.lsn], 'by-lsn');
      assert.deepEqual(byLsn.ids, range(1, 20), 'every row committed at or before the LSN, none after');

      const byName = await restoreAndCount(['--target-name', 'after-25'], 'by-name');
      assert.deepEqual(byName.ids, range(1, 25), 'every row committed before the restore point, none after');
      const unknown = await c.cli(['restore', '--config', c.configPath, '--target-name', 'never-made', '--to-dir', join(c.dir, 'never')]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no restore point "never-made" is recorded/);

      const latest = await restoreAndCount(['--latest'], 'latest');
      assert.deepEqual(latest.ids, range(1, 30));

      // Refusals come before any work and name the restorable window.
      const early = await c.cli([
        'restore',
        '--config',
        c.configPath,
        '--target-time',
        new Date(backupDoneMs - 3_600_000).toISOString(),
        '--to-dir',
        join(c.dir, 'early'),
      ]);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /before the end of the oldest backup\. Restorable: from .* on timeline \d+/);
      const future = await c.cli([
        'restore',
        '--config',
        c.configPath,
        '--target-time',
        new Date(Date.now() + 3_600_000).toISOString(),
        '--to-dir',
        join(c.dir, 'future'),
      ]);
      assert.equal(future.code, 1);
      assert.match(future.stderr, /it is in the future\. Restorable: from /);
      const badLsn = await c.cli(['restore', '--config', c.configPath, '--target-lsn', 'FF/0', '--to-dir', join(c.dir, 'far')]);
      assert.equal(badLsn.code, 1);
      assert.match(badLsn.stderr, /past the end of the archive/);
      const list = await c.cli(['restore', '--config', c.configPath, '--list']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /Restorable on timeline \d+:\n {2}from /);
      assert.ok(formatLsn(parseLsn(committed[0]!.lsn)!));
      rows.push(...committed);
    } finally {
      await primary.end();
    }
  });

  it('restores across a failover: before, at and after the promotion, with no gap in the archive', async () => {
    const before = await waitHealthy(c, password, 'a primary and two streaming standbys', 60_000);
    const old = before.primary!;
    const writeRows = async (id: string, from: number, to: number) => {
      const client = await connect(id);
      try {
        for (let i = from; i <= to; i++) {
          await client.query('INSERT INTO pitr (id) VALUES ($1)', [i]);
          const lsn = (await client.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
          rows.push({ id: i, atMs: Date.now(), lsn });
          await new Promise((r) => setTimeout(r, 80));
        }
      } finally {
        await client.end();
      }
    };
    await writeRows(old, 31, 40);
    // The primary's daemon and its Postgres die at once: every acknowledged row is on a quorum standby.
    const pgDir = join(c.dir, 'data', old, 'pg');
    const postmasterPid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    c.nodes.get(old)!.proc!.kill('SIGKILL');
    process.kill(postmasterPid, 'SIGKILL');
    let promoted = '';
    await c.waitFor(
      async () => {
        const v = await pgView(c).catch(() => null);
        if (!v || v.primary === null || v.primary === old || v.nodes[v.primary]?.reportedRole !== 'primary') return false;
        promoted = v.primary;
        return (await c.get(promoted, '/primary', null)).status === 200;
      },
      'a new primary',
      60_000,
    );
    await writeRows(promoted, 41, 50);
    const client = await connect(promoted);
    const tl = Number.parseInt((await client.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f.slice(0, 8), 16);
    await client.end();
    assert.ok(tl >= 2, `the new primary writes timeline ${tl}`);
    await archivedTo(rows.at(-1)!.lsn, tl);

    // One window from the backup to the end: the failover left no gap.
    const list = await c.cli(['restore', '--config', c.configPath, '--list', '--json']);
    const restorable = (JSON.parse(list.stdout) as { restorable: unknown[]; timeline: number }).restorable;
    assert.equal(restorable.length, 1, list.stdout);

    const atRow = (id: number) => new Date(rows.find((r) => r.id === id)!.atMs + 40).toISOString();
    assert.deepEqual((await restoreAndCount(['--target-time', atRow(35)], 'fo-before')).ids, range(1, 35), 'before the promotion');
    assert.deepEqual(
      (await restoreAndCount(['--target-time', atRow(40)], 'fo-at')).ids,
      range(1, 40),
      'at the promotion: every row the old primary acknowledged',
    );
    assert.deepEqual((await restoreAndCount(['--target-time', atRow(45)], 'fo-after')).ids, range(1, 45), 'after the promotion');
    assert.deepEqual((await restoreAndCount(['--target-lsn', rows.find((r) => r.id === 47)!.lsn], 'fo-lsn')).ids, range(1, 47));
    const latest = await restoreAndCount(['--latest'], 'fo-latest');
    assert.deepEqual(latest.ids, range(1, 50));
    assert.equal(latest.out['timeline'], tl, 'followed the new timeline');
    await c.start(old);
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
