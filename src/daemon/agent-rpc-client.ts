// AgentRpc over the peer client: the internal agent routes of the admin API
// contract (src/api/contract). What a peer answers is parsed with the route's
// answer schema before the controller acts on it: a malformed answer is an
// error naming the node and the field, not a cast.

import type { z } from 'zod';
import { ROUTES, type RouteKey } from '../api/contract/index.js';
import type { AgentRpc } from '../controllers/agent-rpc.js';
import type { StepDownResult } from '../postgres/agent.js';
import { PeerCallError, type PeerClient } from './peer-client.js';

export class AgentRpcClient implements AgentRpc {
  constructor(private readonly peers: PeerClient) {}

  stopReceiver(nodeId: string, req: { generation: number; renewalSeq: number }, timeoutMs: number): Promise<{ flushedLsn: string }> {
    return callRoute(this.peers, nodeId, 'POST /v1/internal/pg/stop-receiver', req, timeoutMs);
  }

  stepDown(nodeId: string, req: { generation: number; to: string }, timeoutMs: number): Promise<StepDownResult> {
    return callRoute(this.peers, nodeId, 'POST /v1/internal/pg/step-down', req, timeoutMs);
  }
}

type Answer<K extends RouteKey> = (typeof ROUTES)[K] extends { response: infer S extends z.ZodType } ? z.infer<S> : never;

/** Calls a route of the contract on node `nodeId` and parses the answer with the route's schema. */
export async function callRoute<K extends RouteKey>(peers: PeerClient, nodeId: string, key: K, body: unknown, timeoutMs: number): Promise<Answer<K>> {
  const route = ROUTES[key];
  const answer = await peers.call(nodeId, { method: route.method === 'GET' ? 'GET' : 'POST', path: route.path, body, timeoutMs });
  const schema = (route as { response?: z.ZodType }).response;
  if (schema === undefined) throw new Error(`callRoute: ${key} has no JSON answer in the contract`);
  const r = schema.safeParse(answer);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PeerCallError(`${nodeId}: malformed answer to ${key}: field '${issue.path.join('.')}' ${issue.message}`);
  }
  return r.data as Answer<K>;
}
