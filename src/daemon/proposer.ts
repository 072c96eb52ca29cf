// Proposes state-machine commands from any node: directly on the Raft leader, else
// through the leader's admin API (POST /v1/internal/commands). Agents use it to
// report their Postgres and to renew the primary's lease. The answer is the state
// machine's result; a transport failure is an error whose outcome is unknown.

import { request, type Dispatcher } from 'undici';
import { NotLeaderError, type RaftNode } from '../../raft/index.js';
import { encodeCommand, type ApplyResult, type Command, type ClusterStateMachine } from '../../fsm/index.js';
import type { Config } from '../config/index.js';

export class LeaderProposer {
  /** Forwarded proposals in flight, by the leader they went to. */
  private readonly inFlight = new Map<AbortController, string>();

  constructor(
    private readonly raft: RaftNode<ApplyResult>,
    private readonly fsm: ClusterStateMachine,
    private readonly config: Config,
    /** For the calls to the leader: bound to this node's address (src/net/bind.ts). Owned by the caller. */
    private readonly dispatcher?: Dispatcher,
  ) {
    // A proposal sent to a leader that is not the leader any more (paused,
    // partitioned) would otherwise wait out its whole timeout, and what queues
    // behind it with it: a new primary's first report, which its standbys wait
    // for before they follow it, while its commits wait for them (a measured 4 s
    // of write unavailability under jepsen's pause-daemon). Its outcome is
    // unknown either way; the caller retries with the new leader.
    raft.on('leader', () => {
      const leader = this.raft.leaderId();
      for (const [ac, to] of this.inFlight) if (to !== leader) ac.abort();
    });
  }

  async propose(cmd: Command, timeoutMs = 5_000): Promise<ApplyResult> {
    if (this.raft.isLeader()) return (await this.raft.propose(encodeCommand(cmd), timeoutMs)).result;
    const leader = this.raft.leaderId();
    const api = leader ? (this.fsm.state.members.get(leader)?.addresses.api ?? this.config.nodes.find((n) => n.id === leader)?.api) : undefined;
    if (!leader || !api) throw new NotLeaderError(leader);
    const ac = new AbortController();
    this.inFlight.set(ac, leader);
    try {
      const r = await request(`http://${api}/v1/internal/commands`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.config.api.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(cmd),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: ac.signal,
        ...(this.dispatcher !== undefined ? { dispatcher: this.dispatcher } : {}),
      });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`proposing ${cmd.type} through ${leader} failed: HTTP ${r.statusCode} ${text.slice(0, 200)}`);
      return JSON.parse(text) as ApplyResult;
    } catch (e) {
      if (ac.signal.aborted) throw new Error(`proposing ${cmd.type} through ${leader}: abandoned, ${leader} is not the leader any more (the outcome is unknown)`);
      throw e;
    } finally {
      this.inFlight.delete(ac);
    }
  }
}
