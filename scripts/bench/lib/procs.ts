// Child processes for benchmarks: spawn with logs kept on disk, wait for a line on
// stdout, stop by PID (SIGTERM, then SIGKILL after a grace period), notice deaths we
// did not cause, and kill everything on the way out (normal exit, error, SIGINT).
//
// Only PIDs this module spawned are ever signalled.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface SpawnOptions {
  /** Short unique name; also the log file stem (NAME.stdout.log, NAME.stderr.log). */
  name: string;
  cmd: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Recent stdout lines held for waitForLine; older ones are only in the log file. */
const RECENT_LINES_MAX = 256;

export class Proc {
  readonly name: string;
  readonly pid: number;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;
  /** Set when we signalled it: its exit is then not "unexpected". */
  stopping = false;

  private readonly recent: string[] = [];
  private partial = '';
  private readonly lineWaiters = new Set<(line: string) => void>();

  constructor(
    readonly child: ChildProcess,
    o: SpawnOptions,
    stdoutFd: number,
  ) {
    if (child.pid === undefined) throw new Error(`spawn ${o.name}: no pid (${o.cmd} not executable?)`);
    this.name = o.name;
    this.pid = child.pid;
    this.stdoutPath = path.join(o.logDir, `${o.name}.stdout.log`);
    this.stderrPath = path.join(o.logDir, `${o.name}.stderr.log`);
    child.stdout?.on('data', (chunk: Buffer) => {
      fs.writeSync(stdoutFd, chunk);
      const text = this.partial + chunk.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        this.recent.push(line);
        if (this.recent.length > RECENT_LINES_MAX) this.recent.shift();
        for (const w of [...this.lineWaiters]) w(line);
      }
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    // Close our copy of the log fd once the child is gone and stdout drained.
    child.once('close', () => fs.closeSync(stdoutFd));
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resolves with the first stdout line (already seen or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.recent.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.lineWaiters.delete(onLine);
      };
      const onLine = (line: string): void => {
        if (re.test(line)) {
          done();
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} (pid ${this.pid}) printed no line matching ${re} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.lineWaiters.add(onLine);
      void this.exited.then((info) => {
        if (!this.lineWaiters.has(onLine)) return;
        done();
        reject(new ProcExitedError(this, info));
      });
    });
  }

  /** Sends a signal by PID. Returns false if the process is already gone. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.alive) return false;
    this.stopping = true;
    try {
      process.kill(this.pid, sig);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw e;
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 2000): Promise<ExitInfo> {
    if (!this.alive) return this.exitInfo!;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }

  /** The last `lines` lines of stdout and stderr, labelled, for error reports. */
  tail(lines = 30): string {
    const part = (label: string, file: string): string => {
      let text = '';
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        return `--- ${label}: (unreadable: ${file})`;
      }
      if (text.trim() === '') return `--- ${label} (${file}): (empty)`;
      const all = text.trimEnd().split('\n');
      const shown = all.slice(-lines).join('\n');
      return `--- ${label} (${file}, last ${Math.min(lines, all.length)} lines):\n${shown}`;
    };
    return `${part(`${this.name} stdout`, this.stdoutPath)}\n${part(`${this.name} stderr`, this.stderrPath)}`;
  }

  /** Whether its logs say a listen failed because the port was taken. */
  addrInUse(): boolean {
    return /EADDRINUSE|address already in use/i.test(this.tail(200));
  }
}

export class ProcExitedError extends Error {
  constructor(
    readonly proc: Proc,
    readonly info: ExitInfo,
  ) {
    super(`${proc.name} (pid ${proc.pid}) exited (code ${info.code}, signal ${info.signal})\n${proc.tail()}`);
    this.name = 'ProcExitedError';
  }
}

/** All processes one benchmark spawned. */
export class ProcessGroup {
  readonly procs = new Set<Proc>();
  readonly unexpected: { name: string; pid: number; code: number | null; signal: NodeJS.Signals | null }[] = [];

  constructor(private readonly onUnexpectedExit: (p: Proc, info: ExitInfo) => void = () => {}) {}

  spawn(o: SpawnOptions): Proc {
    fs.mkdirSync(o.logDir, { recursive: true });
    // Append: a restarted process keeps its predecessor's log above its own.
    const stdoutFd = fs.openSync(path.join(o.logDir, `${o.name}.stdout.log`), 'a');
    const stderrFd = fs.openSync(path.join(o.logDir, `${o.name}.stderr.log`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(o.cmd, o.args, {
        cwd: o.cwd,
        env: o.env ?? process.env,
        // stderr straight to the file: nothing to pump, and it survives our own crash.
        stdio: ['ignore', 'pipe', stderrFd],
      });
    } finally {
      fs.closeSync(stderrFd);
    }
    const p = new Proc(child, o, stdoutFd);
    this.procs.add(p);
    void p.exited.then((info) => {
      if (!p.stopping) {
        this.unexpected.push({ name: p.name, pid: p.pid, ...info });
        this.onUnexpectedExit(p, info);
      }
    });
    return p;
  }

  live(): Proc[] {
    return [...this.procs].filter((p) => p.alive);
  }

  /** Stops every live process (SIGTERM, SIGKILL after graceMs), in parallel. */
  async stopAll(graceMs = 2000): Promise<void> {
    await Promise.all(this.live().map((p) => p.stop(graceMs)));
  }

  /** Last resort for process 'exit' handlers, which cannot wait: SIGKILL by PID. */
  killAllSync(): void {
    for (const p of this.live()) p.signal('SIGKILL');
  }
}

/**
 * Runs `cleanup` once: on SIGINT/SIGTERM (then exits 130/143) and, synchronously and
 * best-effort via `lastResort`, on process exit. Returns the idempotent cleanup.
 */
export function installCleanup(cleanup: () => Promise<void>, lastResort: () => void): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = (): Promise<void> =>
    (running ??= cleanup().catch((e: unknown) => {
      process.stderr.write(`cleanup failed: ${e instanceof Error ? e.message : String(e)}\n`);
    }));
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    process.stderr.write(`\n${sig}: stopping child processes and cleaning up...\n`);
    void once().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => onSignal('SIGINT', 130));
  process.once('SIGTERM', () => onSignal('SIGTERM', 143));
  process.once('exit', lastResort);
  return once;
}

/** Whether `name` (or a path) is an executable file, searching PATH for bare names. */
export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env['PATH'] ?? '')
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}
