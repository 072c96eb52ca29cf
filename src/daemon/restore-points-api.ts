// `ogel restore-point create NAME` and `list` on the daemon's side (POST and GET
// /v1/restore-points): the point is made by pg_create_restore_point on the
// writable primary, over a superuser connection from whichever node runs the
// request (the leader: one at a time, so a name is checked and recorded before
// the next request for it), and recorded in the object store
// (src/archive/restore-points.ts), which is all `ogel restore --target-name`
// reads.

import pg from 'pg';
import type { ClusterState } from '../../fsm/index.js';
import { normalizeLsn, parseLsn, formatLsn } from '../../fsm/index.js';
import { listRestorePoints, readRestorePoint, writeRestorePoint, type RestorePoint } from '../archive/restore-points.js';
import { restorePointProblem } from '../archive/pitr-target.js';
import { adminPassword } from '../auth/passwords.js';
import type { Config } from '../config/index.js';
import { writablePrimary, type PrimaryTarget } from '../controllers/tenant-provisioner.js';
import { ApiError } from '../api/http.js';
import type { RestorePoint as RestorePointBody, RestorePointsResponse } from '../api/contract/index.js';
import type { ObjectStore } from '../object-store/index.js';
import { DEFAULT_DATABASE, sqlState, SUPERUSER } from '../postgres/query.js';

const CONNECT_TIMEOUT_MS = 5_000;
const STATEMENT_TIMEOUT_MS = 10_000;
const STORE_HINT = "check the object store ('ogel status' shows its problem) and retry";
const WALFILE_RE = /^[0-9A-F]{24}$/;

/** What pg_create_restore_point gave on the primary. */
export interface MadePoint {
  lsn: string;
  /** pg_walfile_name(lsn): its first 8 hex digits are the timeline. */
  walfile: string;
  /** The primary's clock (clock_timestamp()) right after. */
  atMs: number;
}

export interface RestorePointDeps {
  state: () => ClusterState;
  store: ObjectStore;
  storeDescription: string;
  clusterPrefix: string;
  /** Runs pg_create_restore_point on the primary (default: primaryRestorePointMaker). Throws pg's errors. */
  make: (target: PrimaryTarget, name: string) => Promise<MadePoint>;
}

export function restorePointView(rp: RestorePoint): RestorePointBody {
  return { name: rp.name, lsn: formatLsn(rp.lsn), timeline: rp.timeline, atMs: rp.atMs, at: new Date(rp.atMs).toISOString() };
}

export async function listRestorePointsView(d: Pick<RestorePointDeps, 'store' | 'storeDescription' | 'clusterPrefix'>): Promise<RestorePointsResponse> {
  try {
    return { store: d.storeDescription, restorePoints: (await listRestorePoints(d.store, d.clusterPrefix)).map(restorePointView) };
  } catch (e) {
    throw new ApiError(503, 'unavailable', `could not list the restore points in ${d.storeDescription}: ${(e as Error).message}`, STORE_HINT);
  }
}

/** Makes and records one restore point; the caller runs one at a time. */
export async function createRestorePoint(d: RestorePointDeps, name: string): Promise<RestorePointBody> {
  const problem = restorePointProblem(name);
  if (problem !== null) throw new ApiError(400, 'invalid_body', `field 'name': ${problem}`, 'e.g. {"name": "before-migration-42"}');
  let existing: RestorePoint | null;
  try {
    existing = await readRestorePoint(d.store, d.clusterPrefix, name);
  } catch (e) {
    throw new ApiError(503, 'unavailable', `could not read the restore points in ${d.storeDescription}: ${(e as Error).message}`, STORE_HINT);
  }
  if (existing !== null) throw duplicate(existing);
  const target = writablePrimary(d.state());
  if (typeof target === 'string') {
    throw new ApiError(503, 'unavailable', `cannot make a restore point now: ${target}`, "retry once 'ogel status' shows a primary holding its lease");
  }
  let made: MadePoint;
  try {
    made = await d.make(target, name);
  } catch (e) {
    const state = sqlState(e);
    // 55000: recovery is in progress (the state machine's primary is not one yet, or not any more).
    if (state === '55000')
      throw new ApiError(409, 'conflict', `${target.node}'s Postgres is in recovery, not the primary: ${(e as Error).message}`, 'retry in a moment');
    const where = `${target.node}'s Postgres at ${target.host}:${target.port}`;
    throw new ApiError(
      503,
      'unavailable',
      `could not make the restore point on ${where}: ${(e as Error).message}`,
      "retry in a moment; 'ogel status' shows the primary",
    );
  }
  const lsn = parseLsn(made.lsn);
  if (lsn === null || !WALFILE_RE.test(made.walfile)) throw new Error(`pg_create_restore_point gave ${JSON.stringify(made)}`);
  const rp: RestorePoint = { name, lsn, timeline: Number.parseInt(made.walfile.slice(0, 8), 16), atMs: made.atMs };
  let outcome: 'created' | 'exists';
  try {
    outcome = await writeRestorePoint(d.store, d.clusterPrefix, rp);
  } catch (e) {
    throw new ApiError(
      503,
      'unavailable',
      `restore point ${JSON.stringify(name)} was made at LSN ${formatLsn(lsn)} but could not be recorded in ${d.storeDescription}: ${(e as Error).message}`,
      `fix the store, then make it again under another name: 'ogel restore --target-name' finds only recorded names`,
    );
  }
  if (outcome === 'exists') {
    // Another request for this name got there first (the record is theirs; this WAL record is never used).
    const theirs = await readRestorePoint(d.store, d.clusterPrefix, name).catch(() => null);
    throw duplicate(theirs ?? rp);
  }
  return restorePointView(rp);
}

function duplicate(rp: RestorePoint): ApiError {
  return new ApiError(
    409,
    'conflict',
    `field 'name': restore point ${JSON.stringify(rp.name)} already exists (made ${new Date(rp.atMs).toISOString()} at LSN ${formatLsn(rp.lsn)} on timeline ${rp.timeline})`,
    "pick another name: a target name must mean one place ('ogel restore-point list' shows the names taken)",
  );
}

/** pg_create_restore_point over a superuser connection to the primary, bounded in time. */
export function primaryRestorePointMaker(config: Config): RestorePointDeps['make'] {
  return async (target, name) => {
    const client = new pg.Client({
      host: target.host,
      port: target.port,
      user: SUPERUSER,
      password: adminPassword(config),
      database: DEFAULT_DATABASE,
      application_name: 'ogel-restore-point',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS,
    });
    // A server-side termination must not crash the daemon; the query fails instead.
    client.on('error', () => {});
    try {
      await client.connect();
      const r = await client.query<{ lsn: string; walfile: string; at_ms: string }>(
        'SELECT p.lsn::text AS lsn, pg_walfile_name(p.lsn) AS walfile, (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS at_ms FROM pg_create_restore_point($1) AS p(lsn)',
        [name],
      );
      const row = r.rows[0];
      if (row === undefined) throw new Error('pg_create_restore_point returned no row');
      return { lsn: normalizeLsn(row.lsn) ?? row.lsn, walfile: row.walfile, atMs: Number(row.at_ms) };
    } finally {
      await client.end().catch(() => {});
    }
  };
}
