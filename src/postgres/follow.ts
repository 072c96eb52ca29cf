// A standby following the primary: repoint to the primary of the current
// generation, the rejoin check of a former primary (rejoin.ts: follow if its
// WAL did not go past the fork point, else re-clone), recovery from repoints
// that do not end streaming, and the failover's receiver stop (I4), which
// holds the standby off its old primary until the failover ends or is called off.

import { rmSync, writeFileSync } from 'node:fs';
import type { ClusterState } from '../../fsm/index.js';
import { replicationPassword } from '../auth/passwords.js';
import { parseHostPort } from '../config/index.js';
import { AgentError, type AgentContext } from './agent-context.js';
import type { PgStatus, PostgresInstance } from './instance.js';
import { divergence, localWalEnd, upstreamTimeline } from './rejoin.js';
import { REPLICATION_ROLE, slotNameFor } from './settings.js';
import { readWalPositions, repointStandby, StandbyError, stopWalReceiver } from './standby.js';
import { memberAddress } from '../member-address.js';

/** Repoints in a row with no WAL receiver before a standby's Postgres is restarted (each waits up to 10 s). */
const REPOINTS_BEFORE_RESTART = 3;
/** The walreceiver's error when the primary has recycled the WAL it asks for. */
const WAL_REMOVED = /requested WAL segment \S+ has already been removed/;
/** Log lines of a WAL receiver that started and failed (so Postgres does try); not our own stop ("due to administrator command"). */
const RECEIVER_TRIED =
  /could not connect to the primary server|could not start WAL streaming|could not receive data from WAL stream|started streaming WAL|terminating walreceiver due to timeout/i;
const LOCAL_WAL_END_TIMEOUT_MS = 60_000;

/**
 * Sibling marker file, outside the data dir (a base backup taken from this node
 * must not carry it, and Postgres's OS user could not read a root-owned file
 * there): the rejoin (divergence) check is pending.
 */
export function rejoinMarker(dataDir: string): string {
  return `${dataDir}.rejoin`;
}

export class Follower {
  /** The generation whose primary we stopped streaming from for a failover. */
  private receiverStoppedFor: { generation: number; renewalSeq: number } | undefined;
  /** Repoints in a row that ended with no WAL receiver (restartIfNoReceiver). */
  private failedRepoints = 0;
  /**
   * Aborted by a failover's fence request: a follow step holds the server lock
   * while it talks to the primary (its slot, its timeline, the wait for
   * streaming), and a primary that has just become unreachable would hold the
   * fence behind it for the connect timeout and more. The leader then counts
   * this standby as unreachable and, when the latest commit may be only here,
   * refuses to fail over at all. The step gives way; it runs again later.
   */
  private preempt = new AbortController();

  constructor(private readonly ctx: AgentContext) {}

  /** Asks the cluster to re-clone this node (pg.setRole recloning); the reconcile loop then does it. */
  private async markRecloning(generation: number): Promise<void> {
    const r = await this.ctx.proposeAndSync({ v: 1, type: 'pg.setRole', node: this.ctx.nodeId, role: 'recloning', generation, atMs: Date.now() });
    if (!r.ok) throw new AgentError(`pg.setRole recloning for ${this.ctx.nodeId} refused: ${r.error.message}`);
  }

  /**
   * A standby follows the primary of the current generation. After the failover
   * controller stopped our receiver for generation g, we do not stream again until
   * the state machine names the primary of a later generation, or the failover
   * was called off: the primary of g committed a renewal after the stop. Streaming
   * again is then safe (I4): a promotion decided on our stopped LSN names the
   * renewal it saw lapse, so the state machine refuses it after that newer
   * renewal (stale_renewal), and a new decision stops our receiver again first.
   */
  async followPrimary(inst: PostgresInstance, st: PgStatus, s: ClusterState): Promise<void> {
    const primary = s.postgres.primary;
    if (primary === null || primary === this.ctx.nodeId) return;
    const stopped = this.receiverStoppedFor;
    if (stopped !== undefined && s.postgres.generation <= stopped.generation) {
      const lease = s.postgres.lease;
      const calledOff =
        s.postgres.generation === stopped.generation && lease !== null && lease.generation === stopped.generation && lease.renewalSeq > stopped.renewalSeq;
      if (!calledOff) return;
      this.ctx.log({
        level: 'info',
        msg: 'failover called off (the primary renewed its lease): streaming again',
        node: this.ctx.nodeId,
        primary,
        generation: stopped.generation,
        renewalSeq: lease!.renewalSeq,
      });
      this.receiverStoppedFor = undefined;
    }
    const addrText = memberAddress(s, this.ctx.config, primary, 'postgres');
    if (addrText === undefined) return;
    const addr = parseHostPort(addrText);
    if (!addr.ok) return;
    const r = st.walReceiver;
    if (r && r.senderPort === addr.port && (r.senderHost === addr.host || r.senderHost === undefined)) return;
    if (s.postgres.nodes.get(primary)?.reportedRole !== 'primary') return; // not promoted yet
    const signal = this.preempt.signal; // taken before the lock: a fence asked meanwhile preempts this step too
    await this.ctx.serverLock.run(async () => {
      signal.throwIfAborted();
      await countAsStandby(this.ctx, s);
      const mark = inst.logMark;
      let ms: number;
      try {
        ({ ms } = await repointStandby(
          inst,
          { host: addr.host, port: addr.port, user: REPLICATION_ROLE, password: replicationPassword(this.ctx.config), applicationName: this.ctx.nodeId },
          slotNameFor(this.ctx.nodeId),
          { timeoutMs: 10_000, signal },
        ));
      } catch (err) {
        // Not streaming: the usual cause is WAL past the new timeline's fork point
        // (Postgres refuses to follow). Stop the receiver and run the rejoin check.
        if (err instanceof StandbyError && inst.isRunning()) {
          await stopWalReceiver(inst);
          writeFileSync(rejoinMarker(this.ctx.dataDir), `${s.postgres.generation}\n`);
          await this.afterFailedRepoint(inst, err, mark, s);
        }
        throw err;
      }
      this.failedRepoints = 0;
      this.receiverStoppedFor = undefined;
      this.ctx.log({
        level: 'info',
        msg: 'following the new primary',
        node: this.ctx.nodeId,
        primary,
        generation: s.postgres.generation,
        repointMs: Math.round(ms),
      });
    });
  }

