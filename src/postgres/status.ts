// What a local server is right now: primary or standby, its timeline, its LSNs
// and its WAL receiver, in one query.

import { normalizeLsn, type Lsn } from '../../fsm/index.js';
import { PostgresStateError } from './errors.js';
import type { Queryable } from './sql-client.js';

const STATUS_TIMEOUT_MS = 5000;

export interface PgStatus {
  inRecovery: boolean;
  /**
   * Primary: the timeline of the current WAL insert position. Standby: the
   * newest of the last restartpoint's timeline, the WAL receiver's timeline and
   * the minimum-recovery timeline.
   */
  timeline: number;
  /** pg_lsn text (fsm/lsn.ts). Primary: current, flushed. Standby: received, flushed, replayed. */
  lsn: { current?: Lsn; received?: Lsn; flushed?: Lsn; replayed?: Lsn };
  /** The standby's WAL receiver, when one runs. */
  walReceiver?: { status: string; timeline?: number; flushed?: Lsn; senderHost?: string; senderPort?: number; slotName?: string };
}

export async function readStatus(server: Queryable): Promise<PgStatus> {
  const r = await server.query<{
    in_recovery: boolean;
    checkpoint_tli: number;
    min_recovery_tli: number | null;
    current_tli: number | null;
    current: string | null;
    flushed: string | null;
    received: string | null;
    replayed: string | null;
    wr_status: string | null;
    wr_tli: number | null;
    wr_flushed: string | null;
    wr_host: string | null;
    wr_port: number | null;
    wr_slot: string | null;
  }>(
    `
    SELECT s.in_recovery,
           (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
           (SELECT min_recovery_end_timeline FROM pg_control_recovery()) AS min_recovery_tli,
           CASE WHEN s.in_recovery THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS current_tli,
           CASE WHEN s.in_recovery THEN NULL ELSE pg_current_wal_lsn()::text END AS current,
           CASE WHEN s.in_recovery THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flushed,
           pg_last_wal_receive_lsn()::text AS received,
           pg_last_wal_replay_lsn()::text AS replayed,
           w.status AS wr_status, w.received_tli AS wr_tli, w.flushed_lsn::text AS wr_flushed,
           w.sender_host AS wr_host, w.sender_port AS wr_port, w.slot_name AS wr_slot
      FROM (SELECT pg_is_in_recovery() AS in_recovery) s
      LEFT JOIN pg_stat_wal_receiver w ON true`,
    [],
    { timeoutMs: STATUS_TIMEOUT_MS },
  );
  const row = r.rows[0];
  if (!row) throw new PostgresStateError('status: no row');
  const lsn = (v: string | null | undefined): Lsn | undefined => (v == null ? undefined : (normalizeLsn(v) ?? undefined));
  const out: PgStatus = { inRecovery: row.in_recovery, timeline: 0, lsn: {} };
  if (!row.in_recovery) {
    out.timeline = row.current_tli ?? row.checkpoint_tli;
    const current = lsn(row.current);
    const flushed = lsn(row.flushed);
    if (current) out.lsn.current = current;
    if (flushed) out.lsn.flushed = flushed;
  } else {
    out.timeline = Math.max(row.checkpoint_tli, row.min_recovery_tli ?? 0, row.wr_tli ?? 0);
    const received = lsn(row.received);
    const replayed = lsn(row.replayed);
    // While the receiver runs, its flushed_lsn; once stopped,
    // pg_last_wal_receive_lsn() is the same position (received and synced).
    const flushed = lsn(row.wr_flushed) ?? received;
    if (received) out.lsn.received = received;
    if (flushed) out.lsn.flushed = flushed;
    if (replayed) out.lsn.replayed = replayed;
  }
  if (row.wr_status !== null) {
    const wrFlushed = lsn(row.wr_flushed);
    out.walReceiver = {
      status: row.wr_status,
      ...(row.wr_tli !== null ? { timeline: row.wr_tli } : {}),
      ...(wrFlushed ? { flushed: wrFlushed } : {}),
      ...(row.wr_host !== null ? { senderHost: row.wr_host } : {}),
      ...(row.wr_port !== null ? { senderPort: row.wr_port } : {}),
      ...(row.wr_slot !== null ? { slotName: row.wr_slot } : {}),
    };
  }
  return out;
}
