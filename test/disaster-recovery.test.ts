// Losing every node: a cluster's three daemons and their Postgres are killed at
// once (kill -9), and a new cluster is built from the lost one's object store
// alone (config restoreFrom): its first primary is restored to the end of the
// archive, the others clone it, it takes writes, and every row the lost
// cluster acknowledged is there. The new cluster writes under its own store;
// the lost one's objects are only read.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { readArchiveView, restoreWindows } from '../src/archive/pitr-command.js';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig, objectStoreDir } from '../src/config/index.js';
import { parseLsn } from '../fsm/index.js';
import { FsObjectStore } from '../src/object-store/index.js';
import { waitOrShowArchiveLogs } from './helpers/archive-logs.js';
import { DaemonCluster } from './helpers/daemons.js';
import { waitHealthy } from './helpers/pg-health.js';

async function connect(c: DaemonCluster, id: string, password: string): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(id)!.postgresPort, user: 'postgres', password, database: 'postgres' });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('disaster recovery: a new cluster from the object store alone', () => {
  const clusters: DaemonCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.destroy();
  });

  it('rebuilds every acknowledged row after all three nodes are killed', async () => {
    const lost = await DaemonCluster.create(['n1', 'n2', 'n3'], 'backups:\n  scheduled: false\n');
    clusters.push(lost);
    const lostConfig = loadConfig(lost.configPath);
    const lostPassword = adminPassword(lostConfig);
    await lost.startAll();
    const view = await waitHealthy(lost, lostPassword, 'a primary and two streaming standbys', 120_000);
    const primary = await connect(lost, view.primary!, lostPassword);
    let acked = 0;
    let lastLsn = '0/0';
    try {
      await primary.query('CREATE TABLE acked (id int PRIMARY KEY)');
      const made = await lost.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
      assert.equal(made.code, 0, made.stderr);
      for (let id = 1; id <= 200; id++) {
        await primary.query('INSERT INTO acked VALUES ($1)', [id]);
        acked = id;
      }
      lastLsn = (await primary.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
    } finally {
      await primary.end();
    }
    // Archived (well within a second; this waits for it rather than guessing).
    const store = new FsObjectStore({ dir: objectStoreDir(lostConfig) });
    try {
      await waitOrShowArchiveLogs(lost, () =>
        lost.waitFor(
          async () => {
            const w = restoreWindows(await readArchiveView(store, 'test/'));
            return w.windows.some((x) => x.toLsn >= parseLsn(lastLsn)!);
          },
          `the archive to reach ${lastLsn}`,
          30_000,
        ),
      );
    } finally {
      await store.close();
    }
    // Every node at once: daemons and postmasters, kill -9.
    for (const [id, n] of lost.nodes) {
      const pidFile = join(lost.dir, 'data', id, 'pg', 'postmaster.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : 0;
      n.proc?.kill('SIGKILL');
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }

    const rebuilt = await DaemonCluster.create(['n1', 'n2', 'n3'], `restoreFrom:\n  config: ${lost.configPath}\n`);
    clusters.push(rebuilt);
    const password = adminPassword(loadConfig(rebuilt.configPath));
    const t0 = performance.now();
    await rebuilt.startAll();
    await waitOrShowArchiveLogs(
      rebuilt,
      async () => void (await waitHealthy(rebuilt, password, 'the rebuilt cluster: a primary and two streaming standbys', 180_000)),
    );
    const again = await waitHealthy(rebuilt, password, 'the rebuilt cluster', 10_000);
    process.stdout.write(`# rebuilt from the store in ${Math.round(performance.now() - t0)} ms\n`);
    const client = await connect(rebuilt, again.primary!, password);
    try {
      const r = await client.query<{ n: number; max: number }>('SELECT count(*)::int AS n, max(id) AS max FROM acked');
      assert.deepEqual(r.rows[0], { n: acked, max: acked }, 'every acknowledged row');
      await client.query('INSERT INTO acked VALUES (1000)');
    } finally {
      await client.end();
    }
    const restoreLog = rebuilt.nodes.get(again.primary!)!.log.find((l) => l.includes('disaster recovery: the first primary is restored'));
    assert.ok(restoreLog, 'the first primary was restored, not initialised');
  });
});
