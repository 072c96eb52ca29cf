// Postgres commands: each node's observed and wanted role, promotion and the
// generation (fencing token), the lease, synchronous standbys, failover blocking and
// scheduled switchover (pg.*, lease.*).

import { FieldError, items, show } from '../fields.js';
import type { Lsn } from '../lsn.js';
import { LIMITS, PG_ROLES, type LsnPositions, type NodeId, type PgRole } from '../state.js';
import { MAX_GENERATION, MAX_TIMELINE, TEXT, base, fieldsOf, generation, item, sortedDistinct, type Base, type ParserOf } from './shared.js';

/** An agent's observation of its own Postgres. */
export interface PgReport extends Base<'pg.report'> {
  readonly node: NodeId;
  readonly role: PgRole;
  readonly timeline: number;
  readonly lsn: LsnPositions;
}
/** Makes `node` the primary of generation state.generation + 1, with a fresh lease. */
export interface PgPromote extends Base<'pg.promote'> {
  readonly node: NodeId;
  /** Must equal state.generation + 1: a promotion decided on a stale view is refused. */
  readonly generation: number;
  readonly reason: string;
  /** The candidate's LSN when promoted (recorded in history). */
  readonly lsn: Lsn;
  readonly leaseDurationMs: number;
  /** True when the failover controller decided it; refused while maintenance is paused. */
  readonly automatic: boolean;
  /**
   * While another node holds a lease, the lease the proposer observed lapsing: its
   * holder and renewal sequence. A renewal committed after that observation voids
   * the promotion (I3, I5): the proposer's clock started at the old renewal, the
   * holder's at the new one, so the holder may still be writing.
   */
  readonly lapsedLease: { readonly holder: NodeId; readonly renewalSeq: number } | null;
}
/** Sets the wanted role of a node that is not the primary (not 'primary': use pg.promote). */
export interface PgSetRole extends Base<'pg.setRole'> {
  readonly node: NodeId;
  readonly role: Exclude<PgRole, 'primary'>;
  readonly generation: number;
}
/** Fences a node; fencing the primary leaves the cluster without one (and without a lease). */
export interface PgFence extends Base<'pg.fence'> {
  readonly node: NodeId;
  readonly generation: number;
  readonly reason: string;
}
export interface LeaseRenew extends Base<'lease.renew'> {
  readonly holder: NodeId;
  readonly generation: number;
  /** Must exceed lease.renewalSeq. */
  readonly seq: number;
}
/** The holder gives up its lease (planned switchover): no primary until the next promotion. */
export interface LeaseRelease extends Base<'lease.release'> {
  readonly holder: NodeId;
  readonly generation: number;
}
export interface PgSyncStandbys extends Base<'pg.syncStandbys'> {
  /** Sorted, distinct. Empty means asynchronous replication (quorum 0). */
  readonly nodes: readonly NodeId[];
  readonly quorum: number;
  readonly generation: number;
}
export interface PgFailoverBlocked extends Base<'pg.failoverBlocked'> {
  /** Why automatic failover refuses, or null to clear. */
  readonly reason: string | null;
  readonly generation: number;
}
/**
 * `ogel switchover --scheduled TIME` (and `--cancel`): the leader's failover
 * controller runs the switchover once its own clock reaches notBeforeMs. Version 2
 * (see COMMAND_VERSION).
 */
export interface PgScheduleSwitchover extends Base<'pg.scheduleSwitchover', 2> {
  /** The standby to promote, or null for the most caught-up one at that time; null in a cancel. */
  readonly to: NodeId | null;
  /** Not before this instant (ms since the epoch, the proposer's clock); null cancels. */
  readonly notBeforeMs: number | null;
  readonly generation: number;
}

export type PostgresCommand =
  | PgReport
  | PgPromote
  | PgSetRole
  | PgFence
  | LeaseRenew
  | LeaseRelease
  | PgSyncStandbys
  | PgFailoverBlocked
  | PgScheduleSwitchover;
export type PostgresCommandType = PostgresCommand['type'];
type Parser<T extends PostgresCommandType> = ParserOf<PostgresCommand, T>;

/** Leases outside 100 ms .. 10 min are surely a unit mistake. */
export const LEASE_DURATION_MS = { min: 100, max: 600_000 } as const;

const idItem = item((f, k) => f.id(k));

