// npm run bench:backup -- [--scale 70] [--json]
// Base backups of one Postgres 17 primary holding a pgbench database, against
// the physical limits of the same machine in the same run:
//   - the limits: reading the data directory (tar -cf - DIR > /dev/null) and a
//     plain copy of its files to the same disk (cp -a, then sync);
//   - a full backup into the fs object store (brotli-1, and uncompressed) and
//     into S3 (a real s3rver process on loopback);
//   - an incremental backup after updating 5% of the rows (a contiguous range): its size and
//     time as fractions of the full backup's;
//   - restores of the full backup and of the full + incremental chain: seconds
//     until Postgres answers a query on the restored directory.
// The JSON summary is printed last.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { restoreChain } from '../src/backup/restore.js';
import { takeBackup } from '../src/backup/take-backup.js';
import type { BackupManifest } from '../src/backup/manifest.js';
import { FsObjectStore, S3ObjectStore, type ObjectStore } from '../src/object-store/index.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../src/postgres/settings.js';
import { makeTempPrimary, type TempPrimary, startCopy } from '../test/helpers/postgres.js';
import { startS3rver, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY } from '../test/helpers/s3rver.js';
import { round } from './bench/lib/stats.js';

const HELP = `Usage: npm run bench:backup -- [--scale N] [--json]

Backs up a pgbench database of scale N (default 70, about 1 GB) and compares
with reading and copying the data directory on the same machine in the same
run; see the header of scripts/bench-backup.ts. Needs pgbench (Debian:
postgresql-15) and tar.`;

