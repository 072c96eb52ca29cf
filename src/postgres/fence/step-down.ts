// A planned switchover, the old primary's half (docs/postgres-failover.md): an
// RPC from the leader. It hands the one-writer role over without a moment with
// two writers (I3) and without losing an acknowledged commit (I4): refuse new
// writes, drain, end the client sessions, wait for the target to flush the
// last WAL byte, shut down cleanly, and only then release the lease. The
// lease keeper is told at each step (beginStepDown, released, endStepDown).

import type { Lsn } from '../../../fsm/index.js';
import { AgentError, type AgentContext } from '../agent-context.js';
import type { PostgresInstance } from '../instance.js';
import type { LeaseKeeper } from './lease-keeper.js';

const ZERO_LSN = '0/0' as Lsn;
/** How long a switchover waits for the target to flush the old primary's last WAL. */
export const SWITCHOVER_CATCH_UP_MS = 10_000;
/**
 * How long a switchover lets transactions that began before writes were
 * refused finish before their sessions are ended. Short transactions finish in
 * milliseconds, so the usual drain costs nothing; a longer one is cut off (its
 * client gets an error) rather than stretch the write pause past the
 * switchover goal.
 */
export const SWITCHOVER_DRAIN_MAX_MS = 1000;
/** The drain ends this long before the lease's fence deadline: ending the sessions that remain takes a few ms here. */
const DRAIN_LEASE_RESERVE_MS = 50;
const DRAIN_POLL_MS = 2;

/** What the old primary did for a switchover (stepDownForSwitchover). */
export interface StepDownResult {
  generation: number;
  to: string;
  /** pg_current_wal_lsn() once no client session was left (after the drain): the target flushed at least this much. */
  lastLsn: string;
  targetFlushedLsn: string;
  /** Phases, in ms on this node's clock. readOnlyMs: refusing new sessions and writes, then (after the drain) ending client sessions. */
  readOnlyMs: number;
  /** Waiting for transactions begun before writes were refused (at most SWITCHOVER_DRAIN_MAX_MS). */
  drainMs: number;
  catchUpMs: number;
  shutdownMs: number;
  releaseMs: number;
}

/**
 * The old primary's half of a switchover (docs/postgres-failover.md), called by
 * the leader: refuse new writes, let the transactions already open finish
 * (the drain, bounded), end every client session, wait until the target has
 * flushed every WAL byte written so far (so no acknowledged commit can be
 * lost, I4), shut down cleanly (the walsenders ship the shutdown checkpoint,
 * so this node can follow the target afterwards without a re-clone), then
 * release the lease. The leader promotes the target once the release has
 * committed. Any failure before the release leaves this node the primary: the
 * next pass restarts and unfences it.
 */
