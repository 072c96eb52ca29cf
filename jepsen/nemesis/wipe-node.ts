// A node's disk is lost: every process of the host is killed (as kill-host does),
// its whole data directory (Raft log and Postgres) is removed, and at healing it
// starts again on the empty directory, as a node does whose volume was replaced.
// It must rejoin without a vote until a leader commits without it (I1), then
// come back as a standby cloned from the primary. A wiped primary is replaced by
// a failover first; its acknowledged writes are on a standby (I4).
//
// One lost disk at a time: a wipe waits until the cluster has fully recovered
// from the last one (every standby streaming again). A second wipe before the
// first node is re-cloned loses two copies of the data at once, a double
// failure that I4 does not cover; the cluster then refuses automatic failover,
// as it must, and the run would only show that.

import type { Prng } from '../../raft/sim/prng.js';
import { restart } from './kill.js';
import { pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

/** How long a wipe waits for the cluster to recover from the previous fault before it is skipped. */
const RECOVERED_WAIT_MS = 60_000;

export const wipeNode: Nemesis = {
  name: 'wipe-node',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    let waitedMs: number;
    try {
      waitedMs = Math.round(await ctx.cluster.waitHealthy(RECOVERED_WAIT_MS));
    } catch (e) {
      ctx.log(`wipe-node skipped: the cluster did not recover from the previous fault: ${(e as Error).message}`);
      return undefined;
    }
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const pids = await ctx.cluster.killHost(t.id);
    const removed = await ctx.cluster.wipeData(t.id);
    return {
      detail: { node: t.id, target: t.why, pids, removed, waitedForRecoveryMs: waitedMs },
      heal: async () => ({ ...(await restart(ctx, t.id)), onEmptyDataDir: true }),
    };
  },
};