export const postgresParsers: { [T in PostgresCommandType]: Parser<T> } = {
  'pg.report': (x) => {
    const f = fieldsOf(x, ['node', 'role', 'timeline', 'lsn']);
    const l = f.obj('lsn', ['received', 'flushed', 'replayed']);
    return {
      ...base(f, 'pg.report'),
      node: f.id('node'),
      role: f.oneOf('role', PG_ROLES),
      timeline: f.int('timeline', 0, MAX_TIMELINE, '(0 when not known)'),
      lsn: { received: l.lsn('received'), flushed: l.lsn('flushed'), replayed: l.lsn('replayed') },
    };
  },
  'pg.promote': (x) => {
    const f = fieldsOf(x, ['node', 'generation', 'reason', 'lsn', 'leaseDurationMs', 'automatic', 'lapsedLease']);
    return {
      ...base(f, 'pg.promote'),
      node: f.id('node'),
      generation: f.int('generation', 1, MAX_GENERATION, '(the current generation + 1)'),
      reason: f.text('reason', TEXT),
      lsn: f.lsn('lsn'),
      leaseDurationMs: f.int('leaseDurationMs', LEASE_DURATION_MS.min, LEASE_DURATION_MS.max, 'ms'),
      automatic: f.bool('automatic'),
      // Absent in commands written before the field existed: read as null.
      lapsedLease: f.nullable('lapsedLease', (k) => {
        const l = f.obj(k, ['holder', 'renewalSeq']);
        return { holder: l.id('holder'), renewalSeq: l.int('renewalSeq', 0, Number.MAX_SAFE_INTEGER) };
      }),
    };
  },
  'pg.setRole': (x) => {
    const f = fieldsOf(x, ['node', 'role', 'generation']);
    if (f.raw('role', 'a role') === 'primary') {
      throw new FieldError(f.at('role'), '"primary" cannot be set directly; use pg.promote, which raises the generation');
    }
    const role = f.oneOf('role', ['standby', 'fenced', 'recloning', 'absent'] as const);
    return { ...base(f, 'pg.setRole'), node: f.id('node'), role, generation: generation(f) };
  },
  'pg.fence': (x) => {
    const f = fieldsOf(x, ['node', 'generation', 'reason']);
    return { ...base(f, 'pg.fence'), node: f.id('node'), generation: generation(f), reason: f.text('reason', TEXT) };
  },
  'lease.renew': (x) => {
    const f = fieldsOf(x, ['holder', 'generation', 'seq']);
    return { ...base(f, 'lease.renew'), holder: f.id('holder'), generation: generation(f), seq: f.int('seq', 1, Number.MAX_SAFE_INTEGER) };
  },
  'lease.release': (x) => {
    const f = fieldsOf(x, ['holder', 'generation']);
    return { ...base(f, 'lease.release'), holder: f.id('holder'), generation: generation(f) };
  },
  'pg.syncStandbys': (x) => {
    const f = fieldsOf(x, ['nodes', 'quorum', 'generation']);
    const nodes = sortedDistinct(items(f.array('nodes', LIMITS.members), f.at('nodes'), idItem), f.at('nodes'));
    const quorum =
      nodes.length === 0
        ? f.int('quorum', 0, 0, '(no synchronous standbys means asynchronous replication)')
        : f.int('quorum', 1, nodes.length, `(the k of ANY k over the ${nodes.length} listed nodes)`);
    return { ...base(f, 'pg.syncStandbys'), nodes, quorum, generation: generation(f) };
  },
  'pg.failoverBlocked': (x) => {
    const f = fieldsOf(x, ['reason', 'generation']);
    return { ...base(f, 'pg.failoverBlocked'), reason: f.nullable('reason', (k) => f.text(k, TEXT)), generation: generation(f) };
  },
  'pg.scheduleSwitchover': (x) => {
    const f = fieldsOf(x, ['to', 'notBeforeMs', 'generation']);
    // Both must be present, null or not: a missing notBeforeMs read as null would
    // turn a malformed schedule into a cancel.
    const notBeforeMs = f.raw('notBeforeMs', 'the time to switch over (ms since the epoch), or null to cancel') === null ? null : f.timeMs('notBeforeMs');
    const to = f.raw('to', 'the standby to promote (a node id), or null for the most caught-up one') === null ? null : f.id('to');
    if (notBeforeMs === null && to !== null) {
      throw new FieldError(f.at('to'), `${show(to)} with notBeforeMs: null (a cancel); a cancel names no target, so expected null`);
    }
    return { v: 2, type: 'pg.scheduleSwitchover', atMs: f.timeMs('atMs'), to, notBeforeMs, generation: generation(f) };
  },
};
