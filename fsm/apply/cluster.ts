// Cluster handlers: membership (member.*) and the maintenance flag.

import type { ClusterCommandType } from '../commands/cluster.js';
import { reject } from '../errors.js';
import { LSN_ZERO } from '../lsn.js';
import { LIMITS, mapWith, mapWithout, sortedValues, type Member, type PgNode } from '../state.js';
import { full, q, unknownMember, withPg, type Handler } from './shared.js';

export const clusterHandlers: { [T in ClusterCommandType]: Handler<T> } = {
  'member.add': (s, c) => {
    if (s.members.has(c.id)) return reject('member_exists', `id: member ${q(c.id)} already exists; remove it first or choose another id`, 'id');
    if (s.members.size >= LIMITS.members) return full('members', s.members.size, LIMITS.members);
    const keys = ['raft', 'api', 'proxy', 'postgres'] as const;
    for (const m of sortedValues(s.members)) {
      for (const k of keys) {
        for (const k2 of keys) {
          if (m.addresses[k2] === c.addresses[k]) {
            return reject(
              'address_taken',
              `addresses.${k}: ${q(c.addresses[k])} is already addresses.${k2} of member ${q(m.id)}; every member needs its own host:port`,
              `addresses.${k}`,
            );
          }
        }
      }
    }
    const member: Member = {
      id: c.id,
      addresses: c.addresses,
      health: { healthy: false, reportedAtMs: c.atMs, detail: 'no health report yet' },
      addedAtMs: c.atMs,
    };
    const node: PgNode = {
      node: c.id,
      role: 'absent',
      reportedRole: 'absent',
      timeline: 0,
      lsn: { received: LSN_ZERO, flushed: LSN_ZERO, replayed: LSN_ZERO },
      reportedAtMs: null,
    };
    return { state: { ...withPg(s, { nodes: mapWith(s.postgres.nodes, c.id, node) }), members: mapWith(s.members, c.id, member) } };
  },

  'member.remove': (s, c) => {
    if (!s.members.has(c.id)) return unknownMember(s, c.id, 'id');
    const pg = s.postgres;
    if (pg.primary === c.id) {
      return reject('member_in_use', `id: ${q(c.id)} is the primary of generation ${pg.generation}; promote another node or fence it (pg.fence) first`, 'id');
    }
    if (pg.syncStandbys.includes(c.id)) {
      return reject(
        'member_in_use',
        `id: ${q(c.id)} is a synchronous standby (ANY ${pg.syncQuorum} of ${pg.syncStandbys.join(', ')}); take it out with pg.syncStandbys first`,
        'id',
      );
    }
    const placed = sortedValues(s.tenants).filter((t) => t.state !== 'deleted' && t.placement === c.id);
    if (placed.length > 0) {
      return reject(
        'member_in_use',
        `id: ${placed.length} tenant(s) are placed on ${q(c.id)} (first: ${q(placed[0]!.id)}); move them with tenant.place first`,
        'id',
      );
    }
    return { state: { ...withPg(s, { nodes: mapWithout(pg.nodes, c.id) }), members: mapWithout(s.members, c.id) } };
  },

  'member.health': (s, c) => {
    const m = s.members.get(c.id);
    if (m === undefined) return unknownMember(s, c.id, 'id');
    return { state: { ...s, members: mapWith(s.members, c.id, { ...m, health: { healthy: c.healthy, reportedAtMs: c.atMs, detail: c.detail } }) } };
  },

  'maintenance.set': (s, c) => ({ state: { ...s, maintenance: { paused: c.paused, reason: c.reason, atMs: c.atMs } } }),
};
