// Live replication figures of a primary, read from pg_stat_replication: per
// standby, how far behind it is (bytes and seconds) and whether it counts for the
// synchronous quorum. Only a primary has these figures for its standbys, so on a
// standby the answer is null (the caller then falls back to the LSNs the agents
// report through the state machine, which are up to a second old).

import { z } from 'zod';
import { normalizeLsn, type Lsn } from '../../fsm/index.js';
import type { PostgresInstance } from './instance.js';
import { ARCHIVE_APPLICATION_NAME } from './settings.js';

/** One walsender serving a standby, as the primary sees it. */
export interface StandbyReplication {
  /** application_name: ogel standbys send their node id (applicationNameFor). */
  standby: string;
  /** pg_stat_replication.state: startup, catchup, streaming or stopping. */
  state: string;
  /** pg_stat_replication.sync_state: async, potential, sync or quorum. */
  syncState: string;
  sentLsn: Lsn | null;
  writeLsn: Lsn | null;
  flushLsn: Lsn | null;
  replayLsn: Lsn | null;
  /** WAL the primary has written that the standby has not replayed; null before its first reply. */
  lagBytes: number | null;
  /**
   * replay_lag in seconds. Postgres measures it from commits the standby
   * acknowledged; it is null when the primary has been idle for a while (there is
   * nothing to be late with), which is not the same as unknown lag in bytes.
   */
  lagSeconds: number | null;
  writeLagSeconds: number | null;
  flushLagSeconds: number | null;
}

/** A physical replication slot on the primary (pg_replication_slots): what it holds back of the WAL. */
export interface SlotStatus {
  slot: string;
  /** A WAL receiver streams from it now. */
  active: boolean;
  /**
   * reserved or extended: its WAL is kept; unreserved: it is past
   * max_slot_wal_keep_size and its WAL goes at the next checkpoint; lost: it was
   * invalidated (its standby must be re-cloned); null when Postgres does not say.
   */
  walStatus: string | null;
  /** How much more WAL it may fall behind before it becomes unreserved; null when unbounded or lost. */
  safeWalBytes: number | null;
}

export interface ReplicationStats {
  /** pg_current_wal_lsn() on the primary, read in the same statement as the rows. */
  currentLsn: Lsn;
  /** Sorted by standby name; a standby that is not connected is absent. */
  standbys: StandbyReplication[];
  /** Physical slots, sorted by name. */
  slots: SlotStatus[];
}

export const REPLICATION_STATS_TIMEOUT_MS = 2_000;

/**
 * The primary's view of its standbys, or null when `instance` is in recovery (a
 * standby has no standbys of its own in ogel). The query is bounded by
 * `timeoutMs`; a stopped instance throws PostgresStateError from query().
 */
export async function replicationStats(instance: Pick<PostgresInstance, 'query'>, opts: { timeoutMs?: number } = {}): Promise<ReplicationStats | null> {
  const timeoutMs = opts.timeoutMs ?? REPLICATION_STATS_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`replicationStats: timeoutMs must be a positive number, got ${timeoutMs}`);
  // One statement, so the current LSN and every row are one consistent reading. The
  // CTE is MATERIALIZED so pg_current_wal_lsn() (volatile) is called once, and it is
  // guarded by pg_is_in_recovery() because it raises an error on a standby.
  // Base-backup walsenders (state 'backup') are clones in progress, not standbys.
  // The physical slots come along as one JSON column of every row.
  const r = await instance.query<{
    in_recovery: boolean;
    current_lsn: string | null;
    standby: string | null;
    state: string | null;
    sync_state: string | null;
    sent_lsn: string | null;
    write_lsn: string | null;
    flush_lsn: string | null;
    replay_lsn: string | null;
    lag_bytes: string | null;
    write_lag_s: number | null;
    flush_lag_s: number | null;
    replay_lag_s: number | null;
    slots?: { slot: string; active: boolean; wal_status: string | null; safe_wal_size: string | null }[] | null;
  }>(
    `WITH cur AS MATERIALIZED (
       SELECT pg_is_in_recovery() AS in_recovery,
              CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS lsn
     ),
     slots AS MATERIALIZED (
       SELECT coalesce(json_agg(json_build_object('slot', slot_name, 'active', active, 'wal_status', wal_status, 'safe_wal_size', safe_wal_size::text) ORDER BY slot_name), '[]') AS list
         FROM pg_replication_slots WHERE slot_type = 'physical'
     )
     SELECT cur.in_recovery, cur.lsn::text AS current_lsn, slots.list AS slots,
            r.application_name AS standby, r.state, r.sync_state,
            r.sent_lsn::text, r.write_lsn::text, r.flush_lsn::text, r.replay_lsn::text,
            pg_wal_lsn_diff(cur.lsn, r.replay_lsn)::text AS lag_bytes,
            EXTRACT(EPOCH FROM r.write_lag)::float8 AS write_lag_s,
            EXTRACT(EPOCH FROM r.flush_lag)::float8 AS flush_lag_s,
            EXTRACT(EPOCH FROM r.replay_lag)::float8 AS replay_lag_s
       FROM cur CROSS JOIN slots
       LEFT JOIN pg_stat_replication r ON NOT cur.in_recovery AND r.state <> 'backup' AND r.application_name <> '${ARCHIVE_APPLICATION_NAME}'
      ORDER BY r.application_name, r.state = 'streaming' DESC`,
    [],
    { timeoutMs },
  );
  const first = r.rows[0];
  if (!first) throw new Error('replicationStats: the query returned no row');
  if (first.in_recovery) return null;
  const currentLsn = lsnOrNull(first.current_lsn);
  if (currentLsn === null) throw new Error(`replicationStats: pg_current_wal_lsn() gave ${JSON.stringify(first.current_lsn)}`);
  const standbys: StandbyReplication[] = [];
  for (const row of r.rows) {
    // The LEFT JOIN gives one row of NULLs when no standby is connected.
    if (row.standby === null) continue;
    const lagBytes = row.lag_bytes === null ? null : Number(row.lag_bytes);
    standbys.push({
      standby: row.standby,
      state: row.state ?? 'unknown',
      syncState: row.sync_state ?? 'unknown',
      sentLsn: lsnOrNull(row.sent_lsn),
      writeLsn: lsnOrNull(row.write_lsn),
      flushLsn: lsnOrNull(row.flush_lsn),
      replayLsn: lsnOrNull(row.replay_lsn),
      // The primary's position can only be ahead of what a standby replayed; clamp
      // anyway so a reading taken across a timeline switch never shows negative lag.
      lagBytes: lagBytes === null || !Number.isFinite(lagBytes) ? null : Math.max(0, lagBytes),
      lagSeconds: row.replay_lag_s,
      writeLagSeconds: row.write_lag_s,
      flushLagSeconds: row.flush_lag_s,
    });
  }
  const slots = (first.slots ?? []).map((s) => ({
    slot: s.slot,
    active: s.active,
    walStatus: s.wal_status,
    safeWalBytes: s.safe_wal_size === null ? null : Math.max(0, Number(s.safe_wal_size)),
  }));
  return { currentLsn, standbys, slots };
}

