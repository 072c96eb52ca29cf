// Process faults: kill -9 a daemon, kill -9 a Postgres, kill -9 a whole host,
// pause a daemon (SIGSTOP, then SIGCONT). Each is aimed at the primary, the Raft
// leader or a random host (targets.ts).

import type { Prng } from '../../raft/sim/prng.js';
import { pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

/** Restarts a daemon the fault stopped; how long until its /health answered. */
export async function restart(ctx: NemesisContext, id: string): Promise<{ restarted: string; restartMs: number }> {
  const t0 = performance.now();
  await ctx.cluster.start(id);
  return { restarted: id, restartMs: Math.round(performance.now() - t0) };
}

/** kill -9 the daemon; its Postgres is stopped by the daemon's death guard. Healed by a restart. */
export const killDaemon: Nemesis = {
  name: 'kill-daemon',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pid = await ctx.cluster.killDaemon(t.id);
    return { detail: { node: t.id, target: t.why, pid: pid ?? null }, heal: () => restart(ctx, t.id) };
  },
};

/** kill -9 the postmaster; the daemon's agent notices and restarts it (healing only checks that it did). */
export const killPostgres: Nemesis = {
  name: 'kill-postgres',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pid = ctx.cluster.killPostgres(t.id);
    if (pid === undefined) return undefined;
    return {
      detail: { node: t.id, target: t.why, pid },
      heal: async () => {
        const now = ctx.cluster.postmasterPid(t.id);
        return { node: t.id, postgresRunningAgain: now !== undefined && now !== pid };
      },
    };
  },
};

/** Every process of the host at once (daemon, Postgres, its backends), as a power cut would. Healed by a restart. */
export const killHost: Nemesis = {
  name: 'kill-host',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pids = await ctx.cluster.killHost(t.id);
    return { detail: { node: t.id, target: t.why, pids }, heal: () => restart(ctx, t.id) };
  },
};

/**
 * SIGSTOP the daemon: Raft, the agent and the proxy of that host freeze, its
 * Postgres keeps running and keeps its sessions. The daemon cannot fence its own
 * Postgres while stopped (I5 relies on fencing before the lease lapses), so what
 * keeps a paused primary from taking writes is the standbys leaving it (no
 * synchronous acknowledgement) and the proxies routing elsewhere. SIGCONT heals.
 */
export const pauseDaemon: Nemesis = {
  name: 'pause-daemon',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pid = ctx.cluster.pauseDaemon(t.id);
    if (pid === undefined) return undefined;
    return {
      detail: { node: t.id, target: t.why, pid },
      heal: async () => {
        ctx.cluster.resumeDaemon(t.id);
        return { resumed: t.id };
      },
    };
  },
};
