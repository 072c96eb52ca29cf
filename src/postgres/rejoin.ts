// Can this data directory follow that primary, or has it diverged? There is no
// pg_rewind here (design.md), so a node whose WAL went past the point where the
// primary's timeline forked off must be re-cloned; one that did not can simply
// stream. Postgres applies the same rule when it refuses to follow: "new timeline
// N forked off current database system timeline M before current recovery point"
// (xlogrecovery.c, rescanLatestTimeLine: switchpoint < lastReplayedEndRecPtr).
//
// The local side comes from the node itself, started as a standby with no
// upstream: once its startup process has replayed every local WAL record and
// waits for more, pg_last_wal_replay_lsn() is the end of its WAL, and the newest
// timeline in pg_wal/ is the one it is on. The upstream side comes over the
// replication protocol: IDENTIFY_SYSTEM (system id, timeline) and
// TIMELINE_HISTORY (where each earlier timeline ended).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { compareLsn, maxLsn, normalizeLsn, type Lsn } from '../../fsm/index.js';
import type { ReplicationConn } from './basebackup.js';
import type { PostgresInstance } from './instance.js';
import { connectReplication } from './standby.js';

export class RejoinError extends Error {
  override name = 'RejoinError';
}

/** One line of a timeline history file: timeline `timeline` ended at `switchpoint`. */
export interface TimelineSwitch {
  timeline: number;
  switchpoint: Lsn;
}

export interface UpstreamTimeline {
  systemId: string;
  timeline: number;
  /** How the upstream's timeline came about, oldest first; empty on timeline 1. */
  history: TimelineSwitch[];
}

export interface LocalWalEnd {
  systemId: string;
  /** The newest timeline in pg_wal/ (segments and history files). */
  timeline: number;
  /** The end of the last WAL record replayed (every local record, once replay waits). */
  endLsn: Lsn;
}

export type DivergenceVerdict = { diverged: false } | { diverged: true; reason: string };

const HISTORY_MAX_BYTES = 1 << 20;
const SEGMENT = /^([0-9A-F]{8})[0-9A-F]{16}(\.partial)?$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;

/** Parses a timeline history file (`parentTLI<TAB>switchpoint<TAB>reason` lines, `#` comments). */
export function parseTimelineHistory(text: string): TimelineSwitch[] {
  if (text.length > HISTORY_MAX_BYTES) throw new RejoinError(`timeline history of ${text.length} bytes is larger than ${HISTORY_MAX_BYTES}`);
  const out: TimelineSwitch[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [tliText, lsnText] = line.split(/\s+/);
    const timeline = Number(tliText);
    const switchpoint = normalizeLsn(lsnText ?? '');
    if (!Number.isInteger(timeline) || timeline < 1 || switchpoint === null)
      throw new RejoinError(`timeline history: cannot parse line ${JSON.stringify(line.slice(0, 100))}`);
    const prev = out[out.length - 1];
    if (prev && (timeline <= prev.timeline || compareLsn(switchpoint, prev.switchpoint) < 0)) {
      throw new RejoinError(`timeline history: line ${JSON.stringify(line.slice(0, 100))} goes backwards`);
    }
    out.push({ timeline, switchpoint });
  }
  return out;
}

/**
 * The rule Postgres applies: a node on timeline L whose WAL ends at E can follow
 * an upstream on timeline U >= L only if U's history says L ended at or after E
 * (or L = U). Anything else means the node holds WAL the upstream never had.
 */
export function divergence(local: LocalWalEnd, upstream: UpstreamTimeline): DivergenceVerdict {
  if (local.systemId !== upstream.systemId) {
    return { diverged: true, reason: `it belongs to another database system (system id ${local.systemId}, the primary's is ${upstream.systemId})` };
  }
  if (local.timeline === upstream.timeline) return { diverged: false };
  if (local.timeline > upstream.timeline) {
    return { diverged: true, reason: `it is on timeline ${local.timeline}, newer than the primary's ${upstream.timeline}` };
  }
  const entry = upstream.history.find((h) => h.timeline === local.timeline);
  if (!entry) return { diverged: true, reason: `timeline ${local.timeline} is not in the history of the primary's timeline ${upstream.timeline}` };
  if (compareLsn(local.endLsn, entry.switchpoint) > 0) {
    return {
      diverged: true,
      reason: `its WAL ends at ${local.endLsn} on timeline ${local.timeline}, past ${entry.switchpoint} where the primary's timeline ${entry.timeline + 1} forked off`,
    };
  }
  return { diverged: false };
}

