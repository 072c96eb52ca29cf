// Failover and switchover, on the Raft leader (docs/postgres-failover.md). Each
// round it observes the primary's lease on its own clock (I5), asks
// decideFailover what to do (I3, I4), and does exactly that: stop the standbys'
// WAL receivers through their agents, record why failover is blocked, or propose
// the promotion. The agents do the rest: the chosen standby promotes itself when
// the state machine names it primary, the others follow it.
//
// Operators' requests (`ogel switchover`, `ogel failover`) are queued here and
// carried out by the same loop, so one actor decides every promotion. A scheduled
// switchover (`ogel switchover --scheduled TIME`) lives in the state machine
// instead, so that whichever node leads at its time carries it out.

import { performance } from 'node:perf_hooks';
import type { ApplyOk, ClusterState, Command, ClusterStateMachine, ScheduledSwitchover } from '../../fsm/index.js';
import { compareLsn } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import { LeaseObserver, leaseTiming } from '../postgres/fence/lease.js';
import type { StepDownResult } from '../postgres/agent.js';
import type { AgentRpc } from './agent-rpc.js';
import { decideFailover, type FailoverDecision, type StandbyProbe } from './failover-decision.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';
import { SCHEDULE_LATE_MAX_MS, describeDurationMs } from './switchover-schedule.js';

const ROUND_MS = 50;
const BLOCKED_RETRY_MS = 500;
const PROBE_TIMEOUT_MS = 2_000;
/** The old primary's step-down: catch-up (10 s at most) plus a clean shutdown. */
const STEP_DOWN_TIMEOUT_MS = 30_000;
/** From the promotion to the new primary's first committed renewal (writable). */
const WRITABLE_TIMEOUT_MS = 15_000;
/** An operator's failover waits at most this long for the lease to lapse and the standbys to answer. */
const MANUAL_FAILOVER_TIMEOUT_MS = 30_000;
const QUEUE_MAX = 1;
/** A schedule that could not be cleared (no quorum for a moment) is retried this often, never run twice. */
const CLEAR_RETRY_MS = 500;

