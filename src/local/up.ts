// `ogel up` (= `npm start`): a whole local cluster on this machine. Three daemon
// processes on loopback, config and data under ./.ogel/ (configurable), the status
// table, the admin URL and token; then it supervises them until Ctrl-C, which
// stops every daemon gracefully. Running it again resumes the same cluster.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { request } from 'undici';
import { AdminClient, renderStatusTable } from '../cli/index.js';
import type { Status } from '../cli/types.js';
import { configToYaml, ConfigError, loadConfig, localClusterConfig, type Config, type RestoreFromConfig } from '../config/index.js';
import { pidAlive } from '../postgres/instance.js';
import { onStopSignals } from '../stop-signals.js';
import { chooseDataDir, postgresPreflight } from './preflight.js';
import { adminPassword } from '../auth/passwords.js';
import { setTimeout as sleep } from 'node:timers/promises';

const HELP = `Usage: ogel up [--dir DIR] [--nodes N] [--base-port PORT] [--json]
       ogel up --restore-from CONFIG [--target-time T | --target-lsn L | --target-name N] [--dir DIR] ...

Starts a local OgelBase cluster: N daemons (default 3) on 127.0.0.1, with their
config and data under DIR (default ./.ogel). Prints the status table, the admin
API URLs and the token, then keeps the cluster running until Ctrl-C, which stops
every daemon gracefully. Running it again resumes the same cluster from DIR.

Options:
  --dir DIR         state directory (default ./.ogel): cluster.yml, data/, logs/
  --nodes N         nodes of a new cluster, 1 to 7 (default 3; ignored on resume)
  --base-port PORT  ports of a new cluster: raft PORT+1.., api PORT+101..,
                    proxy PORT+201.., postgres PORT+301.. (default 7000)
  --json            print the cluster's status as JSON once it is up
  --restore-from CONFIG
                    disaster recovery: a NEW cluster whose first primary is
                    restored from the object store that CONFIG (the lost
                    cluster's config file) names, to the end of its WAL archive
                    or to --target-time/--target-lsn/--target-name (as in
                    'ogel restore'); the other nodes clone it. The lost
                    cluster's objects are only read (docs/disaster-recovery.md)
  -h, --help        this text

Then, in another terminal: ogel status, ogel transfer-leadership, ogel tenants create NAME`;

const READY_TIMEOUT_MS = 30_000;
/** initdb, two base backups and the first lease renewal: seconds here. */
const PG_READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
/** A first primary restored from a store (--restore-from): the restore and its replay. */
const RESTORE_READY_TIMEOUT_MS = 30 * 60_000;
/** A daemon that dies is restarted, but not more often than this in a minute. */
const RESTARTS_PER_MINUTE_MAX = 5;

interface Child {
  id: string;
  proc: ChildProcess | undefined;
  log: WriteStream;
  restarts: number[];
}

