// Standbys: cloning one from the primary, pointing it at another primary, and
// stopping its WAL receiver (the fence step of a failover).
//
// A standby's connection to its upstream lives in postgresql.auto.conf
// (primary_conninfo, primary_slot_name), the file ALTER SYSTEM writes. Both
// settings are reloadable since PG 13, so repointing and fencing need no restart:
// the startup process restarts (or stops) the WAL receiver when they change.
//
// Slots are not replicated: after a promotion the new primary has none of the old
// primary's slots, so repointing a standby first creates its slot upstream.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

import { compareLsn, normalizeLsn, type Lsn } from '../../fsm/index.js';
import { takeBaseBackup, type BaseBackupResult, type ReplicationConn } from './basebackup.js';
import type { PostgresInstance } from './instance.js';
import { quoteIdent, quoteLiteral, sqlState } from './query.js';
import { renderValue } from './settings.js';
import { setTimeout as sleep } from 'node:timers/promises';

export class StandbyError extends Error {
  override name = 'StandbyError';
}

/** Where a standby streams from: the upstream's address and the replication role. */
export interface UpstreamConn {
  host: string;
  port: number;
  /** The replication role (ogel_replication). */
  user: string;
  password?: string | undefined;
  /** Sent as application_name: the standby's node id, the name synchronous_standby_names lists. */
  applicationName: string;
}

export interface CreateStandbyOptions {
  /** The primary (or a standby: a backup from a standby works too). */
  primary: Omit<ReplicationConn, 'user'> & { user?: string | undefined };
  /** The replication role; overrides primary.user. */
  replicationUser: string;
  /** This standby's physical slot on the primary (created with RESERVE_WAL, or reused). */
  slotName: string;
  targetDir: string;
  /** The Postgres OS user, when running as root: every file is given to it. */
  owner?: { uid: number; gid: number } | undefined;
  /** The standby's node id (application_name in primary_conninfo). */
  applicationName: string;
  label?: string | undefined;
  onProgress?: ((bytes: number, totalBytes?: number) => void) | undefined;
  /** fsync the copy (default true; tests may turn it off). */
  fsync?: boolean | undefined;
}

export interface CreateStandbyResult {
  backup: BaseBackupResult;
  /** False when an existing slot was reused. */
  slotCreated: boolean;
}

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
const POLL_MS = 5;
/** How long a repointed standby must stream, with one receiver, to count as following. */
const STREAMING_STABLE_MS = 50;

/**
 * Clones a standby into `targetDir` (missing or empty): the slot first (so the
 * primary keeps the WAL the standby will need from the backup's start), then
 * the base backup, then standby.signal and primary_conninfo/primary_slot_name.
 * The copy still holds the primary's ogel.conf (its port, socket directory and
 * cluster_name): the caller must write this node's config (instance.writeConfig)
 * before starting it.
 */
export async function createStandby(opts: CreateStandbyOptions): Promise<CreateStandbyResult> {
  assertSlotName(opts.slotName);
  const conn: ReplicationConn = { ...opts.primary, user: opts.replicationUser };
  const slot = await ensurePhysicalSlot(conn, opts.slotName, { refuseActive: true });
  const backup = await takeBaseBackup(conn, opts.targetDir, {
    label: opts.label ?? `ogel clone for ${opts.applicationName}`,
    owner: opts.owner,
    onProgress: opts.onProgress,
    fsync: opts.fsync,
  });
  configureStandby(opts.targetDir, {
    upstream: {
      host: opts.primary.host,
      port: opts.primary.port,
      user: opts.replicationUser,
      password: opts.primary.password,
      applicationName: opts.applicationName,
    },
    slotName: opts.slotName,
    owner: opts.owner,
  });
  return { backup, slotCreated: slot.created };
}