export class FailoverRequestError extends Error {
  override name = 'FailoverRequestError';
  constructor(
    message: string,
    /** 409: the cluster's state forbids it now; 400: the request names something wrong. */
    readonly status: 400 | 409 | 503,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface SwitchoverResult {
  from: string;
  to: string;
  generation: number;
  /** From asking the old primary to stop writes to the new primary's first committed lease renewal. */
  pauseMs: number;
  stepDown: StepDownResult | null;
}

export interface FailoverResult {
  from: string | null;
  to: string;
  generation: number;
  forced: boolean;
  /** From the request to the new primary's first committed lease renewal. */
  durationMs: number;
}

type Pending =
  | { kind: 'switchover'; to: string | undefined; resolve: (r: SwitchoverResult) => void; reject: (e: Error) => void }
  | { kind: 'failover'; to: string | undefined; force: boolean; startedAt: number; resolve: (r: FailoverResult) => void; reject: (e: Error) => void };

export interface FailoverControllerOptions {
  /** Automatic failover (config postgres.failover.enabled); operators' requests work either way. */
  automatic: boolean;
  /** The calls to other nodes' agents (fence a standby, step down a primary). */
  agents: AgentRpc;
  /** Observes the switchover write pause (metrics). */
  onSwitchover?: ((r: SwitchoverResult) => void) | undefined;
}

export class FailoverController implements Controller {
  readonly name = 'failover';
  private readonly queue: Pending[] = [];
  private running = false;
  private wake: (() => void) | undefined;
  /** The scheduled switchover this controller is carrying out now (set in the same tick it decides to). */
  private scheduledRun: ScheduledSwitchover | null = null;

  constructor(
    private readonly config: Config,
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
    private readonly opts: FailoverControllerOptions,
  ) {}

  /** `ogel switchover [--to X]`: resolves once the new primary takes writes. */
  switchover(to: string | undefined): Promise<SwitchoverResult> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'switchover', to, resolve, reject }));
  }

  /**
   * The scheduled switchover being carried out right now, if any. Set synchronously
   * in the tick the controller saw the schedule and decided to run it: a cancel that
   * commits after that is too late, and the API says so.
   */
  scheduledInProgress(): ScheduledSwitchover | null {
    return this.scheduledRun;
  }

  /** `ogel failover [--to X] [--force]`: resolves once the new primary takes writes. */
  failover(to: string | undefined, force: boolean): Promise<FailoverResult> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'failover', to, force, startedAt: performance.now(), resolve, reject }));
  }

  private enqueue(p: Pending): void {
    if (!this.running) return p.reject(new FailoverRequestError('the failover controller is not running on this node (it runs on the Raft leader)', 503));
    if (this.queue.length >= QUEUE_MAX)
      return p.reject(new FailoverRequestError(`a ${this.queue[0]!.kind} is already in progress`, 409, 'wait for it to finish, then check ogel status'));
    const s = this.fsm.state;
    if (p.to !== undefined && !s.postgres.nodes.has(p.to)) {
      return p.reject(new FailoverRequestError(`--to ${p.to}: no such member`, 400, `members: ${[...s.postgres.nodes.keys()].sort().join(', ')}`));
    }
    this.queue.push(p);
    this.wake?.();
  }

  async run(ctx: ControllerContext): Promise<void> {
    this.running = true;
    try {
      await this.loop(ctx);
    } finally {
      this.running = false;
      for (const p of this.queue.splice(0))
        p.reject(new FailoverRequestError('this node stopped being the Raft leader; the request was not carried out', 503, 'retry: the new leader takes it'));
    }
  }

  private async loop(ctx: ControllerContext): Promise<void> {
    // A new leader has seen no renewal yet: the observer starts with a full lease to wait out.
    let observer: LeaseObserver | undefined;
    let observerLeaseMs = 0;
    const probes = new Map<string, StandbyProbe>();
    const unreachableLogged = new Map<string, string>();
    const priority = new Map(this.config.nodes.map((n) => [n.id, n.priority]));
    const syncQuorum = this.config.postgres.syncMode === 'async' ? 0 : this.config.postgres.syncQuorum;
    // The schedule this controller already ran (or dropped) but could not clear yet:
    // it is cleared again, never run twice.
    let handled: ScheduledSwitchover | null = null;
    while (!ctx.signal.aborted) {
      const s = this.fsm.state;
      const lease = s.postgres.lease;
      if (lease && (!observer || observerLeaseMs !== lease.durationMs)) {
        observer = new LeaseObserver(leaseTiming(lease.durationMs));
        observerLeaseMs = lease.durationMs;
      }
      if (lease) observer!.observe(lease.holder, lease.generation, lease.renewalSeq);
      const leaseLapsed = observer?.lapsed() ?? false;

      const pending = this.queue[0];
      if (pending?.kind === 'switchover') {
        this.queue.shift();
        probes.clear();
        await this.runSwitchover(pending, ctx);
        continue;
      }
      // An operator's scheduled switchover, once the leader's clock reaches it. It runs
      // while paused (it is an operator's request, like ogel switchover), and waits
      // behind a queued request.
      const scheduled = s.postgres.scheduledSwitchover;
      if (scheduled !== null && pending === undefined && Date.now() >= scheduled.notBeforeMs) {
        probes.clear();
        if (handled === null || !sameSchedule(handled, scheduled)) {
          handled = scheduled;
          await this.runScheduled(scheduled, leaseLapsed, ctx);
        }
        if (!(await this.clearSchedule(scheduled, ctx))) await this.idle(CLEAR_RETRY_MS, ctx);
        continue;
      }
      let manual: { to: string | undefined; force: boolean } | undefined;
      if (pending?.kind === 'failover') {
        if (s.postgres.lease !== null && !leaseLapsed) {
          this.queue.shift();
          pending.reject(
            new FailoverRequestError(
              `the primary ${s.postgres.primary} holds a valid lease (generation ${s.postgres.generation}): it is alive, so a failover could make two writers`,
              409,
              'for a planned change use ogel switchover [--to NODE]',
            ),
          );
          continue;
        }
        if (performance.now() - pending.startedAt > MANUAL_FAILOVER_TIMEOUT_MS) {
          this.queue.shift();
          pending.reject(new FailoverRequestError(`no promotion within ${MANUAL_FAILOVER_TIMEOUT_MS} ms`, 409, 'check ogel status for the reason'));
          continue;
        }
        manual = { to: pending.to, force: pending.force };
      } else if (!this.opts.automatic) {
        probes.clear();
        await this.idle(ROUND_MS, ctx);
        continue;
      }

      const d = decideFailover({
        state: s,
        lease: { lapsed: leaseLapsed, observedRenewalSeq: lease?.renewalSeq ?? 0 },
        probes,
        priority,
        syncQuorum,
        ...(manual ? { manual } : {}),
      });
      switch (d.kind) {
        case 'healthy':
          probes.clear();
          unreachableLogged.clear();
          // A block recorded earlier no longer holds (the primary renews again).
          if (s.postgres.failoverBlocked !== null && s.postgres.primary !== null) {
            await this.propose({ v: 1, type: 'pg.failoverBlocked', reason: null, generation: s.postgres.generation, atMs: Date.now() });
            ctx.log({ level: 'info', msg: 'automatic failover no longer blocked: the primary holds its lease' });
          }
          break;
        case 'wait':
        case 'paused':
          probes.clear();
          break;
        case 'fence-standbys':
          await Promise.all(
            d.nodes.map(async (id) => {
              const { probe, problem } = await this.fence(id, s.postgres.generation, s.postgres.lease?.renewalSeq ?? 0);
              // Once per standby and problem: a blocked failover re-probes every 500 ms.
              if (problem && unreachableLogged.get(id) !== problem)
                ctx.log({ level: 'warn', msg: 'failover: standby counted as unreachable', standby: id, problem });
              if (problem) unreachableLogged.set(id, problem);
              else unreachableLogged.delete(id);
              probes.set(id, probe);
            }),
          );
          continue;
        case 'blocked':
          if (manual && pending?.kind === 'failover') {
            this.queue.shift();
            probes.clear();
            pending.reject(new FailoverRequestError(`failover refused: ${d.reason}`, 409));
            continue;
          }
          if (s.postgres.failoverBlocked?.reason !== d.reason) {
            await this.propose({ v: 1, type: 'pg.failoverBlocked', reason: d.reason, generation: s.postgres.generation, atMs: Date.now() });
            ctx.log({ level: 'error', msg: 'automatic failover blocked', reason: d.reason });
          }
          // Unreachable standbys may come back: probe them again next round.
          for (const [id, p] of probes) if (!p.reachable) probes.delete(id);
          await this.idle(BLOCKED_RETRY_MS, ctx);
          continue;
        case 'promote':
          await this.promote(s, d, manual, ctx);
          probes.clear();
          if (pending?.kind === 'failover') {
            this.queue.shift();
            try {
              await this.waitWritable(d.node, d.generation, ctx);
              pending.resolve({
                from: s.postgres.primary,
                to: d.node,
                generation: d.generation,
                forced: d.forced,
                durationMs: Math.round(performance.now() - pending.startedAt),
              });
            } catch (e) {
              pending.reject(e as Error);
            }
          }
          break;
      }
      await this.idle(ROUND_MS, ctx);
    }
  }

  private async promote(
    s: ClusterState,
    d: Extract<FailoverDecision, { kind: 'promote' }>,
    manual: { force: boolean } | undefined,
    ctx: ControllerContext,
  ): Promise<void> {
    const old = s.postgres.primary ?? s.postgres.history[s.postgres.history.length - 1]?.node ?? 'none';
    const why = d.lapsedLease ? `the lease of ${d.lapsedLease.holder} lapsed` : `${old} released its lease`;
    const reason = manual ? `failover (operator${d.forced ? ', forced: acknowledged writes may be lost' : ''}): ${why}` : `failover: ${why}`;
    await this.propose({
      v: 1,
      type: 'pg.promote',
      node: d.node,
      generation: d.generation,
      reason,
      lsn: d.lsn,
      leaseDurationMs: this.config.postgres.leaseMs,
      automatic: manual === undefined,
      lapsedLease: d.lapsedLease,
      atMs: Date.now(),
    });
    ctx.log({ level: 'warn', msg: 'failover: promoted a standby', promoted: d.node, generation: d.generation, lsn: d.lsn, forced: d.forced, reason });
  }

  /** An operator's `ogel switchover`, answered through its promise. */
  private async runSwitchover(p: Extract<Pending, { kind: 'switchover' }>, ctx: ControllerContext): Promise<void> {
    try {
      p.resolve(await this.switchoverNow(p.to, ctx));
    } catch (e) {
      p.reject(e as Error);
    }
  }

  /**
   * A due scheduled switchover: the same switchover as `ogel switchover`, or
   * dropped when it is too late or cannot work. Either way the caller clears it
   * afterwards (as Patroni drops a scheduled switchover that failed), and the
   * outcome is in the log (and, when it worked, in ogel history).
   */
  private async runScheduled(sched: ScheduledSwitchover, leaseLapsed: boolean, ctx: ControllerContext): Promise<void> {
    const at = new Date(sched.notBeforeMs).toISOString();
    const target = sched.to ?? 'the most caught-up standby';
    const lateMs = Date.now() - sched.notBeforeMs;
    if (lateMs > SCHEDULE_LATE_MAX_MS) {
      ctx.log({
        level: 'warn',
        msg: 'scheduled switchover dropped: its time passed while no leader could run it',
        to: target,
        at,
        lateMs,
        reason: `${describeDurationMs(lateMs)} late, more than ${describeDurationMs(SCHEDULE_LATE_MAX_MS)}: the maintenance window has passed; schedule it again if it is still wanted`,
      });
      return;
    }
    const pg = this.fsm.state.postgres;
    if (pg.lease === null || leaseLapsed) {
      // Asking a primary that may be dead to step down could hold this loop (and
      // automatic failover) for the whole step-down timeout.
      const reason =
        pg.lease === null
          ? `there is no primary holding a lease in generation ${pg.generation}`
          : `the lease of ${pg.lease.holder} has lapsed: automatic failover handles a dead primary`;
      ctx.log({ level: 'error', msg: 'scheduled switchover failed', to: target, at, reason });
      return;
    }
    ctx.log({ level: 'info', msg: 'scheduled switchover starting', to: target, at, lateMs });
    this.scheduledRun = sched;
    try {
      const r = await this.switchoverNow(sched.to ?? undefined, ctx);
      ctx.log({ level: 'info', msg: 'scheduled switchover done', from: r.from, to: r.to, generation: r.generation, pauseMs: r.pauseMs, at });
    } catch (e) {
      ctx.log({ level: 'error', msg: 'scheduled switchover failed', to: target, at, reason: (e as Error).message });
    } finally {
      this.scheduledRun = null;
    }
  }

  /**
   * Removes `sched` from the state machine unless something else already did (the
   * switchover's own promotion, an operator's cancel). False when it could not
   * (no quorum for a moment): the caller retries.
   */
  private async clearSchedule(sched: ScheduledSwitchover, ctx: ControllerContext): Promise<boolean> {
    const pg = this.fsm.state.postgres;
    if (pg.scheduledSwitchover === null || !sameSchedule(pg.scheduledSwitchover, sched)) return true;
    try {
      await this.propose({ v: 2, type: 'pg.scheduleSwitchover', to: null, notBeforeMs: null, generation: pg.generation, atMs: Date.now() });
      return true;
    } catch (e) {
      // A promotion in between cleared it as well (stale generation); otherwise retry.
      if (this.fsm.state.postgres.scheduledSwitchover === null) return true;
      ctx.log({ level: 'warn', msg: 'could not clear the scheduled switchover; retrying', error: (e as Error).message });
      return false;
    }
  }

  /**
   * Switchover: the old primary's agent stops writes, waits for the target to
   * flush everything, shuts down cleanly and releases its lease; then the target
   * is promoted with no lease to wait for (lapsedLease null). Resolves once the
   * new primary takes writes.
   */
  private async switchoverNow(toRequested: string | undefined, ctx: ControllerContext): Promise<SwitchoverResult> {
    const s = this.fsm.state;
    const pg = s.postgres;
    const from = pg.primary;
    if (from === null || pg.lease === null) {
      throw new FailoverRequestError(`there is no primary holding a lease in generation ${pg.generation}`, 409, 'use ogel failover to promote a standby');
    }
    const to = toRequested ?? this.bestStandby(s);
    this.checkTarget(s, to);
    const t0 = performance.now();
    let stepDown: StepDownResult | null = null;
    let stepDownError: Error | undefined;
    try {
      stepDown = await this.opts.agents.stepDown(from, { generation: pg.generation, to }, STEP_DOWN_TIMEOUT_MS);
    } catch (e) {
      stepDownError = e as Error;
    }
    // The answer may be lost after the release committed: the state decides.
    const after = this.fsm.state.postgres;
    if (!(after.generation === pg.generation && after.primary === null && after.lease === null)) {
      throw new FailoverRequestError(
        `switchover refused by ${from}: ${stepDownError?.message ?? `the lease was not released (primary ${after.primary ?? 'none'}, generation ${after.generation})`}`,
        409,
      );
    }
    await this.propose({
      v: 1,
      type: 'pg.promote',
      node: to,
      generation: pg.generation + 1,
      reason: `switchover: ${from} -> ${to}`,
      lsn: stepDown?.targetFlushedLsn ?? pg.nodes.get(to)!.lsn.flushed,
      leaseDurationMs: this.config.postgres.leaseMs,
      automatic: false,
      lapsedLease: null,
      atMs: Date.now(),
    });
    await this.waitWritable(to, pg.generation + 1, ctx);
    const result: SwitchoverResult = { from, to, generation: pg.generation + 1, pauseMs: Math.round(performance.now() - t0), stepDown };
    ctx.log({ level: 'info', msg: 'switchover done', from, to, generation: result.generation, pauseMs: result.pauseMs });
    this.opts.onSwitchover?.(result);
    return result;
  }

  /** The most advanced streaming standby by reported flushed LSN, ties by priority, then id. */
  private bestStandby(s: ClusterState): string {
    const prio = new Map(this.config.nodes.map((n) => [n.id, n.priority]));
    const candidates = [...s.postgres.nodes.values()].filter(
      (n) => n.node !== s.postgres.primary && n.reportedRole === 'standby' && (n.role === 'standby' || n.role === 'absent'),
    );
    candidates.sort((a, b) => compareLsn(b.lsn.flushed, a.lsn.flushed) || (prio.get(b.node) ?? 0) - (prio.get(a.node) ?? 0) || (a.node < b.node ? -1 : 1));
    const best = candidates[0];
    if (!best) throw new FailoverRequestError('no standby to switch over to', 409, 'check ogel status: every other node is down, fenced or re-cloning');
    return best.node;
  }

  private checkTarget(s: ClusterState, to: string): void {
    const n = s.postgres.nodes.get(to);
    if (!n) throw new FailoverRequestError(`--to ${to}: no such member`, 400);
    if (to === s.postgres.primary) throw new FailoverRequestError(`--to ${to}: it is already the primary`, 400);
    if (n.reportedRole !== 'standby' || n.role === 'fenced' || n.role === 'recloning') {
      throw new FailoverRequestError(
        `--to ${to}: it is not a streaming standby (wanted role ${n.role}, reported ${n.reportedRole})`,
        409,
        'wait until ogel status shows it streaming',
      );
    }
    if (s.members.get(to)?.health.healthy === false) throw new FailoverRequestError(`--to ${to}: the leader cannot reach it`, 409);
  }

  /** Until the new primary reports primary and its first lease renewal committed (it takes writes from then on). */
  private async waitWritable(node: string, generation: number, ctx: ControllerContext): Promise<void> {
    const t0 = performance.now();
    for (;;) {
      const pg = this.fsm.state.postgres;
      if (pg.generation !== generation)
        throw new FailoverRequestError(`generation ${generation} was replaced by ${pg.generation} before ${node} took writes`, 409);
      if (pg.lease !== null && pg.lease.holder === node && pg.lease.renewalSeq >= 1 && pg.nodes.get(node)?.reportedRole === 'primary') return;
      if (performance.now() - t0 > WRITABLE_TIMEOUT_MS) {
        throw new FailoverRequestError(
          `${node} was promoted (generation ${generation}) but has not renewed its lease within ${WRITABLE_TIMEOUT_MS} ms`,
          409,
          "check ogel status and the node's log",
        );
      }
      if (ctx.signal.aborted) throw new FailoverRequestError('this node stopped being the Raft leader while waiting for the new primary', 503);
      await sleep(5, ctx.signal);
    }
  }

  /** Sleeps ms, or less when a request arrives or leadership ends. */
  private async idle(ms: number, ctx: ControllerContext): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', done);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      ctx.signal.addEventListener('abort', done, { once: true });
      this.wake = done;
      if (ctx.signal.aborted) done();
    });
  }

  /** The fence step on one standby, through its agent: reachable and stopped, or unreachable (and why). */
  private async fence(id: string, generation: number, renewalSeq: number): Promise<{ probe: StandbyProbe; problem?: string }> {
    try {
      // renewalSeq: the renewal seen lapsing; a later one tells the standby the failover was called off.
      const body = await this.opts.agents.stopReceiver(id, { generation, renewalSeq }, PROBE_TIMEOUT_MS);
      return { probe: { reachable: true, receiverStopped: true, flushedLsn: body.flushedLsn } };
    } catch (e) {
      return { probe: { reachable: false, receiverStopped: false }, problem: (e as Error).message };
    }
  }
}

function sameSchedule(a: ScheduledSwitchover, b: ScheduledSwitchover): boolean {
  return a.to === b.to && a.notBeforeMs === b.notBeforeMs && a.requestedAtMs === b.requestedAtMs;
}
