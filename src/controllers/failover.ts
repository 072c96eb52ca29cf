// Automatic failover, on the Raft leader (docs/postgres-failover.md). Each round
// it observes the primary's lease on its own clock (I5), asks decideFailover what
// to do (I3, I4), and does exactly that: stop the standbys' WAL receivers through
// their agents, record why failover is blocked, or propose the promotion. The
// agents do the rest: the chosen standby promotes itself when the state machine
// names it primary, the others follow it.

import { request } from 'undici';
import type { ApplyOk, Command, ClusterStateMachine } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import { LeaseObserver, leaseTiming } from '../postgres/lease.js';
import { decideFailover, type StandbyProbe } from './failover-decision.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';

const ROUND_MS = 50;
const BLOCKED_RETRY_MS = 500;
const PROBE_TIMEOUT_MS = 2_000;

export class FailoverController implements Controller {
  readonly name = 'failover';

  constructor(
    private readonly config: Config,
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
  ) {}

  async run(ctx: ControllerContext): Promise<void> {
    // A new leader has seen no renewal yet: the observer starts with a full lease to wait out.
    let observer: LeaseObserver | undefined;
    let observerLeaseMs = 0;
    const probes = new Map<string, StandbyProbe>();
    const priority = new Map(this.config.nodes.map((n) => [n.id, n.priority]));
    const syncQuorum = this.config.postgres.syncMode === 'async' ? 0 : this.config.postgres.syncQuorum;
    while (!ctx.signal.aborted) {
      const s = this.fsm.state;
      const lease = s.postgres.lease;
      if (lease && (!observer || observerLeaseMs !== lease.durationMs)) {
        observer = new LeaseObserver(leaseTiming(lease.durationMs));
        observerLeaseMs = lease.durationMs;
      }
      if (lease) observer!.observe(lease.holder, lease.generation, lease.renewalSeq);
      const d = decideFailover({
        state: s,
        lease: { lapsed: observer?.lapsed() ?? false, observedRenewalSeq: lease?.renewalSeq ?? 0 },
        probes,
        priority,
        syncQuorum,
      });
      switch (d.kind) {
        case 'healthy':
        case 'wait':
        case 'paused':
          probes.clear();
          break;
        case 'fence-standbys':
          await Promise.all(
            d.nodes.map(async (id) => {
              const { probe, problem } = await this.fence(id, s.postgres.generation);
              if (problem) ctx.log({ level: 'warn', msg: 'failover: standby counted as unreachable', node: id, problem });
              probes.set(id, probe);
            }),
          );
          continue;
        case 'blocked':
          if (s.postgres.failoverBlocked?.reason !== d.reason) {
            await this.propose({ v: 1, type: 'pg.failoverBlocked', reason: d.reason, generation: s.postgres.generation, atMs: Date.now() });
            ctx.log({ level: 'error', msg: 'automatic failover blocked', reason: d.reason });
          }
          // Unreachable standbys may come back: probe them again next round.
          for (const [id, p] of probes) if (!p.reachable) probes.delete(id);
          await sleep(BLOCKED_RETRY_MS, ctx.signal);
          continue;
        case 'promote':
          await this.propose({
            v: 1,
            type: 'pg.promote',
            node: d.node,
            generation: d.generation,
            reason: `failover: the lease of ${d.lapsedLease?.holder ?? 'the primary'} lapsed`,
            lsn: d.lsn,
            leaseDurationMs: this.config.postgres.leaseMs,
            automatic: true,
            lapsedLease: d.lapsedLease,
            atMs: Date.now(),
          });
          ctx.log({ level: 'warn', msg: 'failover: promoted a standby', node: d.node, generation: d.generation, lsn: d.lsn });
          probes.clear();
          break;
      }
      await sleep(ROUND_MS, ctx.signal);
    }
  }

  /** The fence step on one standby, through its agent: reachable and stopped, or unreachable (and why). */
  private async fence(id: string, generation: number): Promise<{ probe: StandbyProbe; problem?: string }> {
    const unreachable = (problem: string) => ({ probe: { reachable: false, receiverStopped: false }, problem });
    const api = this.fsm.state.members.get(id)?.addresses.api ?? this.config.nodes.find((n) => n.id === id)?.api;
    if (!api) return unreachable('no admin API address known');
    try {
      const r = await request(`http://${api}/v1/internal/pg/stop-receiver`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.config.api.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ generation }),
        headersTimeout: PROBE_TIMEOUT_MS,
        bodyTimeout: PROBE_TIMEOUT_MS,
      });
      const text = await r.body.text();
      if (r.statusCode !== 200) return unreachable(`HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
      const body = JSON.parse(text) as { flushedLsn: string };
      return { probe: { reachable: true, receiverStopped: true, flushedLsn: body.flushedLsn } };
    } catch (e) {
      return unreachable((e as Error).message);
    }
  }
}
