// The `postgres` part of GET /v1/status: the state machine's view (wanted and
// reported roles, generation, lease, block, history-free), plus per standby how
// far behind it is. Pure: the live figures and the lease clock are passed in, so
// the shape is tested without daemons.

import { lsnDiffBytes, type PgNode, type PostgresState } from '../../fsm/index.js';
import type { ReplicationAnswer } from '../postgres/replication-stats.js';
import { slotNameFor } from '../postgres/settings.js';
import type { NodeReplication, PostgresNode, PostgresStatus, ReplicationSummary } from '../api/contract/index.js';

/**
 * Where a standby's lag figures come from: 'live' from the primary's
 * pg_stat_replication (through its daemon), 'reported' from the LSNs the agents
 * propose through the state machine (the primary's flushed minus the standby's
 * replayed, each up to about a second old, taken at different moments). The
 * shapes are the admin API contract's (src/api/contract/responses.ts).
 */
export type LagSource = NodeReplication['source'];
export type { NodeReplication, ReplicationSummary };

export type LiveFigures = { ok: true; answer: ReplicationAnswer } | { ok: false; error: string };

export interface PostgresStatusInput {
  pg: PostgresState;
  /** Null: not asked (no primary, or a stale read). */
  live: LiveFigures | null;
  /** Lease time left as the answering node sees it (LeaseTracker); null when unknown. */
  leaseRemainingMs: number | null;
}

export function postgresStatusView(i: PostgresStatusInput): PostgresStatus {
  const { pg } = i;
  const live = i.live?.ok ? i.live.answer : null;
  const nodes: Record<string, PostgresNode> = {};
  for (const id of [...pg.nodes.keys()].sort()) {
    const n = pg.nodes.get(id)!;
    nodes[id] = { ...n, replication: nodeReplication(pg, n, live), slot: nodeSlot(pg, n, live) };
  }
  let replication: ReplicationSummary | null = null;
  if (pg.primary !== null) {
    replication = live
      ? { source: 'live', from: pg.primary, currentLsn: live.currentLsn, measuredAtMs: live.measuredAtMs, error: null }
      : {
          source: 'reported',
          from: pg.primary,
          currentLsn: null,
          measuredAtMs: null,
          error: i.live === null ? 'not asked (stale read)' : i.live.ok ? null : i.live.error,
        };
  }
  return {
    generation: pg.generation,
    primary: pg.primary,
    lease: pg.lease === null ? null : { ...pg.lease, remainingMs: i.leaseRemainingMs },
    nodes,
    syncStandbys: [...pg.syncStandbys],
    syncQuorum: pg.syncQuorum,
    failoverBlocked: pg.failoverBlocked,
    // The state machine's schedule, with its instant also as ISO 8601 for people.
    scheduledSwitchover: pg.scheduledSwitchover === null ? null : { ...pg.scheduledSwitchover, at: new Date(pg.scheduledSwitchover.notBeforeMs).toISOString() },
    replication,
  };
}

/** This standby's slot on the primary (what it holds back of the WAL); null on the primary or without live figures. */
function nodeSlot(
  pg: PostgresState,
  n: PgNode,
  live: ReplicationAnswer | null,
): { walStatus: string | null; safeWalBytes: number | null; active: boolean } | null {
  if (pg.primary === null || n.node === pg.primary || live === null) return null;
  const s = live.slots.find((x) => x.slot === slotNameFor(n.node));
  return s === undefined ? null : { walStatus: s.walStatus, safeWalBytes: s.safeWalBytes, active: s.active };
}

function nodeReplication(pg: PostgresState, n: PgNode, live: ReplicationAnswer | null): NodeReplication | null {
  if (pg.primary === null || n.node === pg.primary) return null;
  if (live) {
    const row = live.standbys.find((s) => s.standby === n.node);
    if (row) return { source: 'live', state: row.state, syncState: row.syncState, lagBytes: row.lagBytes, lagSeconds: row.lagSeconds };
  }
  return { source: 'reported', state: live ? 'disconnected' : null, syncState: null, lagBytes: reportedLagBytes(pg, n), lagSeconds: null };
}

/** The primary's reported flushed LSN minus this node's reported replayed LSN; null until both have reported. */
export function reportedLagBytes(pg: PostgresState, n: PgNode): number | null {
  const p = pg.primary === null ? undefined : pg.nodes.get(pg.primary);
  if (!p || p.reportedAtMs === null || n.reportedAtMs === null) return null;
  // Reports are taken at different moments: a standby may report a position the
  // primary had not reported yet. That is no lag, not negative lag.
  const diff = lsnDiffBytes(p.lsn.flushed, n.lsn.replayed);
  return diff <= 0n ? 0 : Number(diff);
}
