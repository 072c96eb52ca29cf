// AgentRpc over the peer client: the internal agent routes of the admin API
// (docs/admin-api.md). What a peer answers is checked before the controller
// acts on it: a malformed answer is an error naming the node, not a cast.

import type { AgentRpc } from '../controllers/agent-rpc.js';
import type { StepDownResult } from '../postgres/agent.js';
import { PeerCallError, type PeerClient } from './peer-client.js';

export class AgentRpcClient implements AgentRpc {
  constructor(private readonly peers: PeerClient) {}

  async stopReceiver(nodeId: string, req: { generation: number; renewalSeq: number }, timeoutMs: number): Promise<{ flushedLsn: string }> {
    const body = await this.peers.call(nodeId, { method: 'POST', path: '/v1/internal/pg/stop-receiver', body: req, timeoutMs });
    const flushedLsn = (body as { flushedLsn?: unknown } | null)?.flushedLsn;
    if (typeof flushedLsn !== 'string') throw malformed(nodeId, 'stop-receiver', body);
    return { flushedLsn };
  }

  async stepDown(nodeId: string, req: { generation: number; to: string }, timeoutMs: number): Promise<StepDownResult> {
    const body = await this.peers.call(nodeId, { method: 'POST', path: '/v1/internal/pg/step-down', body: req, timeoutMs });
    if (!isStepDownResult(body)) throw malformed(nodeId, 'step-down', body);
    return body;
  }
}

function malformed(nodeId: string, route: string, body: unknown): PeerCallError {
  return new PeerCallError(`${nodeId}: malformed ${route} answer: ${JSON.stringify(body).slice(0, 200)}`);
}

const STEP_DOWN_NUMBERS = ['generation', 'readOnlyMs', 'drainMs', 'catchUpMs', 'shutdownMs', 'releaseMs'] as const;

function isStepDownResult(x: unknown): x is StepDownResult {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  return typeof r['to'] === 'string' && typeof r['lastLsn'] === 'string' && typeof r['targetFlushedLsn'] === 'string' && STEP_DOWN_NUMBERS.every((k) => typeof r[k] === 'number');
}
