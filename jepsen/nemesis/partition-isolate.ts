// partition-primary and partition-leader: the Postgres primary's host, or the
// Raft leader's, is cut off from the other two hosts (both directions, every
// kind of connection: see harness/firewall.ts). Clients still reach its proxy.

import type { Prng } from '../../raft/sim/prng.js';
import { nodeInRole, others, type Role } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext, NemesisName } from './types.js';

class IsolateRole implements Nemesis {
  constructor(
    readonly name: NemesisName,
    private readonly role: Role,
  ) {}

  async start(ctx: NemesisContext, _rng: Prng): Promise<ActiveFault | undefined> {
    const id = await nodeInRole(ctx, this.role);
    if (id === undefined) return undefined;
    const rules = await ctx.firewall.partition([[id], others(ctx, id)]);
    return { detail: { isolated: id, role: this.role, chain: rules.chain }, heal: async () => ({ ...(await rules.heal()) }) };
  }
}

export const partitionPrimary: Nemesis = new IsolateRole('partition-primary', 'primary');
export const partitionLeader: Nemesis = new IsolateRole('partition-leader', 'leader');
