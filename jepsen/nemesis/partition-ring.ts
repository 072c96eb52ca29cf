// partition-ring: a majority ring, where each host sees a different majority.
// With three hosts that takes one-way links: around a ring a -> b -> c -> a, each
// host hears only itself and its predecessor (connections a host opens to its
// predecessor are cut), so a sees {a, c}, b sees {a, b}, c sees {b, c}: three
// different majorities, and no host hears both others. Raft messages flow one
// way around the ring; a leader reaches one follower and hears only from the
// other, which is what makes this nasty for elections and for leases.

import type { Prng } from '../../raft/sim/prng.js';
import type { Link } from '../harness/firewall.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

export const partitionRing: Nemesis = {
  name: 'partition-ring',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault> {
    const ring = rng.shuffle([...ctx.cluster.ids]);
    // Each host may open connections to its successor only: cut host -> predecessor.
    const links: Link[] = ring.map((id, i) => [id, ring[(i + ring.length - 1) % ring.length]!] as const);
    const rules = await ctx.firewall.cut(links);
    return { detail: { ring, cut: links.map(([a, b]) => `${a}->${b}`), chain: rules.chain }, heal: async () => ({ ...(await rules.heal()) }) };
  },
};