/** The cluster in DIR, or a new one (with --restore-from, a disaster recovery's); a number is the exit code of a problem already printed. */
function configFor(dir: string, a: Parameters<typeof restoreFromArgs>[0], nodes: number, basePort: number, progress: (msg: string) => void): Config | number {
  const configPath = join(dir, 'cluster.yml');
  const restoreFrom = restoreFromArgs(a);
  if (typeof restoreFrom === 'string') {
    process.stderr.write(`ogel up: ${restoreFrom}\n`);
    return 2;
  }
  if (restoreFrom !== undefined && existsSync(configPath)) {
    process.stderr.write(`ogel up: --restore-from builds a new cluster, but ${dir} already holds one (${configPath}); give another --dir\n`);
    return 2;
  }
  let config: Config;
  try {
    if (existsSync(configPath)) {
      config = loadConfig(configPath);
      progress(`resuming the cluster in ${dir} (${config.nodes.length} nodes)`);
    } else {
      mkdirSync(dir, { recursive: true, mode: 0o711 }); // traversable by the Postgres user, not listable
      const data = chooseDataDir(dir);
      if (data.relocated) progress(data.relocated);
      config = localClusterConfig({
        dataDir: data.dataDir,
        basePort,
        nodes,
        secret: randomBytes(24).toString('hex'),
        token: randomBytes(24).toString('hex'),
      });
      if (restoreFrom !== undefined) config = { ...config, restoreFrom };
      writeFileSync(configPath, configToYaml(config, { comment: 'Written by `ogel up`. Edit it, then run `ogel up` again.' }), { mode: 0o600 });
      progress(`created a new ${nodes}-node cluster in ${dir}`);
    }
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : `ogel up: ${(e as Error).message}`}\n`);
    return 2;
  }
  return config;
}

/** --restore-from and its target as the config's restoreFrom; a string is the problem. */
function restoreFromArgs(a: {
  'restore-from'?: string;
  'target-time'?: string;
  'target-lsn'?: string;
  'target-name'?: string;
}): RestoreFromConfig | string | undefined {
  const targets = (['target-time', 'target-lsn', 'target-name'] as const).filter((k) => a[k] !== undefined);
  if (a['restore-from'] === undefined) return targets.length > 0 ? `--${targets[0]} goes with --restore-from` : undefined;
  if (targets.length > 1) return `give one target, not ${targets.map((k) => `--${k}`).join(' and ')}`;
  const from = resolve(a['restore-from']);
  if (!existsSync(from)) return `--restore-from ${a['restore-from']}: no such file; give the lost cluster's config file (it names the object store)`;
  return { config: from, targetTime: a['target-time'], targetLsn: a['target-lsn'], targetName: a['target-name'] };
}

