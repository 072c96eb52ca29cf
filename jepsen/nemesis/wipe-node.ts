// A node's disk is lost: every process of the host is killed (as kill-host does),
// its whole data directory (Raft log and Postgres) is removed, and at healing it
// starts again on the empty directory, as a node does whose volume was replaced.
// It must rejoin without a vote until a leader commits without it (I1), then
// come back as a standby cloned from the primary. A wiped primary is replaced by
// a failover first; its acknowledged writes are on a standby (I4).

import type { Prng } from '../../raft/sim/prng.js';
import { pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

export const wipeNode: Nemesis = {
  name: 'wipe-node',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pids = await ctx.cluster.killHost(t.id);
    const removed = await ctx.cluster.wipeData(t.id);
    return {
      detail: { node: t.id, target: t.why, pids, removed },
      heal: async () => {
        const t0 = performance.now();
        await ctx.cluster.start(t.id);
        return { restarted: t.id, restartMs: Math.round(performance.now() - t0), onEmptyDataDir: true };
      },
    };
  },
};
