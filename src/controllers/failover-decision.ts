// The failover controller's decision (I3, I4), as a pure function of what the
// Raft leader knows: the state machine, whether the primary's lease has lapsed as
// it observes it (I5), and what the fence step found on each standby. The
// controller calls it again after every step, so the decision is level-triggered:
// "stop the standbys' WAL receivers", then "promote X", or "blocked: why".
// See docs/postgres-failover.md.

import { compareLsn, type ClusterState, type Lsn } from '../../fsm/index.js';

export interface StandbyProbe {
  /** The standby's agent answered the fence call. */
  reachable: boolean;
  /** Its WAL receiver is stopped: it can receive nothing more from the old primary. */
  receiverStopped: boolean;
  /** Flushed LSN after the receiver stopped (final once stopped). */
  flushedLsn?: Lsn;
}

export interface FailoverInput {
  state: ClusterState;
  /** Lease lapsed as the leader observes it (LeaseObserver), and the renewal it saw lapse. */
  lease: { lapsed: boolean; observedRenewalSeq: number };
  /** The fence step's findings, per standby id; a standby missing here was not probed yet. */
  probes: ReadonlyMap<string, StandbyProbe>;
  /** Failover priority per node (config nodes[].priority); higher wins an LSN tie. */
  priority: ReadonlyMap<string, number>;
  /** The k of ANY k: an acknowledged commit is on at least k standbys; 0 for async. */
  syncQuorum: number;
  /**
   * `ogel failover [--to X] [--force]`, an operator's failover: it runs while
   * maintenance is paused, `to` restricts the candidate, and `force` accepts the
   * data-loss risk of unreachable standbys (I4). It never skips the lease (I3).
   */
  manual?: { to?: string | undefined; force: boolean };
}

export type FailoverDecision =
  | { kind: 'healthy' }
  | { kind: 'paused'; reason: string | null }
  | { kind: 'wait'; reason: string }
  | { kind: 'fence-standbys'; nodes: string[] }
  | { kind: 'blocked'; reason: string }
  | { kind: 'promote'; node: string; generation: number; lsn: Lsn; lapsedLease: { holder: string; renewalSeq: number } | null; forced: boolean };

export function decideFailover(i: FailoverInput): FailoverDecision {
  const pg = i.state.postgres;
  // No primary in generation 0: bootstrap's job. No primary later: its holder
  // released the lease (a switchover whose leader went away): promote as below.
  if (pg.primary === null && pg.generation === 0) return { kind: 'wait', reason: 'there is no primary yet (bootstrap)' };
  const force = i.manual?.force === true;
  // The first primary takes writes only after its first renewal: until then no
  // write was ever acknowledged, and the standbys are still being cloned from it.
  // Failing over would promote a node without data; bootstrap is still running.
  if (pg.generation === 1 && pg.lease !== null && pg.lease.renewalSeq === 0 && !i.manual) {
    return { kind: 'wait', reason: `the first primary ${pg.primary} has not renewed its lease yet (bootstrap in progress)` };
  }
  if (i.state.maintenance.paused && !i.manual) return { kind: 'paused', reason: i.state.maintenance.reason };
  // I3 and I5: nobody else may write before the holder has fenced itself.
  if (pg.lease !== null && !i.lease.lapsed) return { kind: 'healthy' };
  const lapsedLease = pg.lease === null ? null : { holder: pg.lease.holder, renewalSeq: i.lease.observedRenewalSeq };
  if (pg.lease !== null && i.lease.observedRenewalSeq !== pg.lease.renewalSeq) {
    // The lease was renewed after the observation started: observe it again.
    return { kind: 'wait', reason: `the lease was renewed (seq ${pg.lease.renewalSeq}) after the lapse was observed (seq ${i.lease.observedRenewalSeq})` };
  }

  // A fenced node (a former primary that has not rejoined) is not streaming in
  // this generation: its agent commits pg.setRole standby before it streams. A
  // re-cloning one has no consistent data. Neither can hold an acknowledged
  // commit of this generation, nor be promoted.
  const standbys = [...pg.nodes.keys()]
    .filter((id) => id !== pg.primary && pg.nodes.get(id)!.role !== 'recloning' && pg.nodes.get(id)!.role !== 'fenced')
    .sort();
  if (standbys.length === 0) return { kind: 'blocked', reason: 'no standby to promote' };
  const unprobed = standbys.filter((id) => !i.probes.has(id));
  const reachable = standbys.filter((id) => i.probes.get(id)?.reachable === true);
  const unreachable = standbys.filter((id) => i.probes.get(id)?.reachable === false);
  const stillStreaming = reachable.filter((id) => !i.probes.get(id)!.receiverStopped);
  // I4 step 1: every reachable standby's WAL receiver must be stopped, so the LSNs
  // compared next are final.
  if (unprobed.length > 0 || stillStreaming.length > 0) return { kind: 'fence-standbys', nodes: [...unprobed, ...stillStreaming] };

  // I4 step 2: with ANY k, an acknowledged commit is on at least k standbys. If k or
  // more standbys are unreachable, it may exist only on them: promoting a reachable
  // one could lose it. (k = 0, asynchronous, gives no guarantee to protect.)
  if (i.syncQuorum > 0 && unreachable.length >= i.syncQuorum && !force) {
    return {
      kind: 'blocked',
      reason:
        `the old primary ${pg.primary ?? pg.history[pg.history.length - 1]?.node ?? '(none)'} and standby ${unreachable.join(', ')} are unreachable: the latest acknowledged ` +
        `commit may exist only on ${unreachable.length === 1 ? 'it' : 'them'}; automatic failover refuses ` +
        `(ogel failover --force --to NODE accepts the risk of losing it)`,
    };
  }
  if (reachable.length === 0) return { kind: 'blocked', reason: 'no reachable standby' };

  let candidates = reachable;
  const to = i.manual?.to;
  if (to !== undefined) {
    if (!reachable.includes(to)) return { kind: 'blocked', reason: `--to ${to} is not a reachable standby (reachable: ${reachable.join(', ') || 'none'})` };
    candidates = [to];
  }
  // The most advanced flushed LSN; ties by priority, then id (deterministic).
  const best = [...candidates].sort((a, b) => {
    const c = compareLsn(i.probes.get(b)!.flushedLsn ?? '0/0', i.probes.get(a)!.flushedLsn ?? '0/0');
    return c !== 0 ? c : (i.priority.get(b) ?? 0) - (i.priority.get(a) ?? 0) || (a < b ? -1 : 1);
  })[0]!;
  // Never promote a node behind another reachable one: it would lose what they hold.
  const bestLsn = i.probes.get(best)!.flushedLsn ?? '0/0';
  const ahead = reachable.filter((id) => compareLsn(i.probes.get(id)!.flushedLsn ?? '0/0', bestLsn) > 0);
  if (ahead.length > 0) {
    if (to === undefined) throw new Error(`failover: ${best} chosen behind ${ahead.join(', ')}`); // programmer error
    if (!force) {
      return {
        kind: 'blocked',
        reason: `--to ${to} has flushed ${bestLsn}, behind ${ahead.map((id) => `${id} (${i.probes.get(id)!.flushedLsn})`).join(', ')}: promoting it would lose those commits (add --force to accept that)`,
      };
    }
  }
  return { kind: 'promote', node: best, generation: pg.generation + 1, lsn: bestLsn, lapsedLease, forced: force };
}
