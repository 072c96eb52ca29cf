// npm run bench:proxy -- [--seconds 10] [--scale 10] [--clients 1,16,64] [--idle-clients 5000] [--json]
// Debian's pgbench against one Postgres 17 primary three ways in the same run:
// directly, through PgBouncer 1.18 (transaction mode) and through the ogel proxy
// (transaction mode, the same pool size), select-only (-S), select-only with
// named prepared statements (-S -M prepared) and TPC-B-like, at
// each client count; then the proxy's memory per idle client (RSS growth over
// N idle authenticated clients, divided by N), and PgBouncer's for comparison.
// The JSON summary is printed last.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pg from 'pg';
import { ensurePostgresUser, isRoot } from '../src/postgres/os-user.js';
import { freePort, makeTempPrimary } from '../test/helpers/postgres.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';
import { setTimeout as sleep } from 'node:timers/promises';

const HELP = `Usage: npm run bench:proxy -- [--seconds N] [--scale N] [--clients 1,16,64] [--pool-size N] [--idle-clients N] [--json]

pgbench (-S select-only, -S -M prepared, and TPC-B-like) against one Postgres 17 primary:
directly, through PgBouncer (transaction mode) and through the ogel proxy
(transaction mode), with the same pool size (default 20), N seconds per run
(default 10), scale N (default 10). Then the memory per idle client of the
proxy (and of PgBouncer): RSS growth over --idle-clients (default 5000) idle
authenticated clients. Needs pgbench and pgbouncer (Debian: postgresql-15,
pgbouncer).`;

const USER = 'bench';
const PASSWORD = 'bench-password-0123456789';
const DB = 'bench';

interface RunResult {
  tps: number;
  p99_ms: number;
  p50_ms: number;
  transactions: number;
}

type Target = 'direct' | 'pgbouncer' | 'ogel';

function log(s: string): void {
  process.stderr.write(`[bench:proxy] ${s}\n`);
}

function need(cmd: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) throw new Error(`${cmd} is not installed (Debian: apt-get install ${pkg})`);
}

/** One pgbench run; latency from its per-transaction log (-l). */
/** select-only (-S) and TPC-B-like over the simple protocol, and select-only with -M prepared (named statements, extended protocol). */
type Workload = 'select-only' | 'select-only-prepared' | 'tpcb-like';

function pgbench(port: number, clients: number, seconds: number, workload: Workload, dir: string): RunResult {
  const logDir = mkdtempSync(join(dir, 'pgbench-log-'));
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    USER,
    '-n',
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, 2)),
    '-T',
    String(seconds),
    '-l',
    '--log-prefix',
    join(logDir, 'tx'),
  ];
  if (workload !== 'tpcb-like') args.push('-S');
  if (workload === 'select-only-prepared') args.push('-M', 'prepared');
  args.push(DB);
  const r = spawnSync('pgbench', args, { encoding: 'utf8', env: { ...process.env, PGPASSWORD: PASSWORD }, timeout: (seconds + 60) * 1000 });
  if (r.status !== 0) throw new Error(`pgbench on port ${port} failed (${r.status ?? r.signal}): ${r.stderr.slice(-800)}`);
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout)?.[1];
  if (!tps) throw new Error(`pgbench printed no tps: ${r.stdout.slice(-500)}`);
  const latencies: number[] = [];
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line !== '') latencies.push(us / 1000);
    }
  }
  rmSync(logDir, { recursive: true, force: true });
  const s = sortNumbers(latencies);
  return { tps: round(Number(tps), 0), p99_ms: round(percentile(s, 99), 3), p50_ms: round(percentile(s, 50), 3), transactions: s.length };
}

