// apply(state, command) -> { state, result }: the deterministic heart of the FSM.
//
// Pure (I2): no clock, no randomness, no environment, no I/O; time arrives as
// command.atMs. The state is never mutated: a successful command returns a new state
// sharing the untouched parts, and a rejected one returns the very same state
// object. Every check runs before any new state is built, and messages that pick an
// example from a collection pick the smallest id, so they do not depend on Map
// order (which differs between a replica that replayed and one that restored).

import type { Command, CommandOf, CommandType } from './commands.js';
import { validateCommand } from './commands.js';
import { isRejection, reject, type Rejection } from './errors.js';
import { checkStep } from './invariants.js';
import { compareLsn, LSN_ZERO } from './lsn.js';
import {
  LIMITS,
  mapWith,
  mapWithout,
  sortedValues,
  type ClusterState,
  type ComputeState,
  type Member,
  type PgNode,
  type PgRole,
  type PostgresState,
  type Tenant,
  type TenantLimits,
} from './state.js';

export interface ApplyOk {
  readonly ok: true;
  readonly type: CommandType;
  /** The generation (fencing token) after the command. */
  readonly generation: number;
  /** lease.renew: the lease's renewal sequence now. */
  readonly renewalSeq?: number;
  /** wal.record: an identical segment was already recorded (nothing changed). */
  readonly existed?: boolean;
  /** pg.scheduleSwitchover cancel: whether a scheduled switchover was removed (false: none was). */
  readonly cancelled?: boolean;
}

export type ApplyResult = ApplyOk | Rejection;

export interface ApplyOutcome {
  readonly state: ClusterState;
  readonly result: ApplyResult;
}

interface Changed {
  readonly state: ClusterState;
  readonly renewalSeq?: number;
  readonly existed?: boolean;
  readonly cancelled?: boolean;
}

type Step = Changed | Rejection;
type Handler<T extends CommandType> = (s: ClusterState, c: CommandOf<T>) => Step;

/**
 * Applies one command. An invalid command (malformed, or not valid against `state`)
 * yields `{ state, result: { ok: false, error } }` with the same state object; bad
 * input never throws. Throws InvariantError only on a bug.
 */
export function apply(state: ClusterState, command: Command): ApplyOutcome {
  // Re-validate: the typed signature is a convenience, not a guarantee (decoded log
  // entries and API bodies arrive as unknown), and validation also normalizes.
  const c = validateCommand(command as unknown);
  if (isRejection(c)) return { state, result: c };
  const step = (handlers[c.type] as Handler<CommandType>)(state, c);
  if (isRejection(step)) return { state, result: step };
  if (step.state !== state) checkStep(state, step.state, c);
  const result: ApplyOk = {
    ok: true,
    type: c.type,
    generation: step.state.postgres.generation,
    ...(step.renewalSeq === undefined ? {} : { renewalSeq: step.renewalSeq }),
    ...(step.existed === undefined ? {} : { existed: step.existed }),
    ...(step.cancelled === undefined ? {} : { cancelled: step.cancelled }),
  };
  return { state: step.state, result };
}

/** Applies commands in order, returning the final state and every result. */
export function applyAll(state: ClusterState, commands: readonly Command[]): { state: ClusterState; results: ApplyResult[] } {
  const results: ApplyResult[] = [];
  for (const c of commands) {
    const out = apply(state, c);
    state = out.state;
    results.push(out.result);
  }
  return { state, results };
}

// --- helpers --------------------------------------------------------------------------

const q = (s: string): string => JSON.stringify(s);

function withPg(s: ClusterState, pg: Partial<PostgresState>): ClusterState {
  return { ...s, postgres: { ...s.postgres, ...pg } };
}

function setRole(nodes: ReadonlyMap<string, PgNode>, id: string, role: PgRole): ReadonlyMap<string, PgNode> {
  const n = nodes.get(id);
  if (n === undefined || n.role === role) return nodes;
  return mapWith(nodes, id, { ...n, role });
}

/** Exactly the current generation, for commands decided under it. */
function checkGeneration(s: ClusterState, generation: number): Rejection | null {
  const g = s.postgres.generation;
  if (generation === g) return null;
  return reject(
    'stale_generation',
    generation < g
      ? `generation: ${generation} is stale; the current generation is ${g} (a promotion happened since this was decided: re-read the state)`
      : `generation: ${generation} is ahead of the current generation ${g}; expected ${g}`,
    'generation',
  );
}