  /**
   * A repoint did not end streaming (under pgLock). The WAL it needs gone from
   * the primary: re-clone. No WAL receiver at all, repeatedly: restart.
   */
  private async afterFailedRepoint(inst: PostgresInstance, err: StandbyError, logMark: number, s: ClusterState): Promise<void> {
    const removed = inst.logSince(logMark).find((l) => WAL_REMOVED.test(l));
    if (removed !== undefined) {
      // The primary no longer has the WAL this standby needs next (no slot held it:
      // a new primary has none for a node that was cut off when it was promoted).
      // Streaming can never resume; a fresh copy can. It is a standby: nothing of
      // the cluster's is lost.
      this.failedRepoints = 0;
      this.ctx.log({
        level: 'warn',
        msg: 'the primary no longer has the WAL this standby needs: re-cloning',
        node: this.ctx.nodeId,
        primary: s.postgres.primary,
        line: removed,
      });
      await this.markRecloning(s.postgres.generation);
      return;
    }
    await this.restartIfNoReceiver(inst, err, logMark);
  }

  /**
   * A standby whose repoints keep ending with no WAL receiver at all (seen once
   * under jepsen's slow-link: for over a minute Postgres started none, with
   * primary_conninfo set and the primary reachable) is restarted: a fresh
   * startup process starts streaming, or says why. It is a standby, so nothing
   * is lost; the rejoin check runs again before it follows. A receiver that
   * tried and failed (the primary unreachable, a slot in use) logs so; then
   * there is nothing a restart would mend. Called under pgLock.
   */
  private async restartIfNoReceiver(inst: PostgresInstance, err: StandbyError, logMark: number): Promise<void> {
    if (!/no WAL receiver/.test(err.message)) return;
    if (inst.logSince(logMark).some((l) => RECEIVER_TRIED.test(l))) {
      this.failedRepoints = 0;
      return;
    }
    this.failedRepoints++;
    if (this.failedRepoints < REPOINTS_BEFORE_RESTART || !inst.isRunning()) return;
    this.failedRepoints = 0;
    this.ctx.log({
      level: 'warn',
      msg: `no WAL receiver started after ${REPOINTS_BEFORE_RESTART} repoints: restarting the standby's Postgres`,
      node: this.ctx.nodeId,
      error: err.message,
    });
    writeFileSync(rejoinMarker(this.ctx.dataDir), `${this.ctx.state().postgres.generation}\n`);
    await inst.stop('fast');
    this.ctx.setObserved('stopped');
    this.ctx.counters.standbyRestarts++;
  }

