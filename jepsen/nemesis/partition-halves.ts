// partition-halves: the hosts are shuffled and split into a minority and a
// majority (with three hosts: one against two), cut both ways.

import type { Prng } from '../../raft/sim/prng.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

export const partitionHalves: Nemesis = {
  name: 'partition-halves',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault> {
    const ids = rng.shuffle([...ctx.cluster.ids]);
    const half = Math.floor(ids.length / 2);
    const groups = [ids.slice(0, half), ids.slice(half)];
    const rules = await ctx.firewall.partition(groups);
    return { detail: { groups, chain: rules.chain }, heal: async () => ({ ...(await rules.heal()) }) };
  },
};
