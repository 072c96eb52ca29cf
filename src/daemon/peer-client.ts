// The one client for calls from this daemon to another node's admin API: a
// forwarded proposal, the failover's agent RPCs, the primary's live replication
// figures. One place decides the deadline (the whole exchange, not only the
// headers: a connect to a partitioned host or a trickling body counts), the
// bearer token, the source address (the dispatcher bound by src/net/bind.ts, so a
// partition of this node's address cuts these calls like its Raft traffic), and
// how a failure reads: "<node>: no answer within N ms", "<node>: HTTP 409: <the
// node's own message>".

import { request, type Dispatcher } from 'undici';
import type { ClusterState } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import { memberAddress } from '../member-address.js';

/** host:port of a node's admin API: its membership record, else the config file's. */
export function apiAddressOf(state: ClusterState, config: Pick<Config, 'nodes'>, nodeId: string): string | undefined {
  return memberAddress(state, config, nodeId, 'api');
}

/** A call that did not get a 200 answer. `status` is the HTTP status when there was one. */
export class PeerCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PeerCallError';
  }
}

export interface PeerCall {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** Deadline on the whole exchange: connect, headers and body. */
  timeoutMs: number;
  /** Abandons the call early (the error then says the call was abandoned). */
  signal?: AbortSignal;
}

export interface PeerClientOptions {
  /** The cluster's api.token. */
  token: string;
  /** Where node ids resolve to host:port (usually apiAddressOf over the live state). */
  addressOf: (nodeId: string) => string | undefined;
  /** Bound to this node's address; default undici's global one. Owned by the caller. */
  dispatcher?: Dispatcher | undefined;
}

export class PeerClient {
  constructor(private readonly o: PeerClientOptions) {}

  addressOf(nodeId: string): string | undefined {
    return this.o.addressOf(nodeId);
  }

  /** Calls node `nodeId`; resolves to the parsed JSON of a 200 answer, else throws PeerCallError. */
  async call(nodeId: string, c: PeerCall): Promise<unknown> {
    const api = this.o.addressOf(nodeId);
    if (api === undefined) throw new PeerCallError(`${nodeId}: no admin API address known`);
    return callApi({ api, token: this.o.token, dispatcher: this.o.dispatcher, label: nodeId }, c);
  }
}

/** One call to the admin API at `api` (host:port). `label`, when given, names the peer at the start of every error. */
export async function callApi(t: { api: string; token: string; dispatcher?: Dispatcher | undefined; label?: string }, c: PeerCall): Promise<unknown> {
  const who = t.label === undefined ? '' : `${t.label}: `;
  if (!(c.timeoutMs > 0)) throw new RangeError(`peer call ${c.path}: timeoutMs must be > 0, got ${c.timeoutMs}`);
  const deadline = AbortSignal.timeout(c.timeoutMs);
  const signal = c.signal === undefined ? deadline : AbortSignal.any([deadline, c.signal]);
  const failed = (e: unknown): PeerCallError => {
    if (c.signal?.aborted === true) return new PeerCallError(`${who}abandoned`);
    if (deadline.aborted) return new PeerCallError(`${who}no answer within ${c.timeoutMs} ms`);
    return new PeerCallError(`${who}${(e as Error).message}`);
  };
  let text: string;
  let status: number;
  try {
    const r = await request(`http://${t.api}${c.path}`, {
      method: c.method,
      headers: { authorization: `Bearer ${t.token}`, ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
      signal,
      ...(t.dispatcher !== undefined ? { dispatcher: t.dispatcher } : {}),
    });
    status = r.statusCode;
    text = await r.body.text();
  } catch (e) {
    throw failed(e);
  }
  if (status !== 200) throw new PeerCallError(`${who}HTTP ${status}: ${errorMessage(text)}`, status);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new PeerCallError(`${who}the answer to ${c.method} ${c.path} is not JSON: ${JSON.stringify(text.slice(0, 80))}`, status);
  }
}

/** The node's own error message from an API error body, else the start of the raw text. */
function errorMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: keep the raw text
  }
  return text.slice(0, 300);
}
