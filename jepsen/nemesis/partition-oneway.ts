// partition-oneway: one host can no longer send to the others (its outgoing
// connections are cut) while it still hears them, or the reverse: it can send
// but not hear. Aimed at the primary, the leader or a random host.

import type { Prng } from '../../raft/sim/prng.js';
import type { Link } from '../harness/firewall.js';
import { others, pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

export const partitionOneway: Nemesis = {
  name: 'partition-oneway',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const direction = rng.chance(0.5) ? 'mute' : 'deaf';
    const links: Link[] = others(ctx, t.id).map((o) => (direction === 'mute' ? [t.id, o] : [o, t.id]) as Link);
    const rules = await ctx.firewall.cut(links);
    return {
      detail: { node: t.id, target: t.why, direction, cut: links.map(([a, b]) => `${a}->${b}`), chain: rules.chain },
      heal: async () => ({ ...(await rules.heal()) }),
    };
  },
};
