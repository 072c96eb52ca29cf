// The few calls the failover controller makes to agents on other nodes (design
// brief: "stop your WAL receiver, report your LSN, promote"), as an interface.
// Controllers decide and propose; they do not speak HTTP. The daemon's wiring
// carries these calls (src/daemon/agent-rpc-client.ts). Each call is tagged with
// the generation, and the agent refuses it when the generation is stale.

import type { StepDownResult } from '../postgres/agent.js';

export interface AgentRpc {
  /** Fence a standby: stop its WAL receiver and report how far it flushed. renewalSeq: the renewal seen lapsing. */
  stopReceiver(nodeId: string, req: { generation: number; renewalSeq: number }, timeoutMs: number): Promise<{ flushedLsn: string }>;
  /** Planned switchover: the primary refuses writes, drains, waits for `to` to catch up, shuts down and releases its lease. */
  stepDown(nodeId: string, req: { generation: number; to: string }, timeoutMs: number): Promise<StepDownResult>;
}