function unknownMember(s: ClusterState, id: string, field: string): Rejection {
  const known = [...s.members.keys()].sort();
  return reject('unknown_member', `${field}: ${q(id)} is not a member; members are ${known.length ? known.join(', ') : '(none)'}`, field);
}

function findTenant(s: ClusterState, id: string, field = 'id'): Tenant | Rejection {
  const t = s.tenants.get(id);
  if (t === undefined) return reject('unknown_tenant', `${field}: no tenant has id ${q(id)}`, field);
  return t;
}

function sameLimits(a: TenantLimits, b: TenantLimits): boolean {
  return a.maxConnections === b.maxConnections && a.rateLimitPerSec === b.rateLimitPerSec && a.poolSize === b.poolSize;
}

function liveTenant(s: ClusterState, id: string, field = 'id'): Tenant | Rejection {
  const t = findTenant(s, id, field);
  if (isRejection(t)) return t;
  if (t.state === 'deleted') return reject('tenant_deleted', `${field}: tenant ${q(id)} (${t.name}) was deleted; only tenant.purge applies to it`, field);
  return t;
}

function full(kind: string, count: number, limit: number): Rejection {
  return reject('limit_reached', `there are ${count} ${kind}, the most allowed (${limit}); delete some first`);
}

const COMPUTE_NEXT: Readonly<Record<ComputeState, readonly ComputeState[]>> = {
  starting: ['running', 'suspending', 'failed'],
  running: ['suspending', 'failed'],
  suspending: ['suspended', 'failed'],
  suspended: ['starting', 'failed'],
  failed: ['starting'],
};

// --- handlers -------------------------------------------------------------------------