/**
 * Makes the data directory in `dataDir` start as a standby of `upstream` (null: of nobody yet):
 * writes standby.signal and sets primary_conninfo and primary_slot_name in
 * postgresql.auto.conf (replacing the copied primary's values, and dropping a
 * copied fence: default_transaction_read_only belongs to the primary's role, and
 * would otherwise make this node read-only once promoted). Durable (fsynced).
 */
export function configureStandby(
  dataDir: string,
  o: { upstream: UpstreamConn | null; slotName?: string | undefined; owner?: { uid: number; gid: number } | undefined },
): void {
  if (o.slotName !== undefined) assertSlotName(o.slotName);
  setAutoConf(
    dataDir,
    {
      // No upstream: a standby that replays its own WAL and waits (the rejoin check).
      primary_conninfo: o.upstream === null ? '' : primaryConninfo(o.upstream),
      primary_slot_name: o.slotName ?? null,
      default_transaction_read_only: null,
    },
    o.owner,
  );
  writeDurable(path.join(dataDir, 'standby.signal'), '', o.owner);
}

/**
 * Sets (a string) or removes (null) settings in postgresql.auto.conf of a
 * stopped server, as ALTER SYSTEM would. Durable (fsynced).
 */
export function setAutoConf(dataDir: string, settings: Record<string, string | null>, owner?: { uid: number; gid: number } | undefined): void {
  const autoConf = path.join(dataDir, 'postgresql.auto.conf');
  const before = fs.existsSync(autoConf)
    ? fs.readFileSync(autoConf, 'utf8')
    : '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
  const names = Object.keys(settings);
  const kept = before.split('\n').filter((l) => !names.some((n) => new RegExp(`^\\s*${n}\\s*=`).test(l)));
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  for (const [name, value] of Object.entries(settings)) if (value !== null) kept.push(`${name} = ${renderValue(value)}`);
  writeDurable(autoConf, kept.join('\n') + '\n', owner);
}

/** A libpq connection string for primary_conninfo; every value quoted. */
export function primaryConninfo(u: UpstreamConn): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts = [`host=${q(u.host)}`, `port=${u.port}`, `user=${q(u.user)}`];
  if (u.password !== undefined) parts.push(`password=${q(u.password)}`);
  parts.push(`application_name=${q(u.applicationName)}`);
  // A dead upstream must not hang the WAL receiver's connect for long; the
  // startup process retries every wal_retrieve_retry_interval.
  parts.push('connect_timeout=5');
  return parts.join(' ');
}

/**
 * Creates the physical slot `slotName` on the server at `conn` with RESERVE_WAL,
 * or reuses an existing one (idempotent). A slot left without reserved WAL
 * (restart_lsn NULL: created without RESERVE_WAL) is dropped and recreated when
 * idle. With `refuseActive`, a slot some WAL receiver is streaming from is an error.
 */
