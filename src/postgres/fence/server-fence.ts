// The fence on one local server (I3): refuse client writes, and lift that.
// Two halves, both on disk so they survive a restart until removed:
// - hard: pg_hba.conf refuses new client sessions over TCP (setClientAccess);
// - soft: ALTER SYSTEM SET default_transaction_read_only, for the sessions that
//   remain (ogel's own, over the unix socket).
// Then every client backend but ogel's pool is ended. Walsenders are left alone,
// so standbys can catch up. The agent decides when (lease-keeper.ts); this
// module only carries it out. PostgresInstance exposes each step as a method.

import { PostgresStateError } from '../errors.js';
import { connectSocket, type SocketTarget } from '../query.js';
import type { Queryable } from '../sql-client.js';
import { setTimeout as sleep } from 'node:timers/promises';

export const DEFAULT_FENCE_TIMEOUT_MS = 10_000;
/** Between checks while fencing: inside a switchover's write pause, so short (each check is a query or a fresh session). */
const FENCE_POLL_MS = 2;

/** What the fence needs of a server (PostgresInstance). */
export interface FenceableServer extends Queryable {
  readonly socketTarget: SocketTarget;
  /** Opens (true) or closes pg_hba.conf to TCP clients (the file only). */
  setClientAccess(open: boolean): void;
  /** ogel's own backends (its query pool): never ended by the fence. */
  ownBackendPids(): number[];
}

/**
 * The fence (on) or its removal (off). pg_hba.conf refuses new client
 * sessions over TCP (setClientAccess); ALTER SYSTEM SET
 * default_transaction_read_only covers the sessions that remain (ours, over
 * the unix socket); reload, wait until new sessions see it, then (on)
 * terminate every client backend except our own pool's. The read-only default
 * alone would not do: any session may override it (BEGIN READ WRITE), hence
 * the pg_hba.conf half. Replication (walsenders) is left alone. Both halves
 * are on disk, so they survive a restart until removed.
 * A switchover takes it apart to drain open transactions before the
 * terminations: refuseNewWrites, writersSince, endClientSessions.
 */
export async function setReadOnly(srv: FenceableServer, on: boolean, opts: { timeoutMs?: number; terminate?: boolean } = {}): Promise<{ terminated: number }> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FENCE_TIMEOUT_MS;
  const t0 = performance.now();
  await closeToWrites(srv, on, t0, timeoutMs, `setReadOnly(${on})`);
  // terminate: false, on a standby about to be promoted: its read-only sessions
  // cannot have written anything, and may keep reading.
  if (!on || opts.terminate === false) return { terminated: 0 };
  return terminateClients(srv, t0, timeoutMs, 'setReadOnly(true)');
}

/**
 * The fence without its last step, for a switchover's drain: new client
 * sessions over TCP are refused and new transactions default to read-only,
 * while the sessions already open keep going, so a transaction that began
 * before may still write and commit. endClientSessions completes the fence.
 * Returns `sinceTs`, the server's clock once every backend has the new
 * default: the postmaster signals every backend before it forks another, and
 * a backend applies a pending reload before it runs its next command, so a
 * transaction that may still write began before sinceTs (writersSince) or
 * chose to (BEGIN READ WRITE).
 */
export async function refuseNewWrites(srv: FenceableServer, opts: { timeoutMs?: number } = {}): Promise<{ sinceTs: string }> {
  const sinceTs = await closeToWrites(srv, true, performance.now(), opts.timeoutMs ?? DEFAULT_FENCE_TIMEOUT_MS, 'refuseNewWrites');
  return { sinceTs };
}

/**
 * Client sessions (not our pool's) whose open transaction may still write
 * after refuseNewWrites: begun before `sinceTs` (read-write by default), or
 * holding a transaction id (it wrote, e.g. after BEGIN READ WRITE).
 */