const handlers: { [T in CommandType]: Handler<T> } = {
  'member.add': (s, c) => {
    if (s.members.has(c.id)) return reject('member_exists', `id: member ${q(c.id)} already exists; remove it first or choose another id`, 'id');
    if (s.members.size >= LIMITS.members) return full('members', s.members.size, LIMITS.members);
    const keys = ['raft', 'api', 'proxy', 'postgres'] as const;
    for (const m of sortedValues(s.members)) {
      for (const k of keys) {
        for (const k2 of keys) {
          if (m.addresses[k2] === c.addresses[k]) {
            return reject('address_taken', `addresses.${k}: ${q(c.addresses[k])} is already addresses.${k2} of member ${q(m.id)}; every member needs its own host:port`, `addresses.${k}`);
          }
        }
      }
    }
    const member: Member = { id: c.id, addresses: c.addresses, health: { healthy: false, reportedAtMs: c.atMs, detail: 'no health report yet' }, addedAtMs: c.atMs };
    const node: PgNode = { node: c.id, role: 'absent', reportedRole: 'absent', timeline: 0, lsn: { received: LSN_ZERO, flushed: LSN_ZERO, replayed: LSN_ZERO }, reportedAtMs: null };
    return { state: { ...withPg(s, { nodes: mapWith(s.postgres.nodes, c.id, node) }), members: mapWith(s.members, c.id, member) } };
  },

  'member.remove': (s, c) => {
    if (!s.members.has(c.id)) return unknownMember(s, c.id, 'id');
    const pg = s.postgres;
    if (pg.primary === c.id) {
      return reject('member_in_use', `id: ${q(c.id)} is the primary of generation ${pg.generation}; promote another node or fence it (pg.fence) first`, 'id');
    }
    if (pg.syncStandbys.includes(c.id)) {
      return reject('member_in_use', `id: ${q(c.id)} is a synchronous standby (ANY ${pg.syncQuorum} of ${pg.syncStandbys.join(', ')}); take it out with pg.syncStandbys first`, 'id');
    }
    const placed = sortedValues(s.tenants).filter((t) => t.state !== 'deleted' && t.placement === c.id);
    if (placed.length > 0) {
      return reject('member_in_use', `id: ${placed.length} tenant(s) are placed on ${q(c.id)} (first: ${q(placed[0]!.id)}); move them with tenant.place first`, 'id');
    }
    return { state: { ...withPg(s, { nodes: mapWithout(pg.nodes, c.id) }), members: mapWithout(s.members, c.id) } };
  },

  'member.health': (s, c) => {
    const m = s.members.get(c.id);
    if (m === undefined) return unknownMember(s, c.id, 'id');
    return { state: { ...s, members: mapWith(s.members, c.id, { ...m, health: { healthy: c.healthy, reportedAtMs: c.atMs, detail: c.detail } }) } };
  },

  'pg.report': (s, c) => {
    const n = s.postgres.nodes.get(c.node);
    if (n === undefined) return unknownMember(s, c.node, 'node');
    const next: PgNode = { ...n, reportedRole: c.role, timeline: c.timeline, lsn: c.lsn, reportedAtMs: c.atMs };
    return { state: withPg(s, { nodes: mapWith(s.postgres.nodes, c.node, next) }) };
  },

  'pg.promote': (s, c) => {
    const pg = s.postgres;
    if (c.generation !== pg.generation + 1) {
      return reject(
        'stale_generation',
        `generation: ${c.generation} is not the next generation; the current generation is ${pg.generation}, so a promotion must carry ${pg.generation + 1} (re-read the state and decide again)`,
        'generation',
      );
    }
    const n = pg.nodes.get(c.node);
    if (n === undefined) return unknownMember(s, c.node, 'node');
    if (n.role === 'recloning') {
      return reject('not_promotable', `node: ${q(c.node)} is being re-cloned (role "recloning") and has no consistent data; promote a standby`, 'node');
    }
    if (c.automatic && s.maintenance.paused) {
      return reject(
        'maintenance_paused',
        `automatic: maintenance is paused${s.maintenance.reason ? ` (${s.maintenance.reason})` : ''}, so automatic promotion is refused; resume with maintenance.set paused=false, or promote manually (automatic: false)`,
        'automatic',
      );
    }
    // I3/I5: while another node holds a lease, promote only past the exact renewal
    // the proposer saw lapse. A later renewal means the holder's own clock restarted
    // after the proposer's did, so the holder may still be accepting writes.
    const lease = pg.lease;
    if (lease !== null && lease.holder !== c.node) {
      if (c.lapsedLease === null) {
        return reject(
          'stale_renewal',
          `lapsedLease: null, but ${q(lease.holder)} holds the lease of generation ${lease.generation} (renewal ${lease.renewalSeq}); name the renewal you observed lapsing, or have the holder release it (switchover)`,
          'lapsedLease',
        );
      }
      if (c.lapsedLease.holder !== lease.holder || c.lapsedLease.renewalSeq !== lease.renewalSeq) {
        return reject(
          'stale_renewal',
          `lapsedLease: observed ${q(c.lapsedLease.holder)} renewal ${c.lapsedLease.renewalSeq}, but the lease is ${q(lease.holder)} renewal ${lease.renewalSeq}: it was renewed after the observation, so it has not lapsed (observe it again)`,
          'lapsedLease',
        );
      }
    }
    let nodes = pg.primary !== null && pg.primary !== c.node ? setRole(pg.nodes, pg.primary, 'fenced') : pg.nodes;
    nodes = setRole(nodes, c.node, 'primary');
    const syncStandbys = pg.syncStandbys.filter((id) => id !== c.node);
    const syncQuorum = Math.min(pg.syncQuorum, syncStandbys.length);
    const history = [...pg.history, { generation: c.generation, node: c.node, reason: c.reason, lsn: c.lsn, atMs: c.atMs }];
    return {
      state: withPg(s, {
        nodes,
        primary: c.node,
        generation: c.generation,
        lease: { holder: c.node, generation: c.generation, durationMs: c.leaseDurationMs, renewalSeq: 0 },
        syncStandbys,
        syncQuorum,
        history: history.length > LIMITS.history ? history.slice(history.length - LIMITS.history) : history,
        failoverBlocked: null,
        // Any promotion supersedes a scheduled switchover: it was planned against
        // the primary that just changed.
        scheduledSwitchover: null,
      }),
    };
  },

  'pg.setRole': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (!s.postgres.nodes.has(c.node)) return unknownMember(s, c.node, 'node');
    if (s.postgres.primary === c.node) {
      return reject('is_primary', `node: ${q(c.node)} is the primary of generation ${s.postgres.generation}; fence it with pg.fence or promote another node first`, 'node');
    }
    return { state: withPg(s, { nodes: setRole(s.postgres.nodes, c.node, c.role) }) };
  },

  'pg.fence': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (!s.postgres.nodes.has(c.node)) return unknownMember(s, c.node, 'node');
    const nodes = setRole(s.postgres.nodes, c.node, 'fenced');
    if (s.postgres.primary === c.node) return { state: withPg(s, { nodes, primary: null, lease: null }) };
    return { state: withPg(s, { nodes }) };
  },

  'lease.renew': (s, c) => {
    const lease = s.postgres.lease;
    if (lease === null) {
      const stale = checkGeneration(s, c.generation);
      if (stale) return stale;
      return reject('no_lease', `there is no lease in generation ${s.postgres.generation} (released, or its holder was fenced); a new lease comes only with pg.promote`);
    }
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (c.holder !== lease.holder) {
      return reject('not_lease_holder', `holder: ${q(c.holder)} does not hold the lease; ${q(lease.holder)} holds it in generation ${lease.generation}`, 'holder');
    }
    if (c.seq <= lease.renewalSeq) {
      return reject('stale_renewal', `seq: ${c.seq} is not after the last renewal ${lease.renewalSeq} (a duplicate or reordered renewal); expected more than ${lease.renewalSeq}`, 'seq');
    }
    return { state: withPg(s, { lease: { ...lease, renewalSeq: c.seq } }), renewalSeq: c.seq };
  },

  'lease.release': (s, c) => {
    const lease = s.postgres.lease;
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (lease === null) return reject('no_lease', `there is no lease in generation ${s.postgres.generation} to release`);
    if (c.holder !== lease.holder) {
      return reject('not_lease_holder', `holder: ${q(c.holder)} does not hold the lease; ${q(lease.holder)} holds it in generation ${lease.generation}`, 'holder');
    }
    return { state: withPg(s, { nodes: setRole(s.postgres.nodes, lease.holder, 'fenced'), primary: null, lease: null }) };
  },

  'pg.syncStandbys': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    for (const id of c.nodes) {
      if (!s.members.has(id)) return unknownMember(s, id, 'nodes');
      if (id === s.postgres.primary) return reject('is_primary', `nodes: ${q(id)} is the primary; a synchronous standby must be another node`, 'nodes');
    }
    return { state: withPg(s, { syncStandbys: c.nodes, syncQuorum: c.quorum }) };
  },

  'pg.failoverBlocked': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    return { state: withPg(s, { failoverBlocked: c.reason === null ? null : { reason: c.reason, atMs: c.atMs } }) };
  },

  'pg.scheduleSwitchover': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    const pg = s.postgres;
    const current = pg.scheduledSwitchover;
    if (c.notBeforeMs === null) {
      // Idempotent: a cancel that finds nothing (already run, cancelled or superseded) succeeds.
      if (current === null) return { state: s, cancelled: false };
      return { state: withPg(s, { scheduledSwitchover: null }), cancelled: true };
    }
    if (current !== null) {
      return reject(
        'switchover_scheduled',
        `a switchover${current.to === null ? '' : ` to ${q(current.to)}`} is already scheduled (notBeforeMs ${current.notBeforeMs}); cancel it first (notBeforeMs: null)`,
      );
    }
    if (pg.primary === null) {
      return reject('no_primary', `there is no primary in generation ${pg.generation} to switch over from; a switchover needs a primary (ogel failover promotes a standby)`);
    }
    if (c.to !== null) {
      if (!s.members.has(c.to)) return unknownMember(s, c.to, 'to');
      if (c.to === pg.primary) return reject('is_primary', `to: ${q(c.to)} is already the primary of generation ${pg.generation}; name a standby`, 'to');
    }
    return { state: withPg(s, { scheduledSwitchover: { to: c.to, notBeforeMs: c.notBeforeMs, requestedAtMs: c.atMs } }) };
  },

  'tenant.create': (s, c) => {
    const existing = s.tenants.get(c.id);
    if (existing !== undefined) {
      return reject(
        'tenant_exists',
        existing.state === 'deleted'
          ? `id: ${q(c.id)} belonged to a deleted tenant; ids are not reused until tenant.purge, so choose another id`
          : `id: tenant ${q(c.id)} already exists`,
        'id',
      );
    }
    if (s.tenants.size >= LIMITS.tenants) return full('tenants (including deleted ones not purged)', s.tenants.size, LIMITS.tenants);
    for (const t of sortedValues(s.tenants)) {
      if (t.state === 'deleted') continue;
      for (const k of ['name', 'database', 'role'] as const) {
        if (t[k] === c[k]) return reject('name_taken', `${k}: ${q(c[k])} is already the ${k} of tenant ${q(t.id)}; choose another`, k);
      }
    }
    const tenant: Tenant = {
      id: c.id,
      name: c.name,
      database: c.database,
      role: c.role,
      // tenant.create (version 1) predates poolSize: the proxy's default until tenant.setLimits.
      limits: { ...c.limits, poolSize: null },
      state: 'active',
      placement: null,
      scram: c.scram,
      createdAtMs: c.atMs,
      deletedAtMs: null,
    };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, tenant) } };
  },

  'tenant.delete': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, state: 'deleted', deletedAtMs: c.atMs }) } };
  },

  'tenant.purge': (s, c) => {
    const t = findTenant(s, c.id);
    if (isRejection(t)) return t;
    if (t.state !== 'deleted') return reject('tenant_not_deleted', `id: tenant ${q(c.id)} is ${t.state}; only a deleted tenant can be purged (tenant.delete first)`, 'id');
    const user = sortedValues(s.computes).find((k) => k.tenantId === c.id || k.branchOf === c.id);
    if (user !== undefined) return reject('tenant_in_use', `id: compute ${q(user.id)} still refers to tenant ${q(c.id)}; delete it first (compute.delete)`, 'id');
    return { state: { ...s, tenants: mapWithout(s.tenants, c.id) } };
  },

  'tenant.setState': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    if (t.state === c.state) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, state: c.state }) } };
  },

  'tenant.setLimits': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    if (sameLimits(t.limits, c.limits)) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, limits: c.limits }) } };
  },

  'tenant.place': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    if (c.node !== null && !s.members.has(c.node)) return unknownMember(s, c.node, 'node');
    if (t.placement === c.node) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, placement: c.node }) } };
  },

  'backup.record': (s, c) => {
    if (s.backups.has(c.id)) return reject('backup_exists', `id: backup ${q(c.id)} is already recorded; update it with backup.update`, 'id');
    if (s.backups.size >= LIMITS.backups) return full('backups', s.backups.size, LIMITS.backups);
    const { v: _v, type: _t, atMs, ...fields } = c;
    return { state: { ...s, backups: mapWith(s.backups, c.id, { ...fields, atMs, finishedAtMs: c.state === 'running' ? null : atMs }) } };
  },

  'backup.update': (s, c) => {
    const b = s.backups.get(c.id);
    if (b === undefined) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    if (b.state !== 'running') {
      return reject('invalid_transition', `state: backup ${q(c.id)} is already "${b.state}"; complete and failed backups are final`, 'state');
    }
    const endLsn = c.endLsn ?? b.endLsn;
    const checksum = c.checksum ?? b.checksum;
    if (endLsn !== null && compareLsn(endLsn, b.startLsn) < 0) {
      return reject('invalid_value', `endLsn: ${endLsn} is before the backup's startLsn ${b.startLsn}; expected an LSN at or after it`, 'endLsn');
    }
    if (c.state === 'complete' && (endLsn === null || checksum === null)) {
      const field = endLsn === null ? 'endLsn' : 'checksum';
      return reject('invalid_value', `${field}: required to complete backup ${q(c.id)}, which has none yet`, field);
    }
    const next = { ...b, state: c.state, endLsn, checksum, sizeBytes: c.sizeBytes ?? b.sizeBytes, finishedAtMs: c.state === 'running' ? null : c.atMs };
    return { state: { ...s, backups: mapWith(s.backups, c.id, next) } };
  },

  'backup.delete': (s, c) => {
    if (!s.backups.has(c.id)) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    const user = sortedValues(s.computes).find((k) => k.sourceSnapshot === c.id);
    if (user !== undefined) return reject('backup_in_use', `id: compute ${q(user.id)} starts from backup ${q(c.id)}; delete the compute first`, 'id');
    return { state: { ...s, backups: mapWithout(s.backups, c.id) } };
  },

  'wal.record': (s, c) => {
    const { v: _v, type: _t, atMs, ...fields } = c;
    const w = s.walSegments.get(c.name);
    if (w !== undefined) {
      const differs = (Object.keys(fields) as (keyof typeof fields)[]).filter((k) => w[k] !== fields[k]).sort();
      if (differs.length === 0) return { state: s, existed: true };
      return reject('wal_segment_conflict', `name: segment ${c.name} is already recorded with a different ${differs.join(', ')}; a recorded segment is immutable`, 'name');
    }
    if (s.walSegments.size >= LIMITS.walSegments) return full('WAL segments', s.walSegments.size, LIMITS.walSegments);
    return { state: { ...s, walSegments: mapWith(s.walSegments, c.name, { ...fields, atMs }) }, existed: false };
  },

  'wal.delete': (s, c) => {
    const missing = c.names.find((n) => !s.walSegments.has(n));
    if (missing !== undefined) return reject('unknown_wal_segment', `names: segment ${missing} is not recorded; nothing was deleted`, 'names');
    return { state: { ...s, walSegments: mapWithout(s.walSegments, ...c.names) } };
  },

  'compute.create': (s, c) => {
    if (s.computes.has(c.id)) return reject('compute_exists', `id: compute ${q(c.id)} already exists`, 'id');
    if (s.computes.size >= LIMITS.computes) return full('computes', s.computes.size, LIMITS.computes);
    const field = c.tenantId !== null ? 'tenantId' : 'branchOf';
    const t = liveTenant(s, (c.tenantId ?? c.branchOf)!, field);
    if (isRejection(t)) return t;
    if (field === 'tenantId' && t.state !== 'active') {
      return reject('tenant_not_active', `tenantId: tenant ${q(t.id)} is ${t.state}; a compute can serve only an active tenant`, 'tenantId');
    }
    if (c.sourceSnapshot !== null) {
      const b = s.backups.get(c.sourceSnapshot);
      if (b === undefined) return reject('unknown_backup', `sourceSnapshot: no backup has id ${q(c.sourceSnapshot)}`, 'sourceSnapshot');
      if (b.state !== 'complete') {
        return reject('invalid_value', `sourceSnapshot: backup ${q(b.id)} is "${b.state}"; a compute can start only from a complete backup`, 'sourceSnapshot');
      }
      if (c.sourceLsn !== null && compareLsn(c.sourceLsn, b.endLsn!) < 0) {
        return reject('invalid_value', `sourceLsn: ${c.sourceLsn} is before the end of backup ${q(b.id)} (${b.endLsn}); recovery from it can reach only LSNs at or after that`, 'sourceLsn');
      }
    }
    const compute = {
      id: c.id,
      tenantId: c.tenantId,
      branchOf: c.branchOf,
      sourceSnapshot: c.sourceSnapshot,
      sourceLsn: c.sourceLsn,
      state: 'starting' as const,
      address: null,
      lastActivityMs: c.atMs,
      createdAtMs: c.atMs,
    };
    return { state: { ...s, computes: mapWith(s.computes, c.id, compute) } };
  },

  'compute.update': (s, c) => {
    const k = s.computes.get(c.id);
    if (k === undefined) return reject('unknown_compute', `id: no compute has id ${q(c.id)}`, 'id');
    const state = c.state ?? k.state;
    if (state !== k.state && !COMPUTE_NEXT[k.state].includes(state)) {
      return reject(
        'invalid_transition',
        `state: compute ${q(c.id)} cannot go from "${k.state}" to "${state}"; from "${k.state}" it can go to ${COMPUTE_NEXT[k.state].map((x) => `"${x}"`).join(', ')}`,
        'state',
      );
    }
    const address = c.address !== undefined ? c.address : k.state === 'running' && state !== 'running' ? null : k.address;
    if (state === 'running' && address === null) {
      return reject('invalid_value', `address: compute ${q(c.id)} is running, so it needs an address (host:port)`, 'address');
    }
    const lastActivityMs = Math.max(k.lastActivityMs, c.lastActivityMs ?? 0);
    return { state: { ...s, computes: mapWith(s.computes, c.id, { ...k, state, address, lastActivityMs }) } };
  },

  'compute.delete': (s, c) => {
    const k = s.computes.get(c.id);
    if (k === undefined) return reject('unknown_compute', `id: no compute has id ${q(c.id)}`, 'id');
    if (k.state !== 'suspended' && k.state !== 'failed') {
      return reject('compute_active', `id: compute ${q(c.id)} is "${k.state}"; suspend it (or mark it failed) before deleting it`, 'id');
    }
    return { state: { ...s, computes: mapWithout(s.computes, c.id) } };
  },

  'maintenance.set': (s, c) => ({ state: { ...s, maintenance: { paused: c.paused, reason: c.reason, atMs: c.atMs } } }),
};