export async function ensurePhysicalSlot(
  conn: ReplicationConn,
  slotName: string,
  opts: { refuseActive?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<{ created: boolean; restartLsn: Lsn | undefined }> {
  assertSlotName(slotName);
  const client = await connectReplication(conn, { signal: opts.signal });
  try {
    const look = async () =>
      (
        await client.query<{ slot_type: string; restart_lsn: string | null; active: boolean; active_pid: number | null }>(
          // A walsender connection takes only the simple protocol: no parameters.
          `SELECT slot_type, restart_lsn::text AS restart_lsn, active, active_pid FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slotName)}`,
        )
      ).rows[0];
    let row = await look();
    if (row && row.slot_type !== 'physical')
      throw new StandbyError(`replication slot ${slotName} exists but is a ${row.slot_type} slot; drop it (SELECT pg_drop_replication_slot('${slotName}'))`);
    if (row?.active && opts.refuseActive) {
      throw new StandbyError(
        `replication slot ${slotName} is in use (walsender pid ${row.active_pid}): a standby is still streaming from it; stop that standby before cloning a new one`,
      );
    }
    if (row && row.restart_lsn !== null) return { created: false, restartLsn: normalizeLsn(row.restart_lsn) ?? undefined };
    if (row && !row.active) await client.query(`DROP_REPLICATION_SLOT ${quoteIdent(slotName)}`);
    try {
      await client.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slotName)} PHYSICAL RESERVE_WAL`);
    } catch (err) {
      if (sqlState(err) !== '42710') throw err; // duplicate_object: someone created it meanwhile
      row = await look();
      return { created: false, restartLsn: row?.restart_lsn ? (normalizeLsn(row.restart_lsn) ?? undefined) : undefined };
    }
    row = await look();
    return { created: true, restartLsn: row?.restart_lsn ? (normalizeLsn(row.restart_lsn) ?? undefined) : undefined };
  } finally {
    await client.end().catch(() => {});
  }
}

export interface RepointOptions {
  /** Wait until the WAL receiver streams from the new upstream (default true). */
  wait?: boolean;
  timeoutMs?: number;
  /** Abandons the repoint (the slot call to the upstream, or the wait): it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Points a running standby at a new upstream without a restart: creates its
 * slot there (unless slotName is null), ALTER SYSTEM SET primary_conninfo and
 * primary_slot_name, pg_reload_conf(), then (by default) waits until
 * pg_stat_wal_receiver shows it streaming from the new upstream.
 */
export async function repointStandby(
  instance: PostgresInstance,
  upstream: UpstreamConn,
  slotName: string | null,
  opts: RepointOptions = {},
): Promise<{ ms: number }> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const signal = opts.signal;
  try {
    if (slotName !== null)
      await ensurePhysicalSlot({ host: upstream.host, port: upstream.port, user: upstream.user, password: upstream.password }, slotName, { signal });
  } catch (e) {
    signal?.throwIfAborted(); // the abort's reason, not the connection's end
    throw e;
  }
  await instance.query(`ALTER SYSTEM SET primary_conninfo = ${quoteLiteral(primaryConninfo(upstream))}`);
  await instance.query(slotName === null ? 'ALTER SYSTEM RESET primary_slot_name' : `ALTER SYSTEM SET primary_slot_name = ${quoteLiteral(slotName)}`);
  await instance.query('SELECT pg_reload_conf()');
  if (opts.wait === false) return { ms: performance.now() - t0 };
  let last = 'no WAL receiver';
  // Streaming for STREAMING_STABLE_MS, by the same receiver: one that says
  // "started streaming" and dies at once (the primary no longer has the WAL it
  // asks for) is not following.
  let streamingPid: number | null = null;
  let streamingSinceMs = 0;
  for (;;) {
    const r = await instance.query<{ pid: number; status: string; sender_port: number | null }>('SELECT pid, status, sender_port FROM pg_stat_wal_receiver');
    const row = r.rows[0];
    if (row) last = `WAL receiver ${row.status} from port ${row.sender_port}`;
    const streaming = row !== undefined && row.status === 'streaming' && row.sender_port === upstream.port;
    if (streaming && streamingPid === row.pid) {
      if (performance.now() - streamingSinceMs >= STREAMING_STABLE_MS) return { ms: performance.now() - t0 };
    } else {
      streamingPid = streaming ? row.pid : null;
      streamingSinceMs = performance.now();
    }
    if (performance.now() - t0 > timeoutMs) {
      throw new StandbyError(`repoint: ${instance.dataDir} is not streaming from ${upstream.host}:${upstream.port} ${timeoutMs} ms after the reload (${last})`);
    }
    signal?.throwIfAborted();
    await sleep(POLL_MS);
  }
}

export interface WalReceiverStopped {
  /** WAL received and flushed to this standby's disk: what it can replay, and what a failover compares. */
  flushedLsn: Lsn;
  replayedLsn: Lsn;
  ms: number;
}

/**
 * The failover fence step on one standby: stop streaming (primary_conninfo = ''
 * and reload; the slot name is kept), wait until pg_stat_wal_receiver has no
 * row, and report the flushed and replayed LSNs. Idempotent: on a standby that
 * is not streaming it only reports.
 */
export async function stopWalReceiver(instance: PostgresInstance, opts: { timeoutMs?: number } = {}): Promise<WalReceiverStopped> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const rec = await instance.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  if (rec.rows[0]?.r !== true) throw new StandbyError(`stopWalReceiver: ${instance.dataDir} is not a standby (not in recovery)`);
  await instance.query(`ALTER SYSTEM SET primary_conninfo = ''`);
  await instance.query('SELECT pg_reload_conf()');
  for (;;) {
    const r = await instance.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_wal_receiver');
    if (r.rows[0]?.n === 0) break;
    if (performance.now() - t0 > timeoutMs)
      throw new StandbyError(`stopWalReceiver: the WAL receiver of ${instance.dataDir} still runs ${timeoutMs} ms after primary_conninfo was cleared`);
    await sleep(POLL_MS);
  }
  return { ...(await readWalPositions(instance)), ms: performance.now() - t0 };
}

/** A standby's last WAL position received and synced (or replayed, when no receiver ran since startup), and replayed. */
export async function readWalPositions(instance: PostgresInstance): Promise<{ flushedLsn: string; replayedLsn: string }> {
  const r = await instance.query<{ received: string | null; replayed: string | null }>(
    'SELECT pg_last_wal_receive_lsn()::text AS received, pg_last_wal_replay_lsn()::text AS replayed',
  );
  const row = r.rows[0];
  const replayed = normalizeLsn(row?.replayed ?? '') ?? undefined;
  // pg_last_wal_receive_lsn() stays valid once the receiver has stopped: the
  // last position received and synced. NULL when no receiver ran since startup:
  // then only what was replayed is known.
  const received = normalizeLsn(row?.received ?? '') ?? undefined;
  if (!replayed) throw new StandbyError(`${instance.dataDir} reports no replay position`);
  const flushed = received && compareLsn(received, replayed) > 0 ? received : replayed;
  return { flushedLsn: flushed, replayedLsn: replayed };
}

// ------------------------------------------------------------------ helpers

function assertSlotName(name: string): void {
  if (!SLOT_NAME.test(name)) throw new StandbyError(`${JSON.stringify(name)} is not a replication slot name (1-63 of [a-z0-9_])`);
}

/**
 * A replication=database connection (walsender protocol, simple queries only).
 * With `signal`, an abort ends the connection (connecting, or any query on it
 * later): what waits on it rejects, and the caller's own step says why.
 */
export async function connectReplication(conn: ReplicationConn, opts: { timeoutMs?: number; signal?: AbortSignal | undefined } = {}): Promise<pg.Client> {
  const config: pg.ClientConfig & { replication: 'database' } = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database ?? 'postgres',
    application_name: 'ogel-agent',
    connectionTimeoutMillis: opts.timeoutMs ?? 5000,
    replication: 'database',
  };
  const client = new pg.Client(config);
  client.on('error', () => {}); // a dropped connection fails the pending query instead
  const signal = opts.signal;
  if (signal === undefined) {
    await client.connect();
    return client;
  }
  signal.throwIfAborted();
  // node-postgres's connect() settles only at its own timeout once the socket is
  // ended: the abort wins the race, and the connection is ended behind it.
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      void client.end().catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const connecting = client.connect();
  connecting.catch(() => {}); // settled later, after an abort
  try {
    await Promise.race([connecting, aborted]);
  } catch (e) {
    signal.removeEventListener('abort', onAbort);
    throw e;
  }
  // Connected: an abort later ends the connection, which fails what waits on it.
  client.once('end', () => signal.removeEventListener('abort', onAbort));
  aborted.catch(() => {});
  return client;
}

function writeDurable(file: string, content: string, owner: { uid: number; gid: number } | undefined): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, content);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