export async function writersSince(srv: FenceableServer, sinceTs: string): Promise<number> {
  const r = await srv.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (pid = ANY($2::int[]))
        AND (xact_start < $1::timestamptz OR backend_xid IS NOT NULL)`,
    [sinceTs, srv.ownBackendPids()],
  );
  return r.rows[0]?.n ?? 0;
}

/**
 * The fence's last step after refuseNewWrites: every client backend but our
 * pool's is terminated, and gone when this returns. No client session is
 * left that could override the read-only default, and none can connect.
 */
export async function endClientSessions(srv: FenceableServer, opts: { timeoutMs?: number } = {}): Promise<{ terminated: number }> {
  return terminateClients(srv, performance.now(), opts.timeoutMs ?? DEFAULT_FENCE_TIMEOUT_MS, 'endClientSessions');
}

/**
 * pg_hba.conf closed (on) or open to TCP clients, and the read-only default to
 * match; one reload covers both. Returns the server's clock once a fresh
 * session sees the new default: by then the postmaster has reloaded both
 * files and signalled every backend.
 */
async function closeToWrites(srv: FenceableServer, on: boolean, t0: number, timeoutMs: number, what: string): Promise<string> {
  // The hard fence first (new client sessions refused), then the soft one
  // (what sessions that remain, ours, default to).
  srv.setClientAccess(!on);
  await srv.query(on ? 'ALTER SYSTEM SET default_transaction_read_only = on' : 'ALTER SYSTEM RESET default_transaction_read_only');
  await srv.query('SELECT pg_reload_conf()');
  // pg_reload_conf only signals the postmaster; a fresh session sees the new
  // value once the postmaster has reloaded, and by then it has signalled every backend.
  const want = on ? 'on' : 'off';
  for (;;) {
    const seen = await freshSessionView(srv);
    if (seen.readOnly === want) return seen.nowTs;
    if (performance.now() - t0 > timeoutMs)
      throw new PostgresStateError(`${what}: new sessions still show default_transaction_read_only != ${want} after ${timeoutMs} ms`);
    await sleep(FENCE_POLL_MS);
  }
}

/** Terminates every client backend except ours and waits until they are gone (bounded by t0 + timeoutMs). */
async function terminateClients(srv: FenceableServer, t0: number, timeoutMs: number, what: string): Promise<{ terminated: number }> {
  // pg_terminate_backend(pid, timeout) waits in 100 ms steps; poll instead.
  const r = await srv.query<{ pids: number[] | null }>(
    `SELECT array_agg(pid) FILTER (WHERE pg_terminate_backend(pid)) AS pids
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (pid = ANY($1::int[]))`,
    [srv.ownBackendPids()],
  );
  const pids = r.rows[0]?.pids ?? [];
  for (;;) {
    const left = await srv.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
    if ((left.rows[0]?.n ?? 0) === 0) break;
    if (performance.now() - t0 > timeoutMs) {
      throw new PostgresStateError(
        `${what}: ${left.rows[0]?.n} terminated session(s) still running after ${timeoutMs} ms; the fence is not complete (stop() is the hard fence)`,
      );
    }
    await sleep(FENCE_POLL_MS);
  }
  return { terminated: pids.length };
}

/** default_transaction_read_only as a new session sees it, and the server's clock then. */
async function freshSessionView(srv: FenceableServer): Promise<{ readOnly: 'on' | 'off'; nowTs: string }> {
  const client = await connectSocket(srv.socketTarget);
  try {
    const r = await client.query<{ ro: string; now: string }>("SELECT current_setting('default_transaction_read_only') AS ro, clock_timestamp()::text AS now");
    return { readOnly: r.rows[0]?.ro === 'on' ? 'on' : 'off', nowTs: r.rows[0]!.now };
  } finally {
    await client.end().catch(() => {});
  }
}

/** default_transaction_read_only as a new session sees it ('on' while fenced). */
export async function readOnlyDefault(srv: FenceableServer): Promise<'on' | 'off'> {
  return (await freshSessionView(srv)).readOnly;
}
