// slow-link: the links of one host (to both others), or one link, get 50 to
// 500 ms of added delay with jitter, both ways, through the in-process relays
// (harness/relay.ts). Leases and elections must cope with slow peers; a lease
// renewal that arrives late must not let two primaries overlap.

import type { Prng } from '../../raft/sim/prng.js';
import { others, pickTarget } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

export const slowLink: Nemesis = {
  name: 'slow-link',
  needs: { relays: true },
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const links = ctx.slowLinks;
    if (links === undefined) throw new Error('slow-link: the run was started without relays');
    const t = await pickTarget(ctx, rng);
    if (t === undefined) return undefined;
    const peers = rng.chance(0.5) ? others(ctx, t.id) : [rng.pick(others(ctx, t.id))];
    const baseMs = rng.int(50, 500);
    const jitterMs = rng.int(0, Math.floor(baseMs / 2));
    for (const p of peers) links.setDelay(t.id, p, baseMs, jitterMs);
    return {
      detail: { node: t.id, target: t.why, peers, baseMs, jitterMs },
      heal: async () => {
        for (const p of peers) links.setDelay(t.id, p, 0, 0);
        return { relayedConnections: links.relayedConnections };
      },
    };
  },
};
