// The leader's side of GET /v1/internal/pg/replication: asks the primary's daemon
// for its live replication figures, within a deadline. Status must stay quick
// when the primary is down or partitioned; the caller then falls back to the
// LSNs the agents report.

import { request, type Dispatcher } from 'undici';
import { parseReplicationAnswer, type ReplicationAnswer } from '../postgres/replication-stats.js';

/** The internal route (docs/admin-api.md). */
export const REPLICATION_ROUTE = '/v1/internal/pg/replication';

export interface FetchReplicationOptions {
  /** host:port of the daemon's admin API. */
  api: string;
  /** The cluster's api.token. */
  token: string;
  /** Deadline on the whole exchange: connect, headers and body. */
  timeoutMs: number;
  /** Bound to this node's address (src/net/bind.ts); default undici's global one. */
  dispatcher?: Dispatcher | undefined;
}

/** The daemon's answer, checked. Throws an Error whose message says what went wrong (timeout, HTTP status, shape). */
export async function fetchReplication(o: FetchReplicationOptions): Promise<ReplicationAnswer> {
  if (!(o.timeoutMs > 0)) throw new RangeError(`fetchReplication: timeoutMs must be > 0, got ${o.timeoutMs}`);
  // One signal for the whole exchange: headersTimeout alone would not cover a
  // connect to a partitioned host, nor a body that trickles.
  const signal = AbortSignal.timeout(o.timeoutMs);
  const timedOut = (e: unknown): Error =>
    signal.aborted ? new Error(`no answer within ${o.timeoutMs} ms`) : new Error((e as Error).message);
  let r;
  try {
    r = await request(`http://${o.api}${REPLICATION_ROUTE}`, {
      method: 'GET',
      headers: { authorization: `Bearer ${o.token}` },
      signal,
      ...(o.dispatcher !== undefined ? { dispatcher: o.dispatcher } : {}),
    });
  } catch (e) {
    throw timedOut(e);
  }
  let text: string;
  try {
    text = await r.body.text();
  } catch (e) {
    throw timedOut(e);
  }
  if (r.statusCode !== 200) {
    let message = text.slice(0, 200);
    try {
      const err = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
      if (typeof err === 'string') message = err;
    } catch {
      /* not JSON: keep the raw text */
    }
    throw new Error(`HTTP ${r.statusCode}: ${message}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('the answer is not JSON');
  }
  return parseReplicationAnswer(body);
}
