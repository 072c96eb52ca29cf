// Keeps the state machine's member records in step with Raft membership, on the
// leader: the bootstrap voters get their records (addresses from the config, so
// every node need not agree on a bootstrap snapshot's bytes), records of nodes
// no longer in the Raft configuration are removed, and each member's health is
// set from how recently the leader heard from it.

import type { RaftNode } from '../../raft/index.js';
import type { ApplyOk, ApplyResult, Command, ClusterStateMachine } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';

const INTERVAL_MS = 250;

export class MembershipController implements Controller {
  readonly name = 'membership';

  constructor(
    private readonly config: Config,
    private readonly raft: RaftNode<ApplyResult>,
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
  ) {}

  /** A member the leader has not heard from for this long is reported unhealthy. */
  private get unhealthyAfterMs(): number {
    return this.config.raft.tickMs * this.config.raft.electionTicks * 3;
  }

  async run(ctx: ControllerContext): Promise<void> {
    while (!ctx.signal.aborted) {
      await this.reconcile(ctx);
      await sleep(INTERVAL_MS, ctx.signal);
    }
  }

  private async reconcile(ctx: ControllerContext): Promise<void> {
    const rs = this.raft.status();
    const members = this.fsm.state.members;
    const raftMembers = new Set([...rs.voters, ...rs.learners]);
    for (const id of rs.voters) {
      if (members.has(id) || ctx.signal.aborted) continue;
      const n = this.config.nodes.find((x) => x.id === id);
      if (!n) continue; // added at runtime: its record came with `members add`
      await this.propose({ v: 1, type: 'member.add', id, addresses: { raft: n.raft, api: n.api, proxy: n.proxy, postgres: n.postgres }, atMs: Date.now() });
      ctx.log({ level: 'info', msg: 'recorded member', id });
    }
    for (const id of members.keys()) {
      if (raftMembers.has(id) || ctx.signal.aborted) continue;
      // Only a voter or learner that left the Raft configuration; a member added
      // by `members add` is recorded before it joins Raft, so give it time.
      const m = members.get(id)!;
      if (Date.now() - m.addedAtMs < 60_000) continue;
      await this.propose({ v: 1, type: 'member.remove', id, atMs: Date.now() });
      ctx.log({ level: 'info', msg: 'removed record of a node that left the cluster', id });
    }
    const contact = new Map(rs.peers.map((p) => [p.id, p.lastContactMs]));
    for (const [id, m] of this.fsm.state.members) {
      if (ctx.signal.aborted) return;
      const lastContactMs = id === rs.id ? 0 : contact.get(id);
      if (lastContactMs === undefined) continue;
      const healthy = lastContactMs < this.unhealthyAfterMs;
      if (healthy !== m.health.healthy) {
        await this.propose({ v: 1, type: 'member.health', id, healthy, detail: healthy ? null : `no contact for ${lastContactMs} ms`, atMs: Date.now() });
        ctx.log({ level: healthy ? 'info' : 'warn', msg: healthy ? 'member reachable' : 'member unreachable', id, lastContactMs });
      }
    }
  }
}
