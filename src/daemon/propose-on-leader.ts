// Proposing a state-machine command on this node as the leader: what the admin
// API's writes and the leader-only controllers share. Made before the backend
// and the controllers, so neither needs the other to exist first.

import type { RaftNode } from '../../raft/index.js';
import { encodeCommand, type ApplyOk, type ApplyResult, type Command } from '../../fsm/index.js';
import { apiErrorForRejection } from '../api/fsm-errors.js';
import type { DaemonMetrics } from './metrics.js';

/** Resolves with the applied result; an FSM rejection throws an ApiError (400/404/409, src/api/fsm-errors.ts). */
export type ProposeCommand = (cmd: Command) => Promise<ApplyOk>;

export function proposeOnLeader(raft: RaftNode<ApplyResult>, metrics: Pick<DaemonMetrics, 'proposalSeconds'>): ProposeCommand {
  return async (cmd) => {
    const end = metrics.proposalSeconds.startTimer();
    const { result } = await raft.propose(encodeCommand(cmd));
    end();
    if (result.ok) return result;
    throw apiErrorForRejection(result.error);
  };
}