/** IDENTIFY_SYSTEM and TIMELINE_HISTORY on a replication connection to the upstream. */
export async function upstreamTimeline(conn: ReplicationConn, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<UpstreamTimeline> {
  const client = await connectReplication(conn, opts);
  try {
    const id = (await client.query<{ systemid: string; timeline: string | number }>('IDENTIFY_SYSTEM')).rows[0];
    if (!id) throw new RejoinError('IDENTIFY_SYSTEM returned no row');
    const timeline = Number(id.timeline);
    if (!Number.isInteger(timeline) || timeline < 1) throw new RejoinError(`IDENTIFY_SYSTEM returned timeline ${String(id.timeline)}`);
    if (timeline === 1) return { systemId: String(id.systemid), timeline, history: [] };
    const h = (await client.query<{ filename: string; content: Buffer | string }>(`TIMELINE_HISTORY ${timeline}`)).rows[0];
    if (!h) throw new RejoinError(`TIMELINE_HISTORY ${timeline} returned no row`);
    const text = Buffer.isBuffer(h.content) ? h.content.toString('utf8') : String(h.content);
    return { systemId: String(id.systemid), timeline, history: parseTimelineHistory(text) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** The newest timeline among the WAL segments and history files in `dataDir`/pg_wal (0 when there are none). */
export function newestLocalTimeline(dataDir: string): number {
  let newest = 0;
  for (const name of readdirSync(join(dataDir, 'pg_wal'))) {
    const m = SEGMENT.exec(name) ?? HISTORY.exec(name);
    if (m) newest = Math.max(newest, parseInt(m[1]!, 16));
  }
  return newest;
}

/**
 * Where the local WAL ends, on a server started as a standby with no upstream:
 * waits until the startup process has replayed all local WAL and is waiting for
 * more (its wait event), and the replay position is stable across two polls.
 */
export async function localWalEnd(inst: PostgresInstance, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<LocalWalEnd> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pollMs = opts.pollMs ?? 50;
  const t0 = performance.now();
  let previous: string | undefined;
  for (;;) {
    const r = await inst.query<{ in_recovery: boolean; wait_event: string | null; replayed: string | null; received: string | null; system_id: string }>(
      `SELECT pg_is_in_recovery() AS in_recovery,
              (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup') AS wait_event,
              pg_last_wal_replay_lsn()::text AS replayed, pg_last_wal_receive_lsn()::text AS received,
              (SELECT system_identifier::text FROM pg_control_system()) AS system_id`,
    );
    const row = r.rows[0];
    if (!row?.in_recovery) throw new RejoinError(`${inst.dataDir} is not in recovery: start it as a standby before measuring its WAL`);
    // Waiting for WAL from a source: every local record has been replayed.
    const waiting = row.wait_event === 'RecoveryRetrieveRetryInterval' || row.wait_event === 'RecoveryWalStream';
    const replayed = normalizeLsn(row.replayed ?? '');
    if (waiting && replayed !== null && previous === replayed) {
      const received = normalizeLsn(row.received ?? '');
      return { systemId: row.system_id, timeline: newestLocalTimeline(inst.dataDir), endLsn: received ? maxLsn(replayed, received) : replayed };
    }
    previous = waiting && replayed !== null ? replayed : undefined;
    if (performance.now() - t0 > timeoutMs) {
      throw new RejoinError(
        `${inst.dataDir}: replay of the local WAL did not finish within ${timeoutMs} ms (startup process waits on ${row.wait_event ?? 'nothing'}, replayed up to ${row.replayed ?? 'nothing'})`,
      );
    }
    await new Promise((res) => setTimeout(res, pollMs));
  }
}
