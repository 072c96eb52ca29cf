// Choosing whom a fault hits. Faults aimed at the primary or the Raft leader find
// the interesting bugs; a random node keeps the rest honest.

import type { Prng } from '../../raft/sim/prng.js';
import type { NemesisContext } from './types.js';

export type Role = 'primary' | 'leader';

/** The node currently in `role`, as a live node sees it (stale read: the harness must not wait on a quorum). */
export async function nodeInRole(ctx: NemesisContext, role: Role): Promise<string | undefined> {
  const r = await ctx.cluster.roles();
  const id = role === 'primary' ? r?.primary : r?.leader;
  return id ?? undefined;
}

/** The primary (40%), the Raft leader (30%) or any node (30%); only nodes whose daemon runs. */
export async function pickTarget(ctx: NemesisContext, rng: Prng): Promise<{ id: string; why: string } | undefined> {
  const x = rng.next();
  const running = ctx.cluster.ids.filter((id) => ctx.cluster.isRunning(id));
  if (running.length === 0) return undefined;
  const role: Role | undefined = x < 0.4 ? 'primary' : x < 0.7 ? 'leader' : undefined;
  if (role !== undefined) {
    const id = await nodeInRole(ctx, role);
    if (id !== undefined && running.includes(id)) return { id, why: role };
  }
  return { id: rng.pick(running), why: 'random' };
}

export function others(ctx: NemesisContext, id: string): string[] {
  return ctx.cluster.ids.filter((x) => x !== id);
}
