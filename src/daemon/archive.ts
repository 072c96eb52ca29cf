// The daemon's continuous WAL archive (agent side; docs/pitr.md):
//
//   - On every node, the archive's replication slot (ARCHIVE_SLOT) exists in
//     the local Postgres. A standby advances it only as far as the index says
//     the archive reaches, so a standby promoted tomorrow still holds every
//     byte the archive lacks (I6), within max_slot_wal_keep_size.
//   - On the primary (the index names this node and its Postgres is one),
//     the archiver streams the local WAL through that slot
//     (START_REPLICATION, wal-stream.ts) into the store (archiver.ts), and
//     reports what is stored to the index (wal.archived, about once a second,
//     with the generation it is primary at: a fenced old primary's reports are
//     refused). It resumes where the index says the archive ends, on that
//     timeline, and follows the server's history to the current timeline,
//     archiving each history file: a failover leaves no gap.
//   - WAL the server no longer has (it went before it was archived) is a gap:
//     logged, counted, and the archive starts again where the slot begins; the
//     index then shows two ranges and the backup plan takes a full backup.

import { formatLsn, parseLsn, type ApplyOk, type ClusterStateMachine, type Command, type WalRange } from '../../fsm/index.js';
import { ArchiveConflictError, TimelineArchiver, type Archived } from '../archive/archiver.js';
import { historyKey } from '../archive/layout.js';
import { parseHistory, segmentOf, segmentStart, WAL_SEGMENT_BYTES } from '../archive/segments.js';
import {
  advanceSlot,
  ensurePhysicalSlot,
  identifySystem,
  openReplicationClient,
  timelineHistory,
  walSegmentBytes,
  WalStream,
  WalStreamError,
  type WalConnOptions,
} from '../archive/wal-stream.js';
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import type { PostgresAgent } from '../postgres/agent.js';
import { ARCHIVE_APPLICATION_NAME, ARCHIVE_SLOT } from '../postgres/settings.js';
import type { ArchiveReport } from '../postgres/replication-stats.js';

const TICK_MS = 500;
const REPORT_EVERY_MS = 1000;
const SLOT_ADVANCE_EVERY_MS = 5000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export type ArchiveState = 'off' | 'standby' | 'starting' | 'archiving' | 'retrying' | 'conflict';

/** What this node's archiver reports of itself (the shape the primary's daemon answers with, ArchiveReport). */
export interface ArchiveStatus extends ArchiveReport {
  state: ArchiveState;
}

export interface DaemonArchive {
  status(): ArchiveStatus;
  close(): Promise<void>;
}

export interface ArchiveOptions {
  selfId: string;
  clusterPrefix: string;
  fsm: ClusterStateMachine;
  propose: (cmd: Command) => Promise<ApplyOk>;
  store: ObjectStore;
  agent: () => PostgresAgent | undefined;
  /** The replication connection to this node's own Postgres. */
  conn: () => Omit<WalConnOptions, 'signal'>;
  log: Logger;
}

/** Where the archive resumes: the end of its newest range (highest timeline, then position). */
export function resumePoint(ranges: readonly WalRange[]): { timeline: number; lsn: bigint } | null {
  let best: WalRange | undefined;
  for (const r of ranges) {
    if (best === undefined || r.timeline > best.timeline || (r.timeline === best.timeline && parseLsn(r.endLsn)! > parseLsn(best.endLsn)!)) best = r;
  }
  return best === undefined ? null : { timeline: best.timeline, lsn: parseLsn(best.endLsn)! };
}

