// The leader's side of GET /v1/internal/pg/replication: asks the primary's daemon
// for its live replication figures, within a deadline. Status must stay quick
// when the primary is down or partitioned; the caller then falls back to the
// LSNs the agents report.

import type { Dispatcher } from 'undici';
import { callApi } from './peer-client.js';
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
  const body = await callApi({ api: o.api, token: o.token, dispatcher: o.dispatcher }, { method: 'GET', path: REPLICATION_ROUTE, timeoutMs: o.timeoutMs });
  return parseReplicationAnswer(body);
}