function log(s: string): void {
  process.stderr.write(`[bench:backup] ${s}\n`);
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function dirBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

async function timeRestoreToQuery(store: ObjectStore, chain: BackupManifest[], dir: string, owner: { uid: number; gid: number }): Promise<number> {
  const t0 = performance.now();
  const stats = await restoreChain(store, chain, dir, { owner });
  const tStart = performance.now();
  const pg = await startCopy(dir, { parameters: { shared_buffers: '128MB', max_connections: 30 }, timeoutMs: 120_000 });
  await pg.query('SELECT count(*) FROM pgbench_branches');
  const s = seconds(t0);
  const p = stats.phasesMs;
  log(
    `  restore of ${chain.length} backup(s): extract ${p.extract} ms, fsync ${p.fsync} ms, manifest check ${p.check} ms, combine ${p.combine} ms; Postgres start to first answer ${Math.round(seconds(tStart) * 1000)} ms`,
  );
  await pg.stop('immediate', { timeoutMs: 20_000 });
  rmSync(dir, { recursive: true, force: true });
  return s;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { scale: { type: 'string', default: '70' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const scale = Number(values.scale);
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale must be a positive integer, got ${values.scale}`);
  if (spawnSync('sh', ['-c', 'command -v pgbench']).status !== 0) throw new Error('pgbench is not installed (Debian: apt-get install postgresql-15)');

  const primary: TempPrimary = await makeTempPrimary({
    nodeId: 'p1',
    settings: { parameters: { summarize_wal: 'on', shared_buffers: '128MB', max_connections: 30, fsync: false, max_wal_size: '2GB' } },
  });
  const server = await startS3rver();
  const fsStore = new FsObjectStore({ dir: join(primary.root, 'objects') });
  const s3Store = new S3ObjectStore({
    endpoint: server.endpoint,
    region: 'us-east-1',
    bucket: server.bucket,
    prefix: 'bench',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY, from: 'bench' },
    connectTimeoutMs: 3000,
    requestTimeoutMs: 60_000,
  });
  try {
    const owner = primary.pg.user;
    await primary.pg.query(`CREATE ROLE bench LOGIN SUPERUSER PASSWORD 'bench-password-0123456789'`);
    log(`pgbench -i -s ${scale}`);
    const init = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'bench', '-i', '-q', '-s', String(scale), 'postgres'], {
      encoding: 'utf8',
      env: { ...process.env, PGPASSWORD: 'bench-password-0123456789' },
    });
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr.slice(-500)}`);
    await primary.pg.query('CHECKPOINT');
    const dbBytes = Number((await primary.pg.query<{ n: string }>(`SELECT pg_database_size('postgres') AS n`)).rows[0]?.n);
    const dataBytes = dirBytes(primary.dataDir);
    log(`database ${(dbBytes / 1e6).toFixed(0)} MB, data directory ${(dataBytes / 1e6).toFixed(0)} MB`);

    let t0 = performance.now();
    // Through cat: GNU tar writing straight to /dev/null skips reading the files.
    execFileSync('sh', ['-c', `tar -cf - -C '${primary.dataDir}' . 2>/dev/null | cat > /dev/null`]);
    const limitRead = dataBytes / 1e6 / seconds(t0);
    const copyDir = join(primary.root, 'plain-copy');
    t0 = performance.now();
    execFileSync('cp', ['-a', primary.dataDir, copyDir]);
    execFileSync('sync', ['-f', copyDir]);
    const limitCopy = dataBytes / 1e6 / seconds(t0);
    rmSync(copyDir, { recursive: true, force: true });
    log(`limits: read ${limitRead.toFixed(0)} MB/s, copy ${limitCopy.toFixed(0)} MB/s`);

    const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
    const common = { clusterPrefix: 'bench/', cluster: 'bench', conn, node: 'n1', sourceRole: 'primary' as const };
    const measure = async (label: string, store: ObjectStore, extra: { compression?: 'brotli' | 'none'; parent?: BackupManifest; id: string }) => {
      const t = performance.now();
      const m = await takeBackup({ ...common, store, ...extra });
      const s = seconds(t);
      log(
        `${label}: ${(m.tarBytes / 1e6).toFixed(0)} MB tar -> ${(m.storedBytes / 1e6).toFixed(0)} MB stored in ${s.toFixed(1)} s = ${(m.tarBytes / 1e6 / s).toFixed(0)} MB/s`,
      );
      return { m, s, mbS: m.tarBytes / 1e6 / s };
    };
    const fullFs = await measure('full, fs', fsStore, { id: 'full-fs' });
    const fullFsRaw = await measure('full, fs, uncompressed', fsStore, { id: 'full-fs-raw', compression: 'none' });
    const fullS3 = await measure('full, s3rver', s3Store, { id: 'full-s3' });

    // 5% of the rows as one contiguous range (recent rows are the hot ones in
    // most applications). Spread evenly (every 20th row) it would touch every
    // page of the table, and an incremental backup copies pages, not rows.
    log('updating 5% of the rows (a contiguous range of pgbench_accounts)');
    await primary.pg.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= ${scale * 5000}`);
    await primary.pg.query('CHECKPOINT');
    await primary.pg.query('SELECT pg_switch_wal()');
    const inc = await measure('incremental, fs', fsStore, { id: 'inc-fs', parent: fullFs.m });

    const restoreDir = join(primary.root, 'restored');
    mkdirSync(join(primary.root), { recursive: true });
    const restoreFull = await timeRestoreToQuery(fsStore, [fullFs.m], restoreDir, owner);
    log(`restore of the full backup, to the first query: ${restoreFull.toFixed(1)} s`);
    const restoreChainS = await timeRestoreToQuery(fsStore, [fullFs.m, inc.m], restoreDir, owner);
    log(`restore of full + incremental, to the first query: ${restoreChainS.toFixed(1)} s`);

    const summary = {
      db_bytes: dbBytes,
      full_fs: { mb_s: round(fullFs.mbS, 1), s: round(fullFs.s, 2) },
      full_fs_uncompressed: { mb_s: round(fullFsRaw.mbS, 1), s: round(fullFsRaw.s, 2) },
      full_s3: { mb_s: round(fullS3.mbS, 1), s: round(fullS3.s, 2) },
      limit_read_mb_s: round(limitRead, 1),
      limit_copy_mb_s: round(limitCopy, 1),
      ratio_full_fs_vs_copy: round(fullFs.mbS / limitCopy, 2),
      ratio_full_fs_uncompressed_vs_copy: round(fullFsRaw.mbS / limitCopy, 2),
      incremental: { size_ratio: round(inc.m.storedBytes / fullFs.m.storedBytes, 3), time_ratio: round(inc.s / fullFs.s, 3) },
      restore_full_s: round(restoreFull, 2),
      restore_chain_s: round(restoreChainS, 2),
      compression_ratio: round(fullFs.m.storedBytes / fullFs.m.tarBytes, 3),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await fsStore.close();
    await s3Store.close();
    await server.stop();
    await primary.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:backup: ${(e as Error).message}\n`);
  process.exit(1);
});