export async function runUp(argv: string[]): Promise<number> {
  const argSpec = {
    args: argv,
    options: {
      dir: { type: 'string', default: '.ogel' },
      nodes: { type: 'string' },
      'base-port': { type: 'string' },
      json: { type: 'boolean', default: false },
      'restore-from': { type: 'string' },
      'target-time': { type: 'string' },
      'target-lsn': { type: 'string' },
      'target-name': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  } satisfies ParseArgsConfig;
  let a: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    a = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`ogel up: ${(e as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const nodes = a.nodes === undefined ? 3 : Number(a.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 7) {
    process.stderr.write(`ogel up: --nodes must be an integer from 1 to 7, got '${a.nodes}'\n`);
    return 2;
  }
  const basePort = a['base-port'] === undefined ? 7000 : Number(a['base-port']);
  if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65535 - 400) {
    process.stderr.write(`ogel up: --base-port must be an integer from 1024 to 65135, got '${a['base-port']}'\n`);
    return 2;
  }
  const dir = resolve(a.dir);
  const progress = (msg: string) => process.stderr.write(`ogel up: ${msg}\n`);

  // Config: reuse the cluster in DIR, or create one.
  const configPath = join(dir, 'cluster.yml');
  const got = configFor(dir, a, nodes, basePort, progress);
  if (typeof got === 'number') return got;
  const config = got;
  // Fail now, in one line, rather than after waiting for a primary that cannot start.
  const cannot = postgresPreflight(config);
  if (cannot !== undefined) {
    process.stderr.write(`ogel up: ${cannot}\n`);
    return 1;
  }

  const statePath = join(dir, 'cluster.json');
  const other = runningUp(statePath);
  if (other !== undefined) {
    process.stderr.write(`ogel up: the cluster in ${dir} is already running (ogel up, pid ${other}); use 'ogel status', or stop that one first\n`);
    return 1;
  }
  const apis = config.nodes.map((n) => `http://${n.api}`);
  writeFileSync(statePath, JSON.stringify({ apis, token: config.api.token, pid: process.pid, config: configPath }, null, 2), { mode: 0o600 });

  const cli = fileURLToPath(new URL('../main.js', import.meta.url));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const children = new Map<string, Child>();
  let stopping = false;

  const start = (id: string) => {
    const c = children.get(id)!;
    const proc = spawn(process.execPath, [cli, 'daemon', '--config', configPath, '--node', id], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.proc = proc;
    proc.stdout!.pipe(c.log, { end: false });
    proc.stderr!.pipe(c.log, { end: false });
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      c.restarts = c.restarts.filter((t) => now - t < 60_000);
      const logPath = join(dir, 'logs', `${id}.log`);
      progress(`${id} exited (${signal ?? `code ${code}`}); last lines of ${logPath}:\n${tail(logPath, 8)}`);
      if (c.restarts.length >= RESTARTS_PER_MINUTE_MAX) {
        progress(`${id} died ${RESTARTS_PER_MINUTE_MAX} times within a minute; not restarting it (the others keep running)`);
        return;
      }
      c.restarts.push(now);
      progress(`restarting ${id}`);
      start(id);
    });
  };
  for (const n of config.nodes) {
    children.set(n.id, { id: n.id, proc: undefined, log: createWriteStream(join(dir, 'logs', `${n.id}.log`), { flags: 'a' }), restarts: [] });
    start(n.id);
  }

  // A second signal to a daemon forces its stop (src/stop-signals.ts).
  const forceAll = () => {
    for (const c of children.values()) if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
  };
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      [...children.values()].map(async (c) => {
        const p = c.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(t);
      }),
    );
    for (const c of children.values()) c.log.end();
    writeFileSync(statePath, JSON.stringify({ apis, token: config.api.token, pid: null, config: configPath }, null, 2), { mode: 0o600 });
  };

  let interrupted = false;
  let onInterrupt: () => void = () => {};
  const interruptedNow = new Promise<void>((r) => (onInterrupt = r));
  const removeSignalHandlers = onStopSignals({
    graceful: () => {
      interrupted = true;
      onInterrupt();
      progress('stopping the cluster (each daemon hands over leadership and exits; send the signal again to force)...');
    },
    force: () => {
      progress('forcing the stop: each daemon exits now and its Postgres stops immediately');
      forceAll();
    },
  });

  // Readiness: every daemon answers /health, then a leader is known.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const client = new AdminClient({ endpoints: apis, token: config.api.token, timeoutMs: 2_000 });
  let status: Status | undefined;
  for (const n of config.nodes) {
    while (!interrupted && !(await healthy(`http://${n.api}`))) {
      if (Date.now() > deadline) return fail(`${n.id} did not become healthy within ${READY_TIMEOUT_MS / 1000} s`, dir, n.id, stopAll);
      await sleep(50);
    }
    if (!interrupted) progress(`${n.id} is up (api http://${n.api})`);
  }
  // Ready means: a leader, and every node recorded by the state machine and
  // reachable from the leader (the membership controller's first rounds).
  const ready = (s: Status | undefined) => s?.leader != null && config.nodes.every((n) => s.members.some((m) => m.id === n.id && m.health?.healthy === true));
  while (!interrupted && !ready(status)) {
    try {
      status = await client.request<Status>('GET', '/v1/status');
    } catch {
      /* not yet */
    }
    if (ready(status)) break;
    if (Date.now() > deadline) return fail(`no leader was elected within ${READY_TIMEOUT_MS / 1000} s`, dir, config.nodes[0]!.id, stopAll);
    await sleep(100);
  }
  if (interrupted) {
    await stopAll();
    return 0;
  }

  // Postgres: wait (bounded) for the first primary to run, for the connection string.
  progress('waiting for Postgres: the first primary initialises, the standbys clone it...');
  let pgUrl: string | undefined;
  let primaryUrl: string | undefined;
  // A restore from a store takes as long as the data and the WAL to replay: give it time, and say so.
  const pgDeadline = Date.now() + (config.restoreFrom === undefined ? PG_READY_TIMEOUT_MS : RESTORE_READY_TIMEOUT_MS);
  if (config.restoreFrom !== undefined) progress(`restoring the first primary from the store of ${config.restoreFrom.config} (see ${join(dir, 'logs')})`);
  while (!interrupted && pgUrl === undefined && Date.now() < pgDeadline) {
    try {
      const s = await client.request<Status & { postgres: { primary: string | null; nodes?: Record<string, { reportedRole?: string }> } }>('GET', '/v1/status');
      const primary = s.postgres.primary;
      const node = config.nodes.find((n) => n.id === primary);
      // Ready: the primary takes writes and every other node streams from it.
      const standbysReady = config.nodes.every((n) => n.id === primary || s.postgres.nodes?.[n.id]?.reportedRole === 'standby');
      if (node && standbysReady && (await healthy(`http://${node.api}`, '/primary'))) {
        status = s;
        // Through the proxy of the first node: every node's proxy routes to the
        // primary, so this URL keeps working across failovers and switchovers.
        pgUrl = `postgresql://postgres:${encodeURIComponent(adminPassword(config))}@${config.nodes[0]!.proxy}/postgres`;
        primaryUrl = `postgresql://postgres:${encodeURIComponent(adminPassword(config))}@${node.postgres}/postgres`;
      }
    } catch {
      /* not yet */
    }
    if (pgUrl === undefined) await sleep(200);
  }
  if (interrupted) {
    await stopAll();
    return 0;
  }
  if (pgUrl === undefined)
    progress(
      `Postgres is not ready (a writable primary and every standby streaming) after ${PG_READY_TIMEOUT_MS / 1000} s; see ${join(dir, 'logs')} (the control plane is up)`,
    );

  if (a.json) {
    process.stdout.write(
      `${JSON.stringify({ status, apis, token: config.api.token, config: configPath, postgres: pgUrl ?? null, primary: primaryUrl ?? null }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`\n${renderStatusTable(status!)}\n\n`);
    if (pgUrl) process.stdout.write(`Postgres:   ${pgUrl}   (the proxy; any node's works: ${config.nodes.map((n) => n.proxy).join(', ')})\n`);
    if (primaryUrl) process.stdout.write(`Primary:    ${primaryUrl}   (its Postgres directly; changes with a failover)\n`);
    process.stdout.write(`Admin API:  ${apis.join('  ')}\n`);
    process.stdout.write(`Token:      ${config.api.token}\n`);
    process.stdout.write(`Config:     ${configPath}   Logs: ${join(dir, 'logs')}\n`);
    process.stdout.write(`\nThe ogel CLI finds this cluster from ${statePath}: try 'npx ogel status' in another terminal.\n`);
    process.stdout.write("Automatic failover is on; try 'npx ogel switchover' (planned) and 'npx ogel history'.\n");
    process.stdout.write('Press Ctrl-C to stop the cluster.\n');
  }

  await interruptedNow;
  await stopAll();
  removeSignalHandlers();
  progress('stopped; run `ogel up` again to resume this cluster');
  return 0;
}

async function fail(msg: string, dir: string, id: string, stopAll: () => Promise<void>): Promise<number> {
  process.stderr.write(`ogel up: ${msg}; last lines of ${join(dir, 'logs', `${id}.log`)}:\n${tail(join(dir, 'logs', `${id}.log`), 12)}\n`);
  await stopAll();
  return 1;
}

async function healthy(base: string, path = '/health'): Promise<boolean> {
  try {
    const r = await request(`${base}${path}`, { headersTimeout: 1_000, bodyTimeout: 1_000 });
    await r.body.dump();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

/** The pid of another live `ogel up` on this state directory, if any. */
function runningUp(statePath: string): number | undefined {
  try {
    const s = JSON.parse(readFileSync(statePath, 'utf8')) as { pid?: number | null };
    if (typeof s.pid !== 'number' || s.pid === process.pid) return undefined;
    return pidAlive(s.pid) ? s.pid : undefined;
  } catch {
    return undefined;
  }
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `  ${l}`)
      .join('\n');
  } catch {
    return '  (no log)';
  }
}