export function startArchive(o: ArchiveOptions): DaemonArchive {
  const st: ArchiveStatus = {
    state: 'off',
    timeline: null,
    archivedLsn: null,
    lagMs: null,
    lastError: null,
    gaps: 0,
    conflicts: 0,
    uploadedObjects: 0,
    uploadedBytes: 0,
  };
  let session: { abort: AbortController; done: Promise<void>; archiver: () => TimelineArchiver | undefined } | undefined;
  let retryAtMs = 0;
  let retryMs = RETRY_MIN_MS;
  let lastSlotAdvanceMs = 0;
  let closed = false;
  let busy = false;

  const amPrimary = (): boolean => {
    const a = o.agent();
    return a !== undefined && o.fsm.state.postgres.primary === o.selfId && a.agentStatus().observed === 'primary' && a.agentStatus().running;
  };

  const tick = async (): Promise<void> => {
    if (busy || closed) return;
    busy = true;
    try {
      const inst = o.agent()?.postgres;
      if (!inst?.isRunning()) {
        if (session) await stopSession();
        st.state = 'off';
        return;
      }
      await ensurePhysicalSlot(inst, ARCHIVE_SLOT);
      await renewLostSlot(o, inst, session !== undefined);
      if (amPrimary()) {
        if (session === undefined && Date.now() >= retryAtMs) startSession();
        return;
      }
      if (session) await stopSession();
      st.state = 'standby';
      st.lagMs = null;
      if (Date.now() - lastSlotAdvanceMs >= SLOT_ADVANCE_EVERY_MS) {
        lastSlotAdvanceMs = Date.now();
        await advanceStandbySlot(o, inst);
      }
    } catch (e) {
      // The next tick tries again: a Postgres restarting, a clone in progress.
      o.log({ level: 'debug', msg: 'archive slot upkeep failed', error: (e as Error).message });
    } finally {
      busy = false;
    }
  };

  const stopSession = async (): Promise<void> => {
    const s = session;
    if (!s) return;
    s.abort.abort(new Error('this node is no longer the primary'));
    await s.done;
  };

  const startSession = (): void => {
    const abort = new AbortController();
    let current: TimelineArchiver | undefined;
    st.state = 'starting';
    // A clean stop of Postgres (a switchover, a re-clone, the daemon stopping) waits for
    // this stream to confirm everything it was sent: let go at once. The WAL not stored
    // stays in the slots (here, and on the standby that takes over) and is archived from there.
    const inst = o.agent()?.postgres;
    const onStopping = () => abort.abort(new Error('Postgres is stopping'));
    inst?.once('stopping', onStopping);
    const done = runSession(abort.signal, (a) => (current = a))
      .then(() => {
        retryMs = RETRY_MIN_MS;
      })
      .catch((e: unknown) => {
        if (abort.signal.aborted) return;
        const err = e as Error;
        st.lastError = err.message;
        if (err instanceof ArchiveConflictError) {
          st.conflicts++;
          st.state = 'conflict';
          o.log({ level: 'error', msg: 'WAL archive CONFLICT: archiving stopped; the archived copy is kept', error: err.message });
          retryMs = RETRY_MAX_MS * 6;
        } else {
          st.state = 'retrying';
          o.log({ level: 'warn', msg: 'WAL archiving stopped; it resumes from the last stored position', error: err.message, retryInMs: retryMs });
        }
        retryAtMs = Date.now() + retryMs;
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
      })
      .finally(() => {
        inst?.off('stopping', onStopping);
        session = undefined;
        current = undefined;
      });
    session = { abort, done, archiver: () => current };
  };

  const runSession = async (signal: AbortSignal, setArchiver: (a: TimelineArchiver) => void): Promise<void> => {
    const generation = o.fsm.state.postgres.generation;
    const conn = { ...o.conn(), signal };
    const client = await openReplicationClient(conn);
    let sys: Awaited<ReturnType<typeof identifySystem>>;
    let start: { timeline: number; lsn: bigint };
    let begin = 0n;
    try {
      const segBytes = await walSegmentBytes(client);
      if (segBytes !== WAL_SEGMENT_BYTES)
        throw new Error(`the server's wal_segment_size is ${segBytes} bytes; the archive handles ${WAL_SEGMENT_BYTES}-byte segments only`);
      sys = await identifySystem(client);
      begin = sys.timeline >= 2 ? (parseHistory((await timelineHistory(client, sys.timeline)).content.toString('utf8')).at(-1)?.switchLsn ?? 0n) : 0n;
      start = await startPoint(o, client, sys.timeline, begin);
    } finally {
      await client.end().catch(() => {});
    }
    st.state = 'archiving';
    st.lastError = null;
    for (;;) {
      signal.throwIfAborted();
      if (start.timeline >= 2) await archiveHistory(o, start.timeline, generation, signal);
      const opened = await openStream(start, conn);
      if (opened === 'gap') {
        start = await afterGap(o, st, sys.timeline, begin, start);
        continue;
      }
      st.timeline = start.timeline;
      // The slot lets WAL go only once the index has it: a restart resumes from the index's end.
      let stream: WalStream | undefined;
      const reporter = new IndexReporter(o, generation, start.lsn, (lsn) => stream?.confirm(lsn));
      const archiver = new TimelineArchiver({
        store: o.store,
        clusterPrefix: o.clusterPrefix,
        timeline: start.timeline,
        startLsn: start.lsn,
        logger: o.log,
        onArchived: (a) => {
          // Storing works again: the next failure starts its backoff from the minimum.
          retryMs = RETRY_MIN_MS;
          st.archivedLsn = formatLsn(a.endLsn);
          st.uploadedObjects = archiver.stats.objects;
          st.uploadedBytes = archiver.stats.storedBytes;
          reporter.stored(a);
        },
      });
      setArchiver(archiver);
      let outcome: Awaited<ReturnType<TimelineArchiver['run']>>;
      try {
        stream = opened;
        outcome = await archiver
          .run(opened, () => {})
          .finally(async () => {
            await reporter.close();
            await opened.close();
          });
      } catch (e) {
        // The server says "already removed" once streaming has begun, not when it starts.
        if (e instanceof WalStreamError && e.reason === 'wal-removed' && archiver.position === start.lsn) {
          start = await afterGap(o, st, sys.timeline, begin, start);
          continue;
        }
        throw e;
      }
      if (outcome.kind === 'closed') return;
      o.log({
        level: 'info',
        msg: 'WAL archive: timeline ended, following the next',
        timeline: start.timeline,
        next: outcome.nextTimeline,
        at: formatLsn(outcome.nextStartLsn),
      });
      start = { timeline: outcome.nextTimeline, lsn: segmentStart(segmentOf(outcome.nextStartLsn)) };
    }
  };

  const timer = setInterval(() => void tick(), TICK_MS);
  timer.unref();
  return {
    status: () => ({ ...st, lagMs: session?.archiver()?.lagMs() ?? (st.state === 'archiving' ? 0 : null) }),
    close: async () => {
      closed = true;
      clearInterval(timer);
      await stopSession();
    },
  };
}

