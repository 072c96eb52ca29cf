// Giving a server connection back so the next client sees none of this one's
// session state.
//
// Transaction mode: after a transaction whose text may have changed a session
// setting (requests.ts maySetSession), the proxy reads what the server
// connection now carries at session level before anyone else gets it. The
// client then wants exactly those settings (they follow it to its next
// connections through the parameter sync), and the connection is brought back
// to what the next client wants by that same sync. A failed read closes the
// connection: its state is unknown. One round trip, only after such a
// transaction.

import type { ServerAcquirer } from './server-acquire.js';
import type { ServerConnection } from './server-conn.js';

/** The settings set at session level on a connection (by SET, set_config or the proxy's own sync), one 'name=value' per row. */
const SESSION_SETTINGS_SQL = "SELECT name || '=' || setting FROM pg_catalog.pg_settings WHERE source = 'session'";

/** Reads `conn`'s session settings into it and into the client's wishes, then gives it back to its pool (or closes it); calls done after. */
export function readBackSettings(conn: ServerConnection, acq: ServerAcquirer, done: () => void): void {
  const session = new Map<string, string>();
  conn.runInternal(
    SESSION_SETTINGS_SQL,
    (err) => {
      if (err !== null || conn.closed) conn.close();
      else {
        conn.noteSessionSettings(session);
        acq.adopt(session, conn.reported);
        conn.pool.release(conn);
      }
      done();
    },
    (row) => {
      const eq = row?.indexOf('=') ?? -1;
      if (eq > 0) session.set(row!.slice(0, eq), row!.slice(eq + 1));
    },
  );
}

/**
 * A client leaves while linked to `conn`. Mid-transaction (not `betweenTx`), or
 * a connection already closed: it is closed. Session mode: DISCARD ALL.
 * Transaction mode: its settings are read back (and so reset by the next
 * client's sync) when it may have changed some.
 */
export function giveBackAtClose(
  conn: ServerConnection,
  betweenTx: boolean,
  mode: 'session' | 'transaction',
  maySetSession: boolean,
  acq: ServerAcquirer,
): void {
  if (!betweenTx || conn.closed) return conn.close();
  // Paused while the client could not keep up: whoever uses it next must hear it.
  conn.socket.resume();
  if (mode === 'transaction') {
    if (maySetSession) readBackSettings(conn, acq, () => {});
    else conn.pool.release(conn);
    return;
  }
  conn.runInternal('DISCARD ALL', (err) => {
    if (err) return conn.close();
    conn.prepared.clear();
    conn.setByProxy.clear();
    conn.paramsSig = null;
    conn.pool.release(conn);
  });
}
