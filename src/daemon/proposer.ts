// Proposes state-machine commands from any node: directly on the Raft leader, else
// through the leader's admin API (POST /v1/internal/commands). Agents use it to
// report their Postgres and to renew the primary's lease. The answer is the state
// machine's result; a transport failure is an error whose outcome is unknown.

import { NotLeaderError, type RaftNode } from '../../raft/index.js';
import { encodeCommand, type ApplyResult, type Command } from '../../fsm/index.js';
import { PeerCallError, type PeerClient } from './peer-client.js';

export class LeaderProposer {
  /** Forwarded proposals in flight, by the leader they went to. */
  private readonly inFlight = new Map<AbortController, string>();

  constructor(
    private readonly raft: RaftNode<ApplyResult>,
    /** The calls to the leader's admin API. */
    private readonly peers: PeerClient,
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
    if (!leader || this.peers.addressOf(leader) === undefined) throw new NotLeaderError(leader);
    const ac = new AbortController();
    this.inFlight.set(ac, leader);
    try {
      const body = await this.peers.call(leader, { method: 'POST', path: '/v1/internal/commands', body: cmd, timeoutMs, signal: ac.signal });
      if (!isApplyResult(body))
        throw new Error(`proposing ${cmd.type} through ${leader}: the answer is not a state-machine result: ${JSON.stringify(body).slice(0, 200)}`);
      return body;
    } catch (e) {
      if (ac.signal.aborted)
        throw new Error(`proposing ${cmd.type} through ${leader}: abandoned, ${leader} is not the leader any more (the outcome is unknown)`);
      if (e instanceof PeerCallError) throw new Error(`proposing ${cmd.type} through ${e.message}`);
      throw e;
    } finally {
      this.inFlight.delete(ac);
    }
  }
}

/** The shape every ApplyResult has ({ ok: true, type, generation, ... } or { ok: false, error: { code, message } }); what a peer sends is checked, not cast. */
function isApplyResult(x: unknown): x is ApplyResult {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as { ok?: unknown; type?: unknown; generation?: unknown; error?: { code?: unknown; message?: unknown } };
  if (r.ok === true) return typeof r.type === 'string' && Number.isSafeInteger(r.generation);
  return r.ok === false && typeof r.error?.code === 'string' && typeof r.error.message === 'string';
}