export async function stepDownForSwitchover(
  ctx: AgentContext,
  keeper: LeaseKeeper,
  generation: number,
  to: string,
  opts: { catchUpTimeoutMs?: number; drainMaxMs?: number } = {},
): Promise<StepDownResult> {
  const s = ctx.state();
  if (generation !== s.postgres.generation)
    throw new AgentError(`stale switchover request: generation ${generation}, the current generation is ${s.postgres.generation}`);
  if (!keeper.holdsLease(s))
    throw new AgentError(`${ctx.nodeId} does not hold the lease of generation ${generation}; the primary is ${s.postgres.primary ?? 'none'}`);
  if (to === ctx.nodeId || !s.postgres.nodes.has(to)) throw new AgentError(`switchover target ${JSON.stringify(to)} is not another member`);
  if (keeper.steppingDown !== undefined)
    throw new AgentError(`a switchover step-down of generation ${keeper.steppingDown} is already running on ${ctx.nodeId}`);
  const inst = ctx.instance();
  if (!inst?.isRunning() || ctx.observed() !== 'primary') throw new AgentError(`postgres on ${ctx.nodeId} is not running as the primary`);
  const catchUpTimeoutMs = opts.catchUpTimeoutMs ?? SWITCHOVER_CATCH_UP_MS;
  const drainMaxMs = opts.drainMaxMs ?? SWITCHOVER_DRAIN_MAX_MS;
  // A checkpoint while writes still flow makes the clean shutdown's own
  // checkpoint (inside the write pause) short.
  await inst.query('CHECKPOINT', [], { timeoutMs: 60_000 });
  // Marked fenced before the fence itself (see beginStepDown): the lease loop
  // keeps renewing through the drain instead of queueing behind this step-down
  // on the server lock.
  keeper.beginStepDown(generation);
  try {
    return await ctx.serverLock.run(async () => {
      const t0 = ctx.now();
      const { sinceTs } = await inst.refuseNewWrites();
      ctx.counters.fences++;
      const t1 = ctx.now();
      const left = await drainWriters(ctx, keeper, inst, sinceTs, t1 + drainMaxMs);
      const t2 = ctx.now();
      const { terminated } = await inst.endClientSessions();
      const t3 = ctx.now();
      // Read once no client session is left (and none can connect): every
      // commit this server acknowledged, the drained ones included, is at or
      // before this LSN, so the catch-up below covers them all (I4).
      const last = (await inst.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      const targetFlushed = await waitForTargetFlush(ctx, inst, to, last, catchUpTimeoutMs);
      const t4 = ctx.now();
      await inst.stop('fast');
      ctx.setObserved('stopped');
      const t5 = ctx.now();
      const r = await ctx.proposeAndSync({ v: 1, type: 'lease.release', holder: ctx.nodeId, generation, atMs: Date.now() });
      if (!r.ok) throw new AgentError(`switchover: lease.release refused: ${r.error.message}; ${ctx.nodeId} restarts as the primary`);
      const t6 = ctx.now();
      keeper.released(generation);
      ctx.log({
        level: 'info',
        msg: 'stepped down for a switchover',
        node: ctx.nodeId,
        to,
        generation,
        lastLsn: last,
        drainMs: Math.round(t2 - t1),
        undrained: left,
        terminated,
        shutdownMs: Math.round(t5 - t4),
      });
      return {
        generation,
        to,
        lastLsn: last,
        targetFlushedLsn: targetFlushed,
        readOnlyMs: Math.round(t1 - t0 + (t3 - t2)),
        drainMs: Math.round(t2 - t1),
        catchUpMs: Math.round(t4 - t3),
        shutdownMs: Math.round(t5 - t4),
        releaseMs: Math.round(t6 - t5),
      };
    });
  } finally {
    keeper.endStepDown();
    ctx.poke();
  }
}

/**
 * The switchover's drain: waits until no client transaction that may write is
 * open (writersSince), until `deadlineMs`, and never past the lease's fence
 * deadline (less the time ending the sessions takes): the server takes writes
 * until endClientSessions, and must not once the lease may lapse (I5).
 * Returns how many such transactions were still open (endClientSessions ends
 * them).
 */
async function drainWriters(ctx: AgentContext, keeper: LeaseKeeper, inst: PostgresInstance, sinceTs: string, deadlineMs: number): Promise<number> {
  for (;;) {
    const open = await inst.writersSince(sinceTs);
    if (open === 0) return 0;
    const leaseLeftMs = keeper.remainingMs() ?? Number.NEGATIVE_INFINITY;
    if (ctx.now() >= deadlineMs || leaseLeftMs <= DRAIN_LEASE_RESERVE_MS) return open;
    await new Promise((res) => setTimeout(res, DRAIN_POLL_MS));
  }
}

/** Polls pg_stat_replication until `to` has flushed `lsn`; returns its flushed LSN. Throws after timeoutMs. */
async function waitForTargetFlush(ctx: AgentContext, inst: PostgresInstance, to: string, lsn: string, timeoutMs: number): Promise<string> {
  const t0 = ctx.now();
  let flushed = ZERO_LSN as string;
  for (;;) {
    const r = await inst.query<{ ok: boolean; flushed: string | null }>(
      'SELECT flush_lsn >= $1::pg_lsn AS ok, flush_lsn::text AS flushed FROM pg_stat_replication WHERE application_name = $2 ORDER BY flush_lsn DESC NULLS LAST LIMIT 1',
      [lsn, to],
    );
    flushed = r.rows[0]?.flushed ?? flushed;
    if (r.rows[0]?.ok === true) return flushed;
    if (ctx.now() - t0 > timeoutMs) {
      throw new AgentError(
        `switchover: ${to} has flushed ${r.rows[0] ? flushed : 'nothing (it is not streaming from ' + ctx.nodeId + ')'}, not ${lsn}, ${timeoutMs} ms after writes stopped; ${ctx.nodeId} stays the primary`,
      );
    }
    await new Promise((res) => setTimeout(res, 2));
  }
}