/** Where to resume: the index's end (within the server's history), else where the slot begins. */
async function startPoint(
  o: ArchiveOptions,
  client: Awaited<ReturnType<typeof openReplicationClient>>,
  current: number,
  begin: bigint,
): Promise<{ timeline: number; lsn: bigint }> {
  const at = resumePoint(o.fsm.state.walArchive.ranges);
  if (at === null || at.timeline > current) return slotStart(o, current, begin);
  let lsn = at.lsn;
  if (at.timeline < current) {
    // WAL archived past the point this server's history left that timeline was never part of it.
    const h = parseHistory((await timelineHistory(client, current)).content.toString('utf8'));
    const sw = h.find((e) => e.timeline === at.timeline)?.switchLsn;
    if (sw === undefined) return slotStart(o, current, begin);
    if (sw < lsn) lsn = sw;
  }
  return { timeline: at.timeline, lsn: segmentStart(segmentOf(lsn)) };
}

/**
 * Where the slot begins, on the current timeline: a slot made again right after
 * a promotion reserves from the last restartpoint, which can lie before this
 * timeline began, and the server has no file of this timeline for that segment.
 */
async function slotStart(o: ArchiveOptions, timeline: number, begin: bigint): Promise<{ timeline: number; lsn: bigint }> {
  const inst = o.agent()?.postgres;
  if (!inst) throw new Error('Postgres is not running here');
  const r = await inst.query<{ l: string | null }>('SELECT restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [ARCHIVE_SLOT]);
  const l = parseLsn(r.rows[0]?.l ?? '');
  if (l === null) throw new Error(`the archive's replication slot ${ARCHIVE_SLOT} has no WAL reserved`);
  return { timeline, lsn: segmentStart(segmentOf(l > begin ? l : begin)) };
}

async function afterGap(
  o: ArchiveOptions,
  st: ArchiveStatus,
  timeline: number,
  begin: bigint,
  failed: { timeline: number; lsn: bigint },
): Promise<{ timeline: number; lsn: bigint }> {
  const at = await slotStart(o, timeline, begin);
  // The same start again would fail the same way at once: let the session's backoff take it.
  if (at.timeline === failed.timeline && at.lsn === failed.lsn) {
    throw new Error(`the server no longer has WAL from ${formatLsn(at.lsn)} on timeline ${timeline}, where the archive slot begins`);
  }
  st.gaps++;
  o.log({
    level: 'error',
    msg: 'WAL archive GAP: the server no longer has WAL the archive lacks; archiving starts again where the slot begins, and a full backup is due',
    timeline,
    resumeAt: formatLsn(at.lsn),
  });
  return at;
}

async function openStream(start: { timeline: number; lsn: bigint }, conn: WalConnOptions): Promise<WalStream | 'gap'> {
  try {
    return await WalStream.open({ ...conn, slot: ARCHIVE_SLOT, timeline: start.timeline, startLsn: start.lsn, applicationName: ARCHIVE_APPLICATION_NAME });
  } catch (e) {
    if (e instanceof WalStreamError && e.reason === 'wal-removed') return 'gap';
    throw e;
  }
}

async function archiveHistory(o: ArchiveOptions, timeline: number, generation: number, signal: AbortSignal): Promise<void> {
  if (o.fsm.state.walArchive.historyTimelines.includes(timeline)) return;
  const client = await openReplicationClient({ ...o.conn(), signal });
  try {
    const h = await timelineHistory(client, timeline);
    await o.store.putIfAbsent(historyKey(o.clusterPrefix, timeline), h.content, createHash('sha256').update(h.content).digest('hex'));
  } finally {
    await client.end().catch(() => {});
  }
  await o.propose({ v: 7, type: 'wal.history', atMs: Date.now(), generation, timeline } as Command);
  o.log({ level: 'info', msg: 'WAL archive: history file stored', timeline });
}

/** A standby's archive slot follows the index: never past what the archive holds (the server also caps it at what was replayed), and never backwards (the server refuses, loudly). */
async function advanceStandbySlot(o: ArchiveOptions, inst: NonNullable<PostgresAgent['postgres']>): Promise<void> {
  const at = resumePoint(o.fsm.state.walArchive.ranges);
  const r = await inst.query<{ l: string | null }>('SELECT restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [ARCHIVE_SLOT]);
  const slotAt = parseLsn(r.rows[0]?.l ?? '');
  if (at !== null && slotAt !== null && segmentStart(segmentOf(at.lsn)) > slotAt) await advanceSlot(inst, ARCHIVE_SLOT, segmentStart(segmentOf(at.lsn)));
}

/**
 * A slot that went past max_slot_wal_keep_size is invalidated: Postgres let the
 * WAL go (rather than fill the disk) and refuses to stream from the slot. The WAL
 * is gone; a new slot keeps what is here now, and the stream that follows hits
 * the gap (wal-removed) and goes on from the new slot's start.
 */
async function renewLostSlot(o: ArchiveOptions, inst: NonNullable<PostgresAgent['postgres']>, streaming: boolean): Promise<void> {
  if (streaming) return;
  const r = await inst.query<{ wal_status: string | null; active: boolean }>('SELECT wal_status, active FROM pg_replication_slots WHERE slot_name = $1', [
    ARCHIVE_SLOT,
  ]);
  const row = r.rows[0];
  if (row === undefined || row.wal_status !== 'lost' || row.active) return;
  o.log({
    level: 'error',
    msg: "the archive's replication slot lost WAL the archive did not have (past max_slot_wal_keep_size): it is made again; the archive has a gap, and a full backup closes it",
    slot: ARCHIVE_SLOT,
  });
  await inst.query('SELECT pg_drop_replication_slot($1)', [ARCHIVE_SLOT]);
  await ensurePhysicalSlot(inst, ARCHIVE_SLOT);
}

/**
 * Tells the index what is stored (wal.archived, about once a second and once
 * more at the end), and only then confirms it to the server: the slot keeps
 * WAL until the index has it, so a restart that resumes from the index's end
 * never finds it gone. Each report covers only what is new since the last
 * one: a report reaching back could undo a retention trim. A refused or failed
 * report is kept and sent again.
 */
class IndexReporter {
  private reportedEnd: bigint;
  private pending: Archived | undefined;
  private lastMs = 0;
  private busy: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly o: ArchiveOptions,
    private readonly generation: number,
    start: bigint,
    private readonly confirm: (lsn: bigint) => void,
  ) {
    this.reportedEnd = start;
    this.timer = setInterval(() => void this.flush(), REPORT_EVERY_MS);
  }

  stored(a: Archived): void {
    this.pending = a;
    if (Date.now() - this.lastMs >= REPORT_EVERY_MS) void this.flush();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
    await this.flush();
  }

  private flush(): Promise<void> {
    if (this.busy !== undefined) return this.busy;
    const a = this.pending;
    if (a === undefined) return Promise.resolve();
    this.lastMs = Date.now();
    this.busy = (async () => {
      try {
        await this.o.propose({
          v: 7,
          type: 'wal.archived',
          atMs: a.atMs,
          generation: this.generation,
          timeline: a.timeline,
          startLsn: formatLsn(this.reportedEnd),
          endLsn: formatLsn(a.endLsn),
        } as Command);
        this.reportedEnd = a.endLsn;
        if (this.pending === a) this.pending = undefined;
        try {
          this.confirm(a.endLsn);
        } catch {
          // the stream is closed: the next session's stream confirms from the index's end
        }
      } catch (e) {
        this.o.log({ level: 'warn', msg: 'could not record archived WAL in the index; it is tried again', error: (e as Error).message });
      } finally {
        this.busy = undefined;
      }
    })();
    return this.busy;
  }
}