function lsnOrNull(text: string | null): Lsn | null {
  return text === null ? null : normalizeLsn(text);
}

const lsnSchema = z.string().refine((s) => normalizeLsn(s) !== null, 'not an LSN');
const secondsSchema = z.number().nonnegative().nullable();

const standbySchema = z.object({
  standby: z.string().min(1),
  state: z.string(),
  syncState: z.string(),
  sentLsn: lsnSchema.nullable(),
  writeLsn: lsnSchema.nullable(),
  flushLsn: lsnSchema.nullable(),
  replayLsn: lsnSchema.nullable(),
  lagBytes: z.number().nonnegative().nullable(),
  lagSeconds: secondsSchema,
  writeLagSeconds: secondsSchema,
  flushLagSeconds: secondsSchema,
});

/** Body of GET /v1/internal/pg/replication (docs/admin-api.md). */
export interface ReplicationAnswer {
  node: string;
  /** False on a standby: currentLsn is then null and standbys empty. */
  primary: boolean;
  currentLsn: Lsn | null;
  standbys: StandbyReplication[];
  /** The primary's physical slots; empty on a standby (and from a daemon that predates them). */
  slots: SlotStatus[];
  /** The answering daemon's wall clock: for display only, never compared across machines. */
  measuredAtMs: number;
  /** The answering node's WAL archiver (src/daemon/archive.ts); absent from a daemon that predates it, null before it started. */
  archive?: ArchiveReport | null;
}

/** What a node's WAL archiver reports of itself (the daemon's ArchiveStatus). */
export interface ArchiveReport {
  /** off, standby, starting, archiving, retrying or conflict. */
  state: string;
  timeline: number | null;
  /** Stored up to here on the archiver's stream (the index may lag by a report). */
  archivedLsn: Lsn | null;
  /** How long the oldest WAL received but not stored has waited. */
  lagMs: number | null;
  lastError: string | null;
  /** WAL the server no longer had when the archive asked for it, since the daemon started. */
  gaps: number;
  conflicts: number;
  uploadedObjects: number;
  uploadedBytes: number;
}

const archiveSchema = z.object({
  state: z.string().min(1).max(40),
  timeline: z.number().int().positive().nullable(),
  archivedLsn: lsnSchema.nullable(),
  lagMs: z.number().nonnegative().nullable(),
  lastError: z.string().max(10_000).nullable(),
  gaps: z.number().int().nonnegative(),
  conflicts: z.number().int().nonnegative(),
  uploadedObjects: z.number().int().nonnegative(),
  uploadedBytes: z.number().nonnegative(),
});

const answerSchema = z.object({
  node: z.string().min(1),
  primary: z.boolean(),
  currentLsn: lsnSchema.nullable(),
  standbys: z.array(standbySchema).max(1_000),
  slots: z
    .array(z.object({ slot: z.string().min(1), active: z.boolean(), walStatus: z.string().nullable(), safeWalBytes: z.number().nonnegative().nullable() }))
    .max(1_000)
    .default([]),
  measuredAtMs: z.number(),
  archive: archiveSchema.nullable().optional(),
});

/** The answer from another daemon, checked: never trust another node's bytes. Throws with the first problem found. */
export function parseReplicationAnswer(body: unknown): ReplicationAnswer {
  const r = answerSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`malformed replication answer: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return r.data;
}
