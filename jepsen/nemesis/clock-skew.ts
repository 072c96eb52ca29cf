// clock-skew: one host's wall clock jumps by up to two minutes, forwards or
// backwards (libfaketime: every daemon runs under it when this nemesis is in
// the run, each with its own offset file; see harness/cluster.ts). Only the
// wall clock: ogel promises leases measured on each node's monotonic clock
// (I5), so a wall-clock step on any host, the leader's included, must not move
// a lease or a failover. Healed by setting the offset back to zero (a second
// jump, the other way).

import type { Prng } from '../../raft/sim/prng.js';
import { pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';
import { setTimeout as sleep } from 'node:timers/promises';

const OFFSET_MAX_S = 120;
/** libfaketime re-reads its file about once a second. */
const TAKES_EFFECT_MS_MAX = 3_000;

/** Waits (bounded) until the host's clock shows the offset; what it showed last (null: no answer, e.g. the daemon is down). */
async function observe(ctx: NemesisContext, id: string, offsetS: number): Promise<number | null> {
  const deadline = performance.now() + TAKES_EFFECT_MS_MAX;
  let seen: number | undefined;
  while (performance.now() < deadline) {
    seen = await ctx.cluster.wallClockOffsetS(id);
    if (seen !== undefined && Math.abs(seen - offsetS) <= 1) return seen;
    await sleep(100);
  }
  return seen ?? null;
}

export const clockSkew: Nemesis = {
  name: 'clock-skew',
  needs: { fakeClock: true },
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const offsetS = rng.int(5, OFFSET_MAX_S) * (rng.chance(0.5) ? 1 : -1);
    ctx.cluster.setClockOffset(t.id, offsetS);
    const observedS = await observe(ctx, t.id, offsetS);
    return {
      detail: { node: t.id, target: t.why, offsetS, observedS },
      heal: async () => {
        ctx.cluster.setClockOffset(t.id, 0);
        return { node: t.id, offsetS: 0, observedS: await observe(ctx, t.id, 0) };
      },
    };
  },
};
