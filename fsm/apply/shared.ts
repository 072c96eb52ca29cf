// What the domains' handlers share: the step a handler returns, and the lookups and
// rejections more than one domain makes (the generation check: pg.*, lease.* and
// wal.*). Imported by apply/{cluster,postgres,tenants,storage}.ts.

import type { CommandOf, CommandType } from '../commands.js';
import { isRejection, reject, type Rejection } from '../errors.js';
import type { ClusterState, PostgresState, Tenant } from '../state.js';

interface Changed {
  readonly state: ClusterState;
  readonly renewalSeq?: number;
  readonly existed?: boolean;
  readonly cancelled?: boolean;
}

export type Step = Changed | Rejection;
export type Handler<T extends CommandType> = (s: ClusterState, c: CommandOf<T>) => Step;

export const q = (s: string): string => JSON.stringify(s);

export function withPg(s: ClusterState, pg: Partial<PostgresState>): ClusterState {
  return { ...s, postgres: { ...s.postgres, ...pg } };
}

/** Exactly the current generation, for commands decided under it. */
export function checkGeneration(s: ClusterState, generation: number): Rejection | null {
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

export function unknownMember(s: ClusterState, id: string, field: string): Rejection {
  const known = [...s.members.keys()].sort();
  return reject('unknown_member', `${field}: ${q(id)} is not a member; members are ${known.length ? known.join(', ') : '(none)'}`, field);
}

export function findTenant(s: ClusterState, id: string, field = 'id'): Tenant | Rejection {
  const t = s.tenants.get(id);
  if (t === undefined) return reject('unknown_tenant', `${field}: no tenant has id ${q(id)}`, field);
  return t;
}

export function liveTenant(s: ClusterState, id: string, field = 'id'): Tenant | Rejection {
  const t = findTenant(s, id, field);
  if (isRejection(t)) return t;
  if (t.state === 'deleted') return reject('tenant_deleted', `${field}: tenant ${q(id)} (${t.name}) was deleted; only tenant.purge applies to it`, field);
  return t;
}

export function full(kind: string, count: number, limit: number): Rejection {
  return reject('limit_reached', `there are ${count} ${kind}, the most allowed (${limit}); delete some first`);
}
