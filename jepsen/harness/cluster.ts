// The cluster under test: three `ogel daemon` processes, each supervising its
// own PostgreSQL 17, each host on its own loopback address (127.0.0.11 to .13)
// inside the run's private network namespace. Built on the integration tests'
// DaemonCluster (config, ports, admin API calls); this adds what a Jepsen run
// needs: per-host cgroups, every daemon's output kept in a log file, the
// process-level faults (kill -9, SIGSTOP, a whole host), an optional fake clock
// per host, and a definition of "fully healthy".

import { spawn } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { request } from 'undici';
import YAML from 'yaml';
import { UNSAFE_ENV } from '../../src/postgres/unsafe-switches.js';
import { DaemonCluster, type DaemonNode } from '../../test/helpers/daemons.js';
import type { HostCgroups } from './cgroups.js';
import { adminPassword } from '../../src/auth/passwords.js';
import { setTimeout as sleep } from 'node:timers/promises';

export const HOSTS: Readonly<Record<string, string>> = { n1: '127.0.0.11', n2: '127.0.0.12', n3: '127.0.0.13' };
export const IDS: readonly string[] = Object.keys(HOSTS);

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/main.js');
const HEALTH_START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
/** Bound on each request and SQL probe made while judging health. */
const PROBE_TIMEOUT_MS = 2_000;
export const PROBE_TABLE = 'jepsen_probe';

/** libfaketime, for clock-skew: each host's daemon (and its Postgres) reads its offset from a file. */
export const FAKETIME_LIB_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
];

export function findFaketimeLib(): string | undefined {
  return FAKETIME_LIB_CANDIDATES.find((p) => existsSync(p));
}

export interface ClusterOptions {
  /** Where node logs go (<logDir>/<id>.log, appended across restarts). */
  logDir: string;
  leaseMs: number;
  /** OGEL_UNSAFE for every daemon (src/postgres/unsafe-switches.ts). */
  unsafe?: readonly string[];
  cgroups: HostCgroups | undefined;
  /** libfaketime path: start every daemon under it, each with its own offset file. */
  faketimeLib?: string;
  /** The storage: section of the config ('' or absent: the default fs store). */
  storageYaml?: string;
  /** For the harness's own log. */
  log: (msg: string) => void;
}

interface PgNodeView {
  role: string;
  reportedRole: string;
  replication: { source: string; state: string | null } | null;
}

export interface StatusView {
  node: string;
  leader: string | null;
  term: number;
  stale: boolean;
  postgres: {
    generation: number;
    primary: string | null;
    lease: { holder: string } | null;
    nodes: Record<string, PgNodeView>;
    failoverBlocked: unknown;
  };
  /** The WAL archive: the primary's archiver (live) or why it is not known. */
  archive?: { live: unknown; liveError: string | null };
}

export class JepsenCluster {
  readonly ids = IDS;
  private readonly logs = new Map<string, WriteStream>();
  private readonly paused = new Set<string>();
  /** Processes this run killed on purpose: their exits are expected. */
  readonly password: string;

  private constructor(
    readonly c: DaemonCluster,
    private readonly o: ClusterOptions,
  ) {
    const cfg = YAML.parse(readFileSync(c.configPath, 'utf8')) as { cluster: { name: string; secret: string } };
    this.password = adminPassword({ cluster: cfg.cluster } as Parameters<typeof adminPassword>[0]);
    for (const id of IDS) this.logs.set(id, createWriteStream(join(o.logDir, `${id}.log`), { flags: 'a' }));
  }

  static async create(o: ClusterOptions): Promise<JepsenCluster> {
    const c = await DaemonCluster.create([...IDS], `postgres:\n  leaseMs: ${o.leaseMs}\n${o.storageYaml ?? ''}`, { hosts: HOSTS });
    const jc = new JepsenCluster(c, o);
    if (o.faketimeLib !== undefined) for (const id of IDS) jc.setClockOffset(id, 0);
    return jc;
  }

