// Who ended a server session (docs/proxy.md, Failover): the cluster or someone else.
//
// A backend terminated with FATAL 57P01 (or 57P02/57P03) looks the same whether
// ogel's fence ended it (endClientSessions after ALTER SYSTEM made the server
// read-only), a clean shutdown did, or an operator ran pg_terminate_backend() to
// stop a query. Only the first two may run the transaction again elsewhere: an
// operator's termination must reach the client, as it would directly, or a
// runaway query could never be stopped. When the view has not changed, the
// proxy asks the server itself, on a fresh connection: a server that refuses
// the login (a fenced node's pg_hba.conf, "shutting down", gone) or answers that
// it is fenced or in recovery was taken away by the cluster; a server that
// answers as a writable primary had one of its sessions ended by someone.

import { loginServer } from './backend-login.js';
import type { Pool } from './pool.js';
import type { ServerConnection } from './server-conn.js';

export type TerminationCause = 'cluster' | 'operator';

/** 'cluster' for a server in recovery or read-only by ALTER SYSTEM (ogel's fence: postgres/instance.ts closeToWrites). */
const CAUSE_SQL =
  "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() OR (setting = 'on' AND source = 'configuration file') THEN 'cluster' ELSE 'operator' END " +
  "FROM pg_catalog.pg_settings WHERE name = 'default_transaction_read_only'";

/** Asks the pool's server (on a connection of its own, closed after) whether it is fenced, shutting down or gone. */
export async function terminationCause(pool: Pool): Promise<TerminationCause> {
  let conn: ServerConnection | undefined;
  try {
    conn = await loginServer(pool, pool.o);
  } catch {
    return 'cluster';
  }
  const probe = conn;
  return new Promise((resolve) => {
    let answer: string | null = null;
    probe.runInternal(
      CAUSE_SQL,
      (err) => {
        probe.close();
        resolve(err === null && answer === 'operator' ? 'operator' : 'cluster');
      },
      (v) => (answer = v),
    );
  });
}
