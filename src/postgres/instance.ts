// One local PostgreSQL data directory and the postmaster ogel runs on it.
//
// We spawn `postgres -D <dir>` directly (not pg_ctl: it polls every 100 ms and
// detaches the server from us). The postmaster is our child, so its exit is an
// event we see at once: crash detection costs nothing. Readiness is a
// `SELECT 1` over the unix socket, tried every 10 ms. Every wait is bounded by
// a timeout named in ms; every error carries the server's last log lines.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { resolvePostgresBinaries, type PgBinaries } from './binaries.js';
import { assertReachable, ensurePostgresUser, isRoot, prepareDir, writeFileAtomic, type OsUser } from './os-user.js';
import { PostgresStartError, PostgresStateError } from './errors.js';
import { endClientSessions, readOnlyDefault, refuseNewWrites, setReadOnly, writersSince } from './fence/server-fence.js';
import { connectSocket, quoteIdent, quoteLiteral, socketClientConfig, sqlState, SUPERUSER, type SocketTarget } from './query.js';
import { SqlClient } from './sql-client.js';
import { readStatus, type PgStatus } from './status.js';
import {
  OGEL_CONF_FILE,
  randomReplicationPassword,
  renderOgelConf,
  renderPgHba,
  withClientAccess,
  REPLICATION_ROLE,
  withIncludeLine,
  writeReplicationPassword,
  type HbaInput,
  type OgelConfInput,
} from './settings.js';
import { setTimeout as sleep } from 'node:timers/promises';

export { PostgresStartError, PostgresStateError } from './errors.js';
export type { PgStatus } from './status.js';

/** Postgres LOG lines about streaming and recovery (started streaming, timeline switches, the startup process's waits): logged at info. */
const REPLICATION_EVENT =
  /\bLOG:\s+(started streaming|restarted WAL streaming|replication terminated|fetching timeline history|new target timeline|waiting for WAL|record with incorrect|invalid record length|consistent recovery state|redo starts|recovery stopping|selected new timeline|archive recovery complete|entering standby mode|database system is ready)/;
export type StopMode = 'smart' | 'fast' | 'immediate';

/** Postgres's shutdown modes are signals to the postmaster. */
export const STOP_SIGNALS: Readonly<Record<StopMode, NodeJS.Signals>> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_TIMEOUT_MS: Readonly<Record<StopMode, number>> = { smart: 60_000, fast: 30_000, immediate: 10_000 };
export const DEFAULT_PROMOTE_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 10;
const PROMOTE_POLL_MS = 5;
const EXIT_OUTPUT_GRACE_MS = 50;

export interface ExitInfo {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** 'stopped': ended by our stop(); 'crashed': anything else (a crash, a kill, someone else's shutdown). */
  reason: 'stopped' | 'crashed';
  stopMode?: StopMode;
  /** stop() timed out and sent SIGKILL. */
  killed: boolean;
  /** The server's last log lines when it exited. */
  logTail: string[];
}

export interface PostgresInstanceOptions {
  dataDir: string;
  /** The port in ogel.conf; also names the unix socket (.s.PGSQL.<port>). */
  port: number;
  /** Default: resolvePostgresBinaries(). */
  binaries?: PgBinaries;
  /** Default: ensurePostgresUser() (the current user when not root). */
  user?: OsUser;
  logger?: Logger;
  /** Server log lines kept for error messages; default 200. */
  logLinesMax?: number;
}

export type InstanceSettings = Omit<OgelConfInput, 'port' | 'socketDir'> & HbaInput;

export interface InitPrimaryOptions extends PostgresInstanceOptions {
  settings: InstanceSettings;
  /** Default: a random one. Use replicationPassword(config) (src/auth/passwords.ts) so every node agrees. */
  replicationPassword?: string;
  /** initdb --no-sync and no fsync in the bootstrap: faster, not crash-safe. Tests only. */
  noSync?: boolean;
  timeoutMs?: number;
}

/** A bounded buffer of the last N log lines. */
export class LogRing {
  private readonly buf: string[] = [];
  /** Lines ever pushed: a mark for since(). */
  total = 0;
  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError('LogRing needs room for at least one line');
  }
  push(line: string): void {
    this.buf.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
    this.total++;
    if (this.buf.length > this.max) this.buf.splice(0, this.buf.length - this.max);
  }
  lines(n = this.max): string[] {
    return n <= 0 ? [] : this.buf.slice(-n);
  }
  /** The last `n` lines pushed after `mark` (a value of `total`). */
  since(mark: number, n = this.max): string[] {
    return this.lines(Math.min(n, this.total - mark));
  }
}

