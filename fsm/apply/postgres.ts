// Postgres handlers: roles, promotion and the generation, the lease, synchronous
// standbys, failover blocking and scheduled switchover (pg.*, lease.*).

import type { PostgresCommandType } from '../commands/postgres.js';
import { reject } from '../errors.js';
import { LIMITS, mapWith, type PgNode, type PgRole } from '../state.js';
import { checkGeneration, q, unknownMember, withPg, type Handler } from './shared.js';

function setRole(nodes: ReadonlyMap<string, PgNode>, id: string, role: PgRole): ReadonlyMap<string, PgNode> {
  const n = nodes.get(id);
  if (n === undefined || n.role === role) return nodes;
  return mapWith(nodes, id, { ...n, role });
}

export const postgresHandlers: { [T in PostgresCommandType]: Handler<T> } = {
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
      return reject(
        'is_primary',
        `node: ${q(c.node)} is the primary of generation ${s.postgres.generation}; fence it with pg.fence or promote another node first`,
        'node',
      );
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
      return reject(
        'no_lease',
        `there is no lease in generation ${s.postgres.generation} (released, or its holder was fenced); a new lease comes only with pg.promote`,
      );
    }
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (c.holder !== lease.holder) {
      return reject(
        'not_lease_holder',
        `holder: ${q(c.holder)} does not hold the lease; ${q(lease.holder)} holds it in generation ${lease.generation}`,
        'holder',
      );
    }
    if (c.seq <= lease.renewalSeq) {
      return reject(
        'stale_renewal',
        `seq: ${c.seq} is not after the last renewal ${lease.renewalSeq} (a duplicate or reordered renewal); expected more than ${lease.renewalSeq}`,
        'seq',
      );
    }
    return { state: withPg(s, { lease: { ...lease, renewalSeq: c.seq } }), renewalSeq: c.seq };
  },

  'lease.release': (s, c) => {
    const lease = s.postgres.lease;
    const stale = checkGeneration(s, c.generation);
    if (stale) return stale;
    if (lease === null) return reject('no_lease', `there is no lease in generation ${s.postgres.generation} to release`);
    if (c.holder !== lease.holder) {
      return reject(
        'not_lease_holder',
        `holder: ${q(c.holder)} does not hold the lease; ${q(lease.holder)} holds it in generation ${lease.generation}`,
        'holder',
      );
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
      return reject(
        'no_primary',
        `there is no primary in generation ${pg.generation} to switch over from; a switchover needs a primary (ogel failover promotes a standby)`,
      );
    }
    if (c.to !== null) {
      if (!s.members.has(c.to)) return unknownMember(s, c.to, 'to');
      if (c.to === pg.primary) return reject('is_primary', `to: ${q(c.to)} is already the primary of generation ${pg.generation}; name a standby`, 'to');
    }
    return { state: withPg(s, { scheduledSwitchover: { to: c.to, notBeforeMs: c.notBeforeMs, requestedAtMs: c.atMs } }) };
  },
};