  node(id: string): DaemonNode {
    const n = this.c.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  private clockFile(id: string): string {
    return join(this.c.dir, `faketime-${id}`);
  }

  /** Wall-clock offset of host `id` (libfaketime re-reads the file within a second). */
  setClockOffset(id: string, offsetSeconds: number): void {
    if (this.o.faketimeLib === undefined) throw new Error('setClockOffset: the cluster was not started under libfaketime');
    const file = this.clockFile(id);
    writeFileSync(file, `${offsetSeconds >= 0 ? '+' : ''}${Math.trunc(offsetSeconds)}s\n`);
    chmodSync(file, 0o644); // the Postgres user's processes read it too
  }

  /**
   * How far node `id`'s wall clock is from ours, in whole seconds, by the Date
   * header of its admin API (node's HTTP server stamps it from its own clock).
   */
  async wallClockOffsetS(id: string): Promise<number | undefined> {
    try {
      const r = await request(`${this.c.apiUrl(id)}/health`, { headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS });
      await r.body.text();
      const date = Date.parse(String(r.headers['date']));
      return Number.isFinite(date) ? Math.round((date - Date.now()) / 1000) : undefined;
    } catch {
      return undefined;
    }
  }

  get hasFakeClock(): boolean {
    return this.o.faketimeLib !== undefined;
  }

  isRunning(id: string): boolean {
    const p = this.node(id).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  daemonPid(id: string): number | undefined {
    return this.isRunning(id) ? this.node(id).proc!.pid : undefined;
  }

  /** Starts (or restarts) node `id`'s daemon and waits for its /health. */
  async start(id: string): Promise<void> {
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env[UNSAFE_ENV];
    if (this.o.unsafe !== undefined && this.o.unsafe.length > 0) env[UNSAFE_ENV] = this.o.unsafe.join(',');
    if (this.o.faketimeLib !== undefined) {
      // Only the wall clock is faked: ogel measures leases on the monotonic clock
      // (I5), and a step of the wall clock is what NTP does to a real host.
      Object.assign(env, {
        LD_PRELOAD: this.o.faketimeLib,
        FAKETIME_TIMESTAMP_FILE: this.clockFile(id),
        FAKETIME_CACHE_DURATION: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
        FAKETIME_DONT_RESET: '1',
      });
    }
    const proc = spawn(process.execPath, [CLI, 'daemon', '--config', this.c.configPath, '--node', id], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const n = this.node(id);
    n.proc = proc;
    // Before it can open a socket (node takes tens of ms to load the CLI).
    if (this.o.cgroups !== undefined && proc.pid !== undefined) this.o.cgroups.add(id, proc.pid);
    const file = this.logs.get(id)!;
    file.write(`==== harness: started ${id} pid ${proc.pid} at ${new Date().toISOString()}\n`);
    const keep = (chunk: Buffer) => {
      file.write(chunk);
      n.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (n.log.length > 2_000) n.log.splice(0, n.log.length - 2_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.on('exit', (code, signal) =>
      file.write(`==== harness: ${id} pid ${proc.pid} exited (code ${code}, signal ${signal}) at ${new Date().toISOString()}\n`),
    );
    await this.c.waitFor(
      async () => (await this.c.get(id, '/health')).status === 200,
      `${id} /health`,
      HEALTH_START_TIMEOUT_MS,
      () => {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`${id} exited with ${proc.exitCode ?? proc.signalCode}:\n${n.log.slice(-20).join('\n')}`);
      },
    );
  }

  async startAll(): Promise<void> {
    await Promise.all(IDS.map((id) => this.start(id)));
  }

  /** kill -9 the daemon (its Postgres is stopped by the death guard), and wait until it is gone. */
  async killDaemon(id: string): Promise<number | undefined> {
    const proc = this.node(id).proc;
    if (!proc || !this.isRunning(id)) return undefined;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    process.kill(proc.pid!, 'SIGKILL');
    await exited;
    this.paused.delete(id);
    return proc.pid;
  }

  /** The postmaster's PID, from postmaster.pid, if that process is alive. */
  postmasterPid(id: string): number | undefined {
    const file = join(this.c.postgresSocketDir(id), 'postmaster.pid');
    try {
      const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes('postgres') ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** kill -9 the postmaster (its backends exit when they notice); the agent restarts it. */
  killPostgres(id: string): number | undefined {
    const pid = this.postmasterPid(id);
    if (pid === undefined) return undefined;
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  /** Every process of the host at once (cgroup), else the daemon and the postmaster. */
  async killHost(id: string): Promise<number[]> {
    const proc = this.node(id).proc;
    const exited = proc && this.isRunning(id) ? new Promise<void>((r) => proc.once('exit', () => r())) : Promise.resolve();
    let pids: number[];
    if (this.o.cgroups !== undefined) {
      pids = this.o.cgroups.killAll(id);
    } else {
      pids = [this.postmasterPid(id), this.daemonPid(id)].filter((p): p is number => p !== undefined);
      for (const p of pids) process.kill(p, 'SIGKILL');
    }
    await exited;
    this.paused.delete(id);
    return pids;
  }

  /** Removes node `id`'s whole data directory (Raft and Postgres); it must be stopped. Returns the path. */
  async wipeData(id: string): Promise<string> {
    if (this.isRunning(id)) throw new Error(`wipeData: ${id} is running; kill it first`);
    const dir = join(this.c.dir, 'data', id);
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    return dir;
  }

  pauseDaemon(id: string): number | undefined {
    const pid = this.daemonPid(id);
    if (pid === undefined) return undefined;
    process.kill(pid, 'SIGSTOP');
    this.paused.add(id);
    return pid;
  }

  resumeDaemon(id: string): void {
    const pid = this.daemonPid(id);
    this.paused.delete(id);
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  }

  /** Linearizable status from node `id` (a follower has the leader answer); undefined if it cannot answer. */
  async status(id: string, stale = false): Promise<StatusView | undefined> {
    if (this.paused.has(id)) return undefined;
    const r = await this.c.get(id, stale ? '/v1/status?stale=true' : '/v1/status');
    return r.status === 200 ? (r.body as StatusView) : undefined;
  }

  /** Some live node's view: the current Raft leader and Postgres primary, as far as it knows. */
  async roles(): Promise<{ leader: string | null; primary: string | null; generation: number } | undefined> {
    for (const id of IDS) {
      if (!this.isRunning(id)) continue;
      const s = await this.status(id, true);
      if (s !== undefined) return { leader: s.leader, primary: s.postgres.primary, generation: s.postgres.generation };
    }
    return undefined;
  }

  proxyConfig(id: string, extra: Partial<pg.ClientConfig> = {}): pg.ClientConfig {
    const n = this.node(id);
    return { host: n.host, port: n.proxyPort, user: 'postgres', password: this.password, database: 'postgres', ...extra };
  }

  /** One statement through node `id`'s proxy on a fresh connection. */
  async sqlVia<R extends pg.QueryResultRow>(id: string, text: string, values: unknown[] = [], timeoutMs = PROBE_TIMEOUT_MS): Promise<R[]> {
    const client = new pg.Client(this.proxyConfig(id, { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'jepsen-admin' }));
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query<R>(text, values)).rows;
    } finally {
      void client.end().catch(() => {});
    }
  }

  /**
   * Why the cluster is not fully healthy, or undefined when it is: every daemon
   * up and answering; one Raft leader every node agrees on, with a linearizable
   * read; a primary holding the lease and two standbys, as wanted and as reported;
   * both standbys streaming from the primary (its live pg_stat_replication); no
   * blocked failover; and a synchronous write through every node's proxy.
   */
  async unhealthy(): Promise<string | undefined> {
    for (const id of IDS) {
      if (!this.isRunning(id)) return `${id}'s daemon is not running`;
      if (this.paused.has(id)) return `${id}'s daemon is paused`;
    }
    const views = await Promise.all(IDS.map((id) => this.status(id)));
    const leaders = new Set<string | null>();
    for (const [i, v] of views.entries()) {
      if (v === undefined) return `${IDS[i]} did not answer /v1/status`;
      if (v.stale) return `${IDS[i]} could not make a linearizable read`;
      leaders.add(v.leader);
    }
    if (leaders.size !== 1 || leaders.has(null)) return `no agreed Raft leader (${[...leaders].join(', ')})`;
    const leader = [...leaders][0]!;
    const s = views[IDS.indexOf(leader)]!.postgres;
    if (s.primary === null) return 'no primary';
    if (s.lease?.holder !== s.primary) return `the lease is held by ${s.lease?.holder ?? 'nobody'}, not the primary ${s.primary}`;
    if (s.failoverBlocked !== null) return `failover is blocked: ${JSON.stringify(s.failoverBlocked)}`;
    for (const id of IDS) {
      const n = s.nodes[id];
      const want = id === s.primary ? 'primary' : 'standby';
      if (n === undefined) return `${id} is not in the Postgres view`;
      // A standby's wanted role stays 'absent' (no wish) until a role change names it.
      const wantedOk = n.role === want || (want === 'standby' && n.role === 'absent');
      if (!wantedOk || n.reportedRole !== want) return `${id}: wanted ${n.role}, reported ${n.reportedRole}, expected ${want}`;
      if (want === 'standby' && (n.replication?.source !== 'live' || n.replication.state !== 'streaming'))
        return `${id} is not streaming from ${s.primary} (${JSON.stringify(n.replication)})`;
    }
    for (const id of IDS) {
      try {
        await this.sqlVia(id, `INSERT INTO ${PROBE_TABLE} (node, at) VALUES ($1, now()) ON CONFLICT (node) DO UPDATE SET at = now()`, [id]);
      } catch (e) {
        return `a write through ${id}'s proxy failed: ${(e as Error).message}`;
      }
    }
    return undefined;
  }

  /** Polls unhealthy() until it passes; resolves to the time taken, or throws with the last reason. */
  async waitHealthy(timeoutMs: number, pollMs = 100): Promise<number> {
    const t0 = performance.now();
    let why: string | undefined = 'not checked yet';
    let said: string | undefined;
    while (performance.now() - t0 < timeoutMs) {
      why = await this.unhealthy();
      if (why === undefined) return performance.now() - t0;
      // Each new reason once (with numbers stripped, so a changing lag is one reason): where recovery spends its time.
      const gist = why.replace(/[0-9]+/g, '#');
      if (gist !== said) {
        said = gist;
        this.o.log(`not healthy yet (${Math.round(performance.now() - t0)} ms): ${why}`);
      }
      await sleep(pollMs);
    }
    throw new Error(`not fully healthy within ${timeoutMs} ms: ${why}`);
  }

  /** Creates the probe table through the primary (the first step, before health can be judged). */
  async createProbeTable(timeoutMs: number): Promise<void> {
    const t0 = performance.now();
    let last = '';
    for (;;) {
      for (const id of IDS) {
        try {
          await this.sqlVia(id, `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (node text PRIMARY KEY, at timestamptz NOT NULL)`);
          return;
        } catch (e) {
          last = (e as Error).message;
        }
      }
      if (performance.now() - t0 > timeoutMs) throw new Error(`could not create ${PROBE_TABLE} through any proxy within ${timeoutMs} ms: ${last}`);
      await sleep(100);
    }
  }

  /** Stops every daemon by PID (resumed first if paused), closes the logs and removes the data. */
  async destroy(): Promise<void> {
    for (const id of this.paused) this.resumeDaemon(id);
    await Promise.all(IDS.map((id) => this.c.terminate(id, STOP_TIMEOUT_MS)));
    await this.c.destroy();
    await Promise.all([...this.logs.values()].map((s) => new Promise<void>((r) => s.end(() => r()))));
  }
}