// Last resort against leaks: if this process exits with postmasters still
// running (an uncaught exception, process.exit in a test), ask them to shut down
// immediately. A SIGKILL of this process cannot be caught; see findOrphan().
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGQUIT');
        } catch {
          // already gone
        }
      }
    });
  }
  live.add(child);
}

/** Whether a process with this PID exists (EPERM: it exists but is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function spawnEnv(bins: PgBinaries): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', ...bins.env };
  if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
  return env;
}

interface Run {
  child: ChildProcess;
  pid: number;
  /** LogRing mark when this run started: its own lines come after. */
  logMark: number;
  exit?: ExitInfo;
  exited: Promise<ExitInfo>;
}

/**
 * One local Postgres data directory. Events: 'exit' (ExitInfo) whenever the
 * postmaster ends, 'log' (line) for each server log line.
 */
export class PostgresInstance extends EventEmitter {
  readonly dataDir: string;
  readonly port: number;
  readonly binaries: PgBinaries;
  readonly user: OsUser;
  private readonly logger: Logger | undefined;
  private readonly log: LogRing;
  private run: Run | undefined;
  private stopping: StopMode | undefined;
  private readonly sql: SqlClient;

  constructor(opts: PostgresInstanceOptions) {
    super();
    this.dataDir = resolve(opts.dataDir);
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) throw new RangeError(`port must be 1-65535, got ${opts.port}`);
    this.port = opts.port;
    this.binaries = opts.binaries ?? resolvePostgresBinaries();
    this.user = opts.user ?? ensurePostgresUser();
    this.logger = opts.logger;
    this.log = new LogRing(opts.logLinesMax ?? 200);
    this.sql = new SqlClient({
      target: this.socketTarget,
      dataDir: this.dataDir,
      logger: this.logger,
      requireRunning: (what) => void this.requireRunning(what),
    });
  }

  /**
   * initdb a new primary (data checksums, UTF8, C locale, local trust, host
   * SCRAM) as the Postgres OS user, create the replication role, and write
   * ogel's config files. Does not start it. Refuses a non-empty directory.
   */
  static async initPrimary(opts: InitPrimaryOptions): Promise<PostgresInstance> {
    const inst = new PostgresInstance(opts);
    const dir = inst.dataDir;
    const timeoutMs = opts.timeoutMs ?? 120_000;
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new PostgresStateError(
        existsSync(join(dir, 'PG_VERSION'))
          ? `${dir} already holds a Postgres data directory; refusing to initdb over it`
          : `${dir} is not empty; initdb needs an empty or missing directory`,
      );
    }
    prepareDir(dir, inst.user);
    assertReachable(inst.binaries.initdb, inst.user);

    const initdb = inst.runAsPostgres(
      inst.binaries.initdb,
      [
        '-D',
        dir,
        '-U',
        SUPERUSER,
        '--data-checksums',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-instructions',
        ...(opts.noSync ? ['--no-sync'] : []),
      ],
      '',
      timeoutMs,
    );
    if (initdb.status !== 0) throw new PostgresStartError(`initdb ${dir} failed (${initdb.how})`, tail(initdb.output));

    // The replication role, in single-user mode: no listener, no port to pick yet.
    const password = opts.replicationPassword ?? randomReplicationPassword();
    writeReplicationPassword(dir, password, inst.user);
    const sql = `CREATE ROLE ${quoteIdent(REPLICATION_ROLE)} WITH LOGIN REPLICATION PASSWORD ${quoteLiteral(password)};\n`;
    const single = inst.runAsPostgres(
      inst.binaries.postgres,
      ['--single', '-D', dir, '-c', 'exit_on_error=on', '-c', 'log_min_messages=warning', ...(opts.noSync ? ['-c', 'fsync=off'] : []), 'postgres'],
      sql,
      timeoutMs,
    );
    if (single.status !== 0 || /\b(ERROR|FATAL|PANIC):/.test(single.output)) {
      throw new PostgresStartError(`creating the ${REPLICATION_ROLE} role in ${dir} failed (${single.how})`, tail(single.output.replaceAll(password, '***')));
    }
    inst.writeConfig(opts.settings);
    return inst;
  }

  private runAsPostgres(file: string, args: string[], input: string, timeoutMs: number): { status: number | null; output: string; how: string } {
    // Synchronous on purpose: initdb and single-user mode are one-off setup steps.
    const r = spawnSync(file, args, {
      cwd: '/',
      env: spawnEnv(this.binaries),
      input,
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      ...(isRoot() ? { uid: this.user.uid, gid: this.user.gid } : {}),
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const how = r.error
      ? `${r.error.message}${(r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `: no exit within ${timeoutMs} ms, killed` : ''}`
      : r.signal
        ? `killed by ${r.signal}`
        : `exit code ${r.status}`;
    return { status: r.error ? null : r.status, output, how };
  }

  /**
   * Writes ogel.conf and pg_hba.conf atomically, and appends the include line
   * to postgresql.conf once. Reloads a running server; a changed port or
   * listen address takes a restart.
   */
  /** Clients refused by pg_hba.conf (the hard fence); see withClientAccess. */
  private clientsFenced = false;

  /**
   * Opens or closes pg_hba.conf to clients (the file only: a running server
   * needs a reload). Before a start, this decides whether the server comes up
   * fenced.
   */
  setClientAccess(open: boolean): void {
    this.clientsFenced = !open;
    const file = join(this.dataDir, 'pg_hba.conf');
    if (!existsSync(file)) return; // writeConfig writes it with this setting
    const before = readFileSync(file, 'utf8');
    const after = withClientAccess(before, open);
    if (after !== before) writeFileAtomic(file, after, this.user);
  }

  writeConfig(settings: InstanceSettings): void {
    const conf = renderOgelConf({ ...settings, port: this.port, socketDir: this.dataDir });
    const hba = withClientAccess(renderPgHba(settings), !this.clientsFenced);
    const mainConf = join(this.dataDir, 'postgresql.conf');
    const before = existsSync(mainConf) ? readFileSync(mainConf, 'utf8') : '';
    const after = withIncludeLine(before);
    writeFileAtomic(join(this.dataDir, OGEL_CONF_FILE), conf, this.user);
    writeFileAtomic(join(this.dataDir, 'pg_hba.conf'), hba, this.user);
    if (after !== before) writeFileAtomic(mainConf, after, this.user);
    if (this.isRunning()) this.reload();
  }

  // -------------------------------------------------------------------------
  // Process supervision

  get pid(): number | undefined {
    return this.run && !this.run.exit ? this.run.pid : undefined;
  }

  isRunning(): boolean {
    return this.run !== undefined && this.run.exit === undefined;
  }

  /** The current (or last) postmaster's exit; throws if start() was never called. */
  get exited(): Promise<ExitInfo> {
    if (!this.run) throw new PostgresStateError('exited: this instance was never started');
    return this.run.exited;
  }

  /** The server's last log lines (stdout and stderr), oldest first. */
  /** A mark in the server's log, for logSince. */
  get logMark(): number {
    return this.log.total;
  }

  /** The log lines since `mark` (logMark), at most the ring's size. */
  logSince(mark: number): string[] {
    return this.log.since(mark);
  }

  get socketTarget(): SocketTarget {
    return { socketDir: this.dataDir, port: this.port };
  }

  /** pg client options for the superuser over the unix socket. */
  clientConfig(): pg.ClientConfig {
    return socketClientConfig(this.socketTarget);
  }

  /**
   * A postmaster left running on this data dir by an earlier process (ours was
   * SIGKILLed): its PID, or undefined. Checked by postmaster.pid, the process's
   * command and its working directory (the postmaster chdirs to the data dir).
   */
  findOrphan(): number | undefined {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === this.pid || !pidAlive(pid)) return undefined;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('postgres')) return undefined;
      return realpathSync(readlinkSync(`/proc/${pid}/cwd`)) === realpathSync(this.dataDir) ? pid : undefined;
    } catch {
      // Without /proc (or permission) we cannot tell; assume it is one.
      return pid;
    }
  }

  /** Stops an orphan postmaster (see findOrphan); SIGKILL after `timeoutMs`. Returns its PID, if there was one. */
  async stopOrphan(mode: StopMode = 'fast', timeoutMs = DEFAULT_STOP_TIMEOUT_MS[mode]): Promise<number | undefined> {
    const pid = this.findOrphan();
    if (pid === undefined) return undefined;
    this.logger?.({ level: 'warn', msg: 'stopping a postmaster left by an earlier process', pid, mode, dataDir: this.dataDir });
    process.kill(pid, STOP_SIGNALS[mode]);
    const deadline = performance.now() + timeoutMs;
    while (pidAlive(pid)) {
      if (performance.now() > deadline) {
        this.logger?.({ level: 'warn', msg: `orphan postmaster did not exit within ${timeoutMs} ms of ${STOP_SIGNALS[mode]}; sending SIGKILL`, pid });
        process.kill(pid, 'SIGKILL');
        break;
      }
      await sleep(READY_POLL_MS);
    }
    return pid;
  }

  /**
   * Spawns `postgres -D <dataDir>` as the Postgres OS user and, unless
   * `wait: false`, resolves once it answers `SELECT 1` over the unix socket.
   * Throws PostgresStartError (with the last log lines) when it exits early or
   * is not ready within `timeoutMs` (then it is killed).
   */
  async start(opts: { timeoutMs?: number; wait?: boolean } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    if (this.isRunning()) throw new PostgresStateError(`postgres is already running on ${this.dataDir} (pid ${this.pid})`);
    const versionFile = join(this.dataDir, 'PG_VERSION');
    if (!existsSync(versionFile))
      throw new PostgresStateError(`${this.dataDir} holds no Postgres data directory (no PG_VERSION): initialise it first (initPrimary or a base backup)`);
    const major = Number(readFileSync(versionFile, 'utf8').trim());
    if (major !== this.binaries.version.major) {
      throw new PostgresStateError(
        `${this.dataDir} was created by PostgreSQL ${major}, but the binaries in ${this.binaries.binDir} are ${this.binaries.version.full}`,
      );
    }
    const orphan = this.findOrphan();
    if (orphan !== undefined) {
      throw new PostgresStateError(
        `another postmaster (pid ${orphan}) is already running on ${this.dataDir}, probably left by an earlier ogel process; stop it first (stopOrphan(), or kill -INT ${orphan})`,
      );
    }
    assertReachable(this.dataDir, this.user);
    assertReachable(this.binaries.postgres, this.user);

    this.stopping = undefined;
    const logMark = this.log.total;
    const child = spawn(this.binaries.postgres, ['-D', this.dataDir], {
      cwd: '/',
      env: spawnEnv(this.binaries),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(isRoot() ? { uid: this.user.uid, gid: this.user.gid } : {}),
    });
    let resolveExit!: (e: ExitInfo) => void;
    const run: Run = { child, pid: child.pid ?? -1, logMark, exited: new Promise<ExitInfo>((r) => (resolveExit = r)) };
    this.run = run;
    const finish = (code: number | null, signal: NodeJS.Signals | null, killed: boolean) => {
      if (run.exit) return;
      live.delete(child);
      const stopMode = this.run === run ? this.stopping : undefined;
      run.exit = {
        pid: run.pid,
        code,
        signal,
        reason: stopMode !== undefined ? 'stopped' : 'crashed',
        ...(stopMode !== undefined ? { stopMode } : {}),
        killed,
        logTail: this.log.since(run.logMark, 30),
      };
      if (this.run === run) this.sql.drop();
      if (run.exit.reason === 'crashed')
        this.logger?.({ level: 'error', msg: 'postgres exited unexpectedly', pid: run.pid, code, signal, dataDir: this.dataDir });
      resolveExit(run.exit);
      this.emit('exit', run.exit);
    };
    // 'exit' can come before the last stderr lines (the FATAL one) are read:
    // finish on 'close' (all output read), or 50 ms after 'exit' when orphaned
    // backends still hold the pipe after a SIGKILL.
    child.on('exit', (code, signal) => {
      const killed = this.killedBy === run;
      const timer = setTimeout(() => finish(code, signal, killed), EXIT_OUTPUT_GRACE_MS);
      child.once('close', () => {
        clearTimeout(timer);
        finish(code, signal, killed);
      });
    });
    child.on('error', (err) => {
      this.log.push(`spawn ${this.binaries.postgres}: ${err.message}`);
      finish(null, null, false);
    });
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT, EACCES); 'error' follows.
      const exit = await run.exited;
      throw new PostgresStartError(`could not spawn ${this.binaries.postgres}`, exit.logTail);
    }
    track(child);
    this.pipeLines(child.stdout!);
    this.pipeLines(child.stderr!);
    const guard = this.spawnDeathGuard(child.pid);
    void run.exited.then(() => {
      // The postmaster is gone: the guard must not linger, nor our end of its pipe.
      guard?.stdin?.destroy();
      guard?.kill('SIGKILL');
    });
    if (opts.wait === false) return;
    await this.waitReady(timeoutMs);
  }

  /**
   * Binds the postmaster's life to this process's. Postgres cannot watch its
   * parent, and Node has no PR_SET_PDEATHSIG: after a kill -9 of the daemon the
   * postmaster would be re-parented to init and keep accepting writes with no
   * agent left to fence it (I3). The guard is a shell, running as the Postgres
   * user, that blocks reading a pipe whose other end only this process holds;
   * when this process dies, however, the read ends and the guard sends the
   * postmaster SIGQUIT (immediate shutdown). As the Postgres user it can only
   * ever signal that user's processes. It is killed as soon as the postmaster
   * exits, so it cannot signal a reused PID of ours.
   */
  private spawnDeathGuard(postmasterPid: number): ChildProcess | undefined {
    try {
      const guard = spawn('/bin/sh', ['-c', 'while read -r _; do :; done; kill -QUIT "$1" 2>/dev/null', 'ogel-postgres-guard', String(postmasterPid)], {
        cwd: '/',
        stdio: ['pipe', 'ignore', 'ignore'],
        ...(isRoot() ? { uid: this.user.uid, gid: this.user.gid } : {}),
      });
      guard.on('error', (e) => this.logger?.({ level: 'warn', msg: 'postgres death guard failed', error: e.message }));
      // Neither the guard nor its pipe may keep the daemon's event loop alive.
      guard.unref();
      (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      return guard;
    } catch (e) {
      this.logger?.({ level: 'warn', msg: 'could not start the postgres death guard', error: (e as Error).message });
      return undefined;
    }
  }

  private pipeLines(stream: NodeJS.ReadableStream): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      if (partial.length > 8192) partial = partial.slice(0, 8192);
      for (const line of parts) this.onLogLine(line);
    });
    stream.on('end', () => {
      if (partial) this.onLogLine(partial);
      partial = '';
    });
  }

  private onLogLine(line: string): void {
    if (line === '') return;
    this.log.push(line);
    this.emit('log', line);
    if (this.logger) {
      const level = /\b(PANIC|FATAL|ERROR):/.test(line) ? 'error' : /\bWARNING:/.test(line) ? 'warn' : REPLICATION_EVENT.test(line) ? 'info' : 'debug';
      this.logger({ level, msg: 'postgres', line, port: this.port });
    }
  }

  /**
   * Resolves once the server answers `SELECT 1` on the unix socket, trying
   * every 10 ms. Throws if it exits first or `timeoutMs` passes (then kills it).
   */
  async waitReady(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    const run = this.run;
    if (!run) throw new PostgresStateError('waitReady: not started');
    const deadline = performance.now() + timeoutMs;
    let lastError = 'no attempt yet';
    for (;;) {
      if (run.exit) throw this.earlyExitError(run.exit);
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      try {
        const client = await connectSocket(this.socketTarget, { timeoutMs: Math.max(50, Math.ceil(remaining)) });
        try {
          await client.query('SELECT 1');
          return;
        } finally {
          await client.end().catch(() => {});
        }
      } catch (err) {
        lastError = (err as Error).message;
        const state = sqlState(err);
        const code = (err as NodeJS.ErrnoException).code;
        // Not up yet: no socket, refused, or "the database system is starting up".
        const transient = state === '57P03' || code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ECONNRESET' || state === undefined;
        if (!transient && !run.exit) {
          throw new PostgresStartError(
            `postgres on ${this.dataDir} is up but refused ogel's connection over the unix socket: ${lastError}`,
            this.log.since(run.logMark, 30),
          );
        }
      }
      await Promise.race([sleep(READY_POLL_MS), run.exited]);
    }
    const tailLines = this.log.since(run.logMark, 30);
    await this.kill(run);
    throw new PostgresStartError(`postgres on ${this.dataDir} was not ready within ${timeoutMs} ms (last attempt: ${lastError}); killed it`, tailLines);
  }

  private earlyExitError(exit: ExitInfo): PostgresStartError {
    const how = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
    // The cause is usually a "could not ..." LOG line just before the FATAL one
    // (e.g. could not bind IPv4 address "127.0.0.1": Address already in use).
    const key = exit.logTail
      .filter((l) => /\b(FATAL|PANIC|ERROR):|\bcould not\b/.test(l) && !/not yet accepting connections|is starting up/.test(l))
      .slice(-3)
      .map((l) => l.replace(/^.*?\b(LOG|WARNING|FATAL|PANIC|ERROR):\s*/, (_m, lvl: string) => (lvl === 'LOG' || lvl === 'WARNING' ? '' : `${lvl}: `)));
    return new PostgresStartError(
      `postgres on ${this.dataDir} (port ${this.port}) exited during startup (${how})${key.length > 0 ? `: ${key.join('; ')}` : ''}`,
      exit.logTail,
    );
  }

  private killedBy: Run | undefined;
  private async kill(run: Run): Promise<void> {
    if (run.exit) return;
    this.killedBy = run;
    this.stopping ??= 'immediate';
    run.child.kill('SIGKILL');
    await run.exited;
  }

  /**
   * Stops the postmaster: smart (SIGTERM: waits for clients), fast (SIGINT:
   * aborts sessions, clean shutdown checkpoint), immediate (SIGQUIT: no
   * checkpoint, crash recovery on next start). After `timeoutMs` it sends
   * SIGKILL and says so (ExitInfo.killed, and a warning in the log).
   * Resolves with the exit; a no-op returning the last exit when not running.
   */
  async stop(mode: StopMode = 'fast', opts: { timeoutMs?: number } = {}): Promise<ExitInfo | undefined> {
    const run = this.run;
    if (!run) return undefined;
    if (run.exit) return run.exit;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS[mode];
    this.stopping = mode;
    // A clean shutdown waits until every WAL sender's client confirms what it was sent:
    // listeners that stream WAL from here (the archive) let go now, or it waits on them.
    this.emit('stopping', mode);
    // A smart shutdown waits for every session, including our pool's.
    const pool = this.sql.drop();
    if (pool && mode === 'smart') await Promise.race([pool, sleep(Math.min(1000, timeoutMs))]);
    try {
      run.child.kill(STOP_SIGNALS[mode]);
    } catch {
      // exited meanwhile
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([run.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger?.({
        level: 'warn',
        msg: `postgres did not stop within ${timeoutMs} ms of ${STOP_SIGNALS[mode]} (${mode}); sending SIGKILL`,
        pid: run.pid,
        dataDir: this.dataDir,
      });
      await this.kill(run);
    }
    return run.exit ?? (await run.exited);
  }

  /** Re-reads the config files (SIGHUP to the postmaster). */
  reload(): void {
    const run = this.requireRunning('reload');
    run.child.kill('SIGHUP');
  }

  private requireRunning(what: string): Run {
    if (!this.run || this.run.exit) throw new PostgresStateError(`${what}: postgres is not running on ${this.dataDir}`);
    return this.run;
  }

  // -------------------------------------------------------------------------
  // SQL (sql-client.ts, status.ts)

  /**
   * SQL as the superuser, over a pool of at most 2 unix-socket connections.
   * The call fails after `timeoutMs` (client side; the connection is dropped).
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], opts: { timeoutMs?: number } = {}): Promise<pg.QueryResult<R>> {
    return this.sql.query<R>(sql, params, opts);
  }

  /** The server PIDs of ogel's own query pool. */
  ownBackendPids(): number[] {
    return this.sql.ownPids();
  }

  status(): Promise<PgStatus> {
    return readStatus(this);
  }

  /**
   * Promotes a standby: pg_promote(false) (returns at once), then polls
   * pg_is_in_recovery() every 5 ms until false (about 29 ms here). Refuses on a
   * server that is not in recovery. Resolves with the time taken.
   */
  async promote(opts: { timeoutMs?: number } = {}): Promise<{ ms: number }> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_PROMOTE_TIMEOUT_MS;
    const t0 = performance.now();
    const inRecovery = async () => (await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === true;
    if (!(await inRecovery())) throw new PostgresStateError(`promote refused: postgres on ${this.dataDir} is not in recovery (it is already a primary)`);
    const sent = await this.query<{ ok: boolean }>('SELECT pg_promote(false) AS ok');
    if (sent.rows[0]?.ok !== true) throw new PostgresStateError(`promote: pg_promote(false) on ${this.dataDir} could not signal the postmaster`);
    for (;;) {
      if (!(await inRecovery())) return { ms: performance.now() - t0 };
      if (performance.now() - t0 > timeoutMs) throw new PostgresStateError(`promote: ${this.dataDir} still in recovery ${timeoutMs} ms after pg_promote`);
      await sleep(PROMOTE_POLL_MS);
    }
  }

  // -------------------------------------------------------------------------
  // The fence (fence/server-fence.ts)

  /**
   * The fence (on) or its removal (off): pg_hba.conf refuses new client
   * sessions over TCP, ALTER SYSTEM SET default_transaction_read_only covers
   * the sessions that remain, then (on) every client backend but our pool's is
   * terminated. terminate: false leaves the sessions (a standby about to be promoted).
   */
  setReadOnly(on: boolean, opts: { timeoutMs?: number; terminate?: boolean } = {}): Promise<{ terminated: number }> {
    return setReadOnly(this, on, opts);
  }

  /** The fence without its last step, for a switchover's drain; returns the server's clock once every backend has the new default. */
  refuseNewWrites(opts: { timeoutMs?: number } = {}): Promise<{ sinceTs: string }> {
    return refuseNewWrites(this, opts);
  }

  /** Client sessions whose open transaction may still write after refuseNewWrites. */
  writersSince(sinceTs: string): Promise<number> {
    return writersSince(this, sinceTs);
  }

  /** The fence's last step after refuseNewWrites: every client backend but our pool's ends. */
  endClientSessions(opts: { timeoutMs?: number } = {}): Promise<{ terminated: number }> {
    return endClientSessions(this, opts);
  }

  /** default_transaction_read_only as a new session sees it ('on' while fenced). */
  readOnlyDefault(): Promise<'on' | 'off'> {
    return readOnlyDefault(this);
  }
}

function tail(output: string, n = 20): string[] {
  return output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n);
}
