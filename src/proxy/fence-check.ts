// The fence check, and what a lost server means for its transaction
// (docs/proxy.md, Failover). The session's effects (moving the window, passing
// the error on) stay in session.ts; the questions and their answers are here.

import type { ErrorFields } from './protocol/backend.js';
import type { ErrorSpec } from './protocol/write.js';
import type { RouteTarget, Router } from './router.js';
import type { ServerConnection } from './server-conn.js';

/** Server errors that say the server session ended without running what it was sent (its backend was terminated or is shutting down). */
export const ENDED_UNRUN_CODES = new Set(['57P01', '57P02', '57P03']);
/** idle_session_timeout: the server ended a session that was idle outside a transaction. */
export const IDLE_SESSION_TIMEOUT = '57P05';

/** Where a server's read-only comes from: recovery, off (writable), or the setting's source. */
const READ_ONLY_SOURCE_SQL =
  "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN 'recovery' WHEN setting = 'off' THEN 'off' ELSE source END FROM pg_catalog.pg_settings WHERE name = 'default_transaction_read_only'";

/**
 * What a 25006 (read-only) in the retry window on the primary was:
 * - 'fenced': ogel's fence (ALTER SYSTEM: the `configuration file` source), a
 *   promotion not finished (recovery), or no answer: the window runs again on
 *   the next writable server;
 * - 'rerun-here': the server is writable now (a fence lifted since), or the
 *   block was aborted: the window runs again here, once, and a 25006 then is
 *   the client's own;
 * - 'own': the database's, role's or session's own setting: the client gets it.
 */
export type FenceVerdict = 'fenced' | 'rerun-here' | 'own';

export function fenceVerdict(failed: boolean, source: string | null, aborted: boolean): FenceVerdict {
  // 'recovery': the view already names this node the primary while it is still
  // being promoted (its lease renewal can commit before pg_promote is done).
  if (failed || source === 'configuration file' || source === 'recovery') return 'fenced';
  // 'off': writable now, so the refusal came from a fence lifted since (a new
  // primary is unfenced just after the view calls it writable), or from the
  // transaction itself (BEGIN READ ONLY): one more run here tells them apart.
  if (aborted || source === 'off') return 'rerun-here';
  return 'own';
}

/**
 * Asks the (idle or aborted) server where its read-only comes from. An aborted
 * block (status E) is rolled back first: nothing else runs there. `done` gets
 * the verdict unless the connection is no longer `stillOurs()`.
 */
export function askFence(conn: ServerConnection, aborted: boolean, stillOurs: () => boolean, done: (verdict: FenceVerdict) => void): void {
  let source: string | null = null;
  conn.runInternal(
    (aborted ? 'ROLLBACK;' : '') + READ_ONLY_SOURCE_SQL,
    (err) => {
      if (!stillOurs()) return;
      done(fenceVerdict(err !== null, source, aborted));
    },
    (v) => (source = v),
  );
}

/** The view no longer names this server for the session: the cluster moved (a new generation, no writable primary, another primary). */
export function viewMoved(router: Router, t: RouteTarget): boolean {
  if (router.generation() !== t.generation) return true;
  if (!t.primary) return false;
  const r = router.route(false);
  return r === 'hold' || r.node !== t.node || r.generation !== t.generation;
}

/** The error for a transaction whose server was lost, or that could not be run again elsewhere. */
export function lostTransaction(cause: string): ErrorSpec {
  return {
    code: '08006',
    message: `${cause}: the node failed or is being switched over (failover); the transaction did not complete, or, if COMMIT was in flight, its outcome is unknown`,
    hint: 'retry the transaction: the next one goes to the current primary',
  };
}

/** The error for a transaction whose server ended the session for a reason of its own (an operator, a timeout): the server's, as directly. */
export function endedByServer(t: RouteTarget, fatal: ErrorFields): ErrorSpec {
  return {
    code: fatal.code || '08006',
    message: fatal.message,
    detail: `the server ${t.node} ended the session running this transaction; the transaction did not complete, or, if COMMIT was in flight, its outcome is unknown`,
  };
}

export function describeTarget(t: RouteTarget): string {
  return `${t.primary ? 'the primary' : 'the standby'} ${t.node} (generation ${t.generation})`;
}