async function startPgbouncer(dir: string, upstreamPort: number, poolSize: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  // The plain password: with a SCRAM secret here, PgBouncer can log in to the
  // server only if the server stores the same secret (same salt).
  writeFileSync(join(dir, 'userlist.txt'), `"${USER}" "${PASSWORD}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${DB} = host=127.0.0.1 port=${upstreamPort} dbname=${DB}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 20000',
      'max_db_connections = 0',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  // PgBouncer refuses to run as root: run it as the Postgres OS user.
  const user = isRoot() ? ensurePostgresUser() : undefined;
  if (user) for (const f of ['userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), user.uid, user.gid);
  const proc = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'], ...(user ? { uid: user.uid, gid: user.gid } : {}) });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  try {
    await waitConnectable(port, () => `pgbouncer did not start: ${err.slice(-500)}`);
  } catch (e) {
    proc.kill('SIGKILL'); // never leave it behind
    throw e;
  }
  return { port, proc };
}

async function startProxy(
  upstreamPort: number,
  poolSize: number,
): Promise<{ port: number; proc: ChildProcess; rss: () => Promise<{ rss: number; clients: number }> }> {
  const script = resolve('dist/scripts/bench/proxy-standalone.js');
  // OGEL_BENCH_PROXY_NODE_ARGS: extra node flags for the proxy process (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
  const nodeArgs = (process.env.OGEL_BENCH_PROXY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const proc = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--expose-gc',
      script,
      '--upstream-port',
      String(upstreamPort),
      '--user',
      USER,
      '--password',
      PASSWORD,
      '--database',
      DB,
      '--pool-size',
      String(poolSize),
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: proc.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (l) => waiting.shift()?.(l));
  const next = () => new Promise<string>((r) => waiting.push(r));
  const { port } = JSON.parse(await next()) as { port: number };
  const rss = async () => {
    const p = next();
    proc.stdin!.write('rss\n');
    return JSON.parse(await p) as { rss: number; clients: number };
  };
  return { port, proc, rss };
}

async function waitConnectable(port: number, why: () => string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const c = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: DB, connectionTimeoutMillis: 1_000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      if (Date.now() - t0 > 15_000) throw new Error(why());
      await sleep(50);
    }
  }
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** User and system CPU time of a process so far, in microseconds (from /proc; clock ticks of 10 ms). */
function cpuOf(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) * 10_000, sys: Number(f[12]) * 10_000 };
}

/** Opens n idle, authenticated clients (in batches), returns a closer. */
async function openIdle(port: number, n: number): Promise<() => Promise<void>> {
  const clients: pg.Client[] = [];
  const batch = 100;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: DB, connectionTimeoutMillis: 30_000 });
        c.on('error', () => {});
        await c.connect();
        clients.push(c);
      }),
    );
  }
  return async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  };
}

async function main(): Promise<number> {
  const argSpec = {
    options: {
      seconds: { type: 'string', default: '10' },
      scale: { type: 'string', default: '10' },
      clients: { type: 'string', default: '1,16,64' },
      'pool-size': { type: 'string', default: '20' },
      'idle-clients': { type: 'string', default: '5000' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  } satisfies ParseArgsConfig;
  let a: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    a = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`bench:proxy: ${(e as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const seconds = Number(a.seconds);
  const scale = Number(a.scale);
  const poolSize = Number(a['pool-size']);
  const idleClients = Number(a['idle-clients']);
  const clientCounts = a.clients.split(',').map(Number);
  const bad = (flag: string, v: string, range: string) => {
    process.stderr.write(`bench:proxy: ${flag} must be ${range}, got '${v}'\n`);
    return 2;
  };
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) return bad('--seconds', a.seconds, 'an integer from 1 to 3600');
  if (!Number.isInteger(scale) || scale < 1 || scale > 1000) return bad('--scale', a.scale, 'an integer from 1 to 1000');
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 500) return bad('--pool-size', a['pool-size'], 'an integer from 1 to 500');
  if (!Number.isInteger(idleClients) || idleClients < 0 || idleClients > 15_000) return bad('--idle-clients', a['idle-clients'], 'an integer from 0 to 15000');
  if (clientCounts.some((c) => !Number.isInteger(c) || c < 1 || c > 1000))
    return bad('--clients', a.clients, 'a comma-separated list of integers from 1 to 1000');
  need('pgbench', 'postgresql-15');
  need('pgbouncer', 'pgbouncer');

  const dir = mkdtempSync(join(tmpdir(), 'ogel-bench-proxy-'));
  chmodSync(dir, 0o755);
  const primary = await makeTempPrimary({
    settings: { parameters: { max_connections: 300, shared_buffers: '256MB', fsync: true } },
  });
  const procs: ChildProcess[] = [];
  try {
    await primary.pg.query(`CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'`);
    await primary.pg.query(`CREATE DATABASE ${DB} OWNER ${USER}`);
    log(`pgbench -i -s ${scale}`);
    const init = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', USER, '-i', '-q', '-s', String(scale), DB], {
      encoding: 'utf8',
      env: { ...process.env, PGPASSWORD: PASSWORD },
    });
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr.slice(-800)}`);
    const bouncer = await startPgbouncer(dir, primary.port, poolSize);
    procs.push(bouncer.proc);
    const proxy = await startProxy(primary.port, poolSize);
    procs.push(proxy.proc);
    await waitConnectable(proxy.port, () => 'the ogel proxy does not accept connections');
    const ports: Record<Target, number> = { direct: primary.port, pgbouncer: bouncer.port, ogel: proxy.port };

    const results = [];
    for (const workload of ['select-only', 'select-only-prepared', 'tpcb-like'] as const) {
      for (const clients of clientCounts) {
        const row: Partial<Record<Target, RunResult>> = {};
        for (const target of ['direct', 'pgbouncer', 'ogel'] as const) {
          const pid = target === 'pgbouncer' ? bouncer.proc.pid! : target === 'ogel' ? proxy.proc.pid! : 0;
          const cpu0 = pid ? cpuOf(pid) : null;
          let result: RunResult;
          try {
            result = pgbench(ports[target], clients, seconds, workload, dir);
          } catch (e) {
            // PgBouncer before 1.21 has no protocol-level prepared statements in transaction mode:
            // pgbench -M prepared fails there ("prepared statement ... does not exist"). Recorded as such.
            if (target !== 'pgbouncer' || workload !== 'select-only-prepared') throw e;
            log(`${workload} c=${clients} pgbouncer: failed (${(e as Error).message.split('\n').find((l) => /prepared statement/.test(l)) ?? 'see above'})`);
            continue;
          }
          row[target] = result;
          // The middle process's CPU per transaction (user/system, us): what it takes from pgbench and Postgres on a shared machine.
          let cpu = '';
          if (cpu0) {
            const cpu1 = cpuOf(pid);
            const n = Math.max(1, result.transactions);
            cpu = `, cpu/tx user ${round((cpu1.user - cpu0.user) / n, 1)} us sys ${round((cpu1.sys - cpu0.sys) / n, 1)} us`;
          }
          log(`${workload} c=${clients} ${target}: ${result.tps} tps, p99 ${result.p99_ms} ms${cpu}`);
        }
        const direct = row.direct!;
        const ogel = row.ogel!;
        const bouncerRow = row.pgbouncer;
        results.push({
          clients,
          workload,
          direct: { tps: direct.tps, p99_ms: direct.p99_ms },
          // null: PgBouncer could not run it (-M prepared in transaction mode before 1.21).
          pgbouncer: bouncerRow ? { tps: bouncerRow.tps, p99_ms: bouncerRow.p99_ms } : null,
          ogel: { tps: ogel.tps, p99_ms: ogel.p99_ms },
          ratio_vs_pgbouncer: bouncerRow ? round(ogel.tps / bouncerRow.tps, 2) : null,
          ratio_vs_direct: round(ogel.tps / direct.tps, 2),
        });
      }
    }

    let idleClientBytes: number | null = null;
    let pgbouncerIdleClientBytes: number | null = null;
    if (idleClients > 0) {
      const before = await proxy.rss();
      const close = await openIdle(proxy.port, idleClients);
      const after = await proxy.rss();
      await close();
      idleClientBytes = Math.round((after.rss - before.rss) / idleClients);
      log(`ogel: ${after.clients} idle clients, RSS ${before.rss} -> ${after.rss} bytes: ${idleClientBytes} bytes per client`);
      const b0 = rssOf(bouncer.proc.pid!);
      const closeB = await openIdle(bouncer.port, idleClients);
      const b1 = rssOf(bouncer.proc.pid!);
      await closeB();
      pgbouncerIdleClientBytes = Math.round((b1 - b0) / idleClients);
      log(`pgbouncer: RSS ${b0} -> ${b1} bytes: ${pgbouncerIdleClientBytes} bytes per client`);
    }
    const pgbouncerVersion = spawnSync('pgbouncer', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? null;
    const summary = {
      results,
      idle_client_bytes: idleClientBytes,
      pgbouncer_idle_client_bytes: pgbouncerIdleClientBytes,
      idle_clients: idleClients,
      goal: { ratio_vs_pgbouncer_at_16: 1.0, ratio_vs_direct_at_16: 0.8, idle_client_bytes_max: 10 * 1024 },
      config: { seconds, scale, pool_size: poolSize, pool_mode: 'transaction', pgbouncer: pgbouncerVersion },
    };
    process.stdout.write(`${a.json ? JSON.stringify(summary) : JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await primary.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench:proxy: ${e.message}\n`);
    process.exit(1);
  },
);