  /**
   * The rejoin check (rejoin.ts): this node runs as a standby of nobody; compare
   * where its WAL ends with where the primary's timeline forked off. Follow the
   * primary if it did not go past it, else ask for a re-clone (pg.setRole
   * recloning), which the next pass carries out.
   */
  async rejoinCheck(inst: PostgresInstance, s: ClusterState): Promise<void> {
    const primary = s.postgres.primary;
    if (primary === null || primary === this.ctx.nodeId || s.postgres.nodes.get(primary)?.reportedRole !== 'primary') return;
    const addr = postgresAddress(this.ctx, s, primary);
    const password = replicationPassword(this.ctx.config);
    const signal = this.preempt.signal; // taken before the lock (see followPrimary)
    await this.ctx.serverLock.run(async () => {
      signal.throwIfAborted();
      if (!inst.isRunning()) return;
      const local = await localWalEnd(inst, { timeoutMs: LOCAL_WAL_END_TIMEOUT_MS });
      const upstream = await upstreamTimeline({ host: addr.host, port: addr.port, user: REPLICATION_ROLE, password }, { signal });
      const verdict = divergence(local, upstream);
      if (verdict.diverged) {
        this.ctx.log({
          level: 'warn',
          msg: 'diverged from the primary: re-cloning',
          node: this.ctx.nodeId,
          primary,
          reason: verdict.reason,
          localTimeline: local.timeline,
          localEndLsn: local.endLsn,
        });
        await this.markRecloning(s.postgres.generation);
        return;
      }
      await countAsStandby(this.ctx, s);
      const mark = inst.logMark;
      let ms: number;
      try {
        ({ ms } = await repointStandby(
          inst,
          { host: addr.host, port: addr.port, user: REPLICATION_ROLE, password, applicationName: this.ctx.nodeId },
          slotNameFor(this.ctx.nodeId),
          { timeoutMs: 10_000, signal },
        ));
      } catch (err) {
        if (err instanceof StandbyError) await this.afterFailedRepoint(inst, err, mark, s);
        throw err;
      }
      this.failedRepoints = 0;
      rmSync(rejoinMarker(this.ctx.dataDir), { force: true });
      this.receiverStoppedFor = undefined;
      this.ctx.log({
        level: 'info',
        msg: 'rejoined: following the primary',
        node: this.ctx.nodeId,
        primary,
        generation: s.postgres.generation,
        localTimeline: local.timeline,
        localEndLsn: local.endLsn,
        repointMs: Math.round(ms),
      });
    });
  }

  /**
   * The failover fence step (I4), called by the leader's controller: stop our WAL
   * receiver so nothing more arrives from the old primary, and report the flushed
   * LSN. Idempotent; refused for a generation that is not the current one.
   */
  async stopReceiverForFailover(generation: number, observedRenewalSeq?: number): Promise<{ flushedLsn: string; replayedLsn: string }> {
    const s = this.ctx.state();
    if (generation !== s.postgres.generation) {
      throw new AgentError(`stale fence request: generation ${generation}, the current generation is ${s.postgres.generation}`);
    }
    const inst = this.ctx.instance();
    if (!inst?.isRunning()) throw new AgentError(`postgres is not running on ${this.ctx.nodeId}`);
    // A follow step talking to the (old) primary under the server lock gives way (see preempt).
    this.preempt.abort(new AgentError(`a failover fence of generation ${generation} preempted this step; it runs again later`));
    this.preempt = new AbortController();
    return this.ctx.serverLock.run(async () => {
      // The renewal the controller saw lapse (or ours, if newer): a later committed
      // one means the failover was called off.
      const local = this.ctx.state().postgres.lease?.renewalSeq ?? 0;
      this.receiverStoppedFor = { generation, renewalSeq: Math.max(local, observedRenewalSeq ?? 0) };
      if (this.ctx.unsafe.has('keep-wal-receivers')) {
        const p = await readWalPositions(inst);
        this.ctx.log({
          level: 'error',
          msg: 'UNSAFE (keep-wal-receivers): WAL receiver left running for failover',
          node: this.ctx.nodeId,
          generation,
          flushedLsn: p.flushedLsn,
        });
        return p;
      }
      const r = await stopWalReceiver(inst);
      this.ctx.log({ level: 'info', msg: 'WAL receiver stopped for failover', node: this.ctx.nodeId, generation, flushedLsn: r.flushedLsn });
      return { flushedLsn: r.flushedLsn, replayedLsn: r.replayedLsn };
    });
  }
}

/**
 * A node the state machine holds as fenced (a former primary) is not counted
 * by the failover controller as a standby that may hold acknowledged commits.
 * Before it streams, and so before it can acknowledge anything, it must be
 * counted again: pg.setRole standby commits first (I4).
 */
export async function countAsStandby(ctx: AgentContext, s: ClusterState): Promise<void> {
  if (s.postgres.nodes.get(ctx.nodeId)?.role !== 'fenced') return;
  const r = await ctx.proposeAndSync({ v: 1, type: 'pg.setRole', node: ctx.nodeId, role: 'standby', generation: s.postgres.generation, atMs: Date.now() });
  if (!r.ok) throw new AgentError(`pg.setRole standby for ${ctx.nodeId} refused: ${r.error.message}`);
}

function postgresAddress(ctx: AgentContext, s: ClusterState, node: string): { host: string; port: number } {
  const text = memberAddress(s, ctx.config, node, 'postgres');
  if (text === undefined) throw new AgentError(`no postgres address known for ${node}`);
  const addr = parseHostPort(text);
  if (!addr.ok) throw new AgentError(`${node}'s postgres address ${text}: ${addr.reason}`);
  return { host: addr.host, port: addr.port };
}
