// A gap in the WAL archive through real daemons: the object store breaks while
// the primary writes more WAL than the archive slot may keep
// (max_slot_wal_keep_size), so Postgres lets WAL go that the archive never had.
// Once the store is back, the archive must see the gap (its log says so, the
// index and status show it), go on from what the server still has, and a full
// backup must close it by itself, making the time since restorable again.

import assert from 'node:assert/strict';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig, objectStoreDir } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { waitHealthy } from './helpers/pg-health.js';
import { startCopy } from './helpers/postgres.js';
import { waitOrShowArchiveLogs } from './helpers/archive-logs.js';

describe('a gap in the WAL archive', () => {
  let c: DaemonCluster;
  let password: string;
  let storeDir: string;

  before(async () => {
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], 'postgres:\n  parameters:\n    max_slot_wal_keep_size: 48MB\n');
    const config = loadConfig(c.configPath);
    password = adminPassword(config);
    storeDir = objectStoreDir(config);
    await c.startAll();
  });
  after(async () => {
    if (existsSync(`${storeDir}.away`)) {
      rmSync(storeDir, { force: true });
      renameSync(`${storeDir}.away`, storeDir);
    }
    await c?.destroy();
  });

  it('is detected, shown in status, and closed by a full backup taken by itself', async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(view.primary!)!.postgresPort, user: 'postgres', password, database: 'postgres' });
    primary.on('error', () => {});
    await primary.connect();
    const backups = async () => {
      const r = await c.cli(['backup', 'list', '--json']);
      return (JSON.parse(r.stdout) as { backups: { id: string; kind: string; state: string }[] }).backups.filter(
        (b) => b.state === 'complete' && b.kind === 'full',
      );
    };
    const windows = async () => {
      const r = await c.cli(['restore', '--config', c.configPath, '--list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { restorable: { backup: string; fromLsn: string; toLsn: string }[] }).restorable;
    };
    try {
      await primary.query('CREATE TABLE before_gap AS SELECT 1 AS x');
      const made = await c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
      assert.equal(made.code, 0, made.stderr);

      // The store breaks (a file where its directory was: every write fails, even as root).
      renameSync(storeDir, `${storeDir}.away`);
      writeFileSync(storeDir, 'not a directory');
      // More WAL than the slot may keep, with checkpoints, until Postgres gives up the slot's WAL.
      await c.waitFor(
        async () => {
          await primary.query('INSERT INTO before_gap SELECT g FROM generate_series(1, 200000) g; SELECT pg_switch_wal(); CHECKPOINT');
          const r = await primary.query<{ s: string }>("SELECT wal_status AS s FROM pg_replication_slots WHERE slot_name = 'ogel_wal_archive'");
          return r.rows[0]?.s === 'lost' || r.rows[0] === undefined;
        },
        "the archive slot's WAL to be lost",
        120_000,
      );
      rmSync(storeDir, { force: true });
      renameSync(`${storeDir}.away`, storeDir);
      await primary.query('CREATE TABLE after_gap AS SELECT 2 AS y');

      await waitOrShowArchiveLogs(c, () =>
        c.waitFor(async () => c.nodes.get(view.primary!)!.log.some((l) => l.includes('WAL archive GAP')), 'the archive to report the gap', 60_000),
      );
      // Shown: the index holds two ranges for the timeline (status) once the archive's first report after the
      // gap is in, until the full backup below closes the gap.
      await c.waitFor(
        async () => {
          const st = await c.cli(['status', '--json']);
          return ((JSON.parse(st.stdout) as { archive?: { timelineRanges?: number } }).archive?.timelineRanges ?? 0) >= 2;
        },
        'status to show the gap (two ranges on the timeline)',
        30_000,
      );
      // Closed by itself: a full backup the scheduler takes for the gap, after which the time since is restorable.
      const first = (JSON.parse(made.stdout) as { backup: { id: string } }).backup.id;
      await waitOrShowArchiveLogs(c, () => c.waitFor(async () => (await backups()).some((b) => b.id !== first), 'a full backup to close the gap', 240_000));
      assert.ok(c.nodes.get(view.primary!)!.log.length > 0);
      const w = await windows();
      assert.ok(w.length >= 1 && w.at(-1)!.backup !== first, `the newest window starts at the gap's backup: ${JSON.stringify(w)}`);
      const dir = join(c.dir, 'after-gap');
      const r = await c.cli(['restore', '--config', c.configPath, '--latest', '--to-dir', dir, '--json']);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const copy = await startCopy(dir, { parameters: {} });
      try {
        assert.deepEqual((await copy.query('SELECT y FROM after_gap')).rows, [{ y: 2 }]);
      } finally {
        if (copy.isRunning()) await copy.stop('immediate', { timeoutMs: 10_000 });
      }
    } finally {
      await primary.end();
    }
  });
});
