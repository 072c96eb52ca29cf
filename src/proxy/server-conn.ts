// One server connection of a pool (docs/proxy.md, Pooling): its socket and read
// buffer, what the server reported (parameters, keys), the prepared statements
// present on it, and the proxy-internal statements it runs between
// transactions (parameter sync, the session-mode reset). Logging in is
// backend-login.ts's job; pooling is pool.ts's.
//
// A connection belongs to at most one client session at a time (its `handler`).
// While idle, anything the server sends (a notification for a LISTEN left behind,
// a notice, a FATAL when it is terminated) is handled here.

import type net from 'node:net';
import { Framer } from './protocol/framer.js';
import {
  B_DATA_ROW,
  B_ERROR,
  B_PARAMETER_STATUS,
  B_READY_FOR_QUERY,
  isFatal,
  parseErrorFields,
  parseParameterStatus,
  readyStatus,
  SERVER_MESSAGE_BYTES_MAX,
  type ErrorFields,
} from './protocol/backend.js';
import { query, TERMINATE } from './protocol/write.js';
import type { RouteTarget } from './router.js';
import { PASSTHROUGH_PARAMS } from './identity.js';
import { quoteIdent, quoteLiteral } from '../postgres/query.js';
import type { Pool } from './pool.js';

/** Parameters a client may set at startup (docs/proxy.md); kept in step on each server connection it uses. */
export const TRACKED_PARAMS: ReadonlySet<string> = new Set(PASSTHROUGH_PARAMS);

/** An error from a server connection: `transient` ones (the server is down, refusing, fenced, starting) are worth a retry after a view change. */
export class ServerError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly transient: boolean,
    readonly fields?: ErrorFields,
  ) {
    super(message);
  }
}

/** Whoever uses a connection: gets its bytes and its end. */
export interface ServerHandler {
  onServerData(conn: ServerConnection, chunk: Buffer): void;
  onServerClose(conn: ServerConnection, error: ServerError | null): void;
}

let nextConnId = 1;

/** A server connection's read buffer (reads larger than this arrive in several chunks). */
const SERVER_READ_BUFFER_BYTES = 32 * 1024;

export class ServerConnection {
  readonly id = nextConnId++;
  readonly framer = new Framer(SERVER_MESSAGE_BYTES_MAX);
  /** ParameterStatus values the server reported, kept current. */
  readonly reported = new Map<string, string>();
  /** Session settings not reported by the server (search_path, statement_timeout, ...) as the proxy last set or read them. */
  readonly setByProxy = new Map<string, string>();
  /** Reported values right after login: a parameter that differs is "dirty" and reset for a client that did not ask for it. */
  initial: ReadonlyMap<string, string> = new Map();
  processId = 0;
  secretKey = 0;
  handler: ServerHandler | null = null;
  /** Server-side prepared statement names present on this connection (prepared.ts). */
  readonly prepared = new Set<string>();
  lastUsedMs = performance.now();
  /** The session parameters this connection was last brought to (Session's signature); null after any change the server reported. */
  paramsSig: string | null = null;
  closed = false;
  /** A write was refused as read-only on this connection to the primary (a fence, maybe): closed instead of pooled. */
  readOnlySeen = false;
  /** Transactions served (stats). */
  uses = 0;

  /**
   * What the socket reads into (its `onread` buffer, reused for every read): a
   * chunk is handled before the next read. Replaced (renewReadBuffer) when a
   * write still references it after the handler returns.
   */
  rbuf: Buffer = Buffer.allocUnsafeSlow(SERVER_READ_BUFFER_BYTES);
  /** Until login is done, bytes go here instead of to the handler. */
  onLogin: ((chunk: Buffer) => void) | null = null;
  socket!: net.Socket;

  constructor(readonly pool: Pool) {}

  /** The socket calls this with each read (a view of rbuf, valid until it returns). */
  onRead(chunk: Buffer): void {
    if (this.onLogin !== null) this.onLogin(chunk);
    else if (this.handler !== null) this.handler.onServerData(this, chunk);
    else this.idleData(chunk);
  }

  /** The last read's bytes are still referenced (a client write queued, not yet sent): the next reads go to fresh memory. */
  renewReadBuffer(): void {
    this.rbuf = Buffer.allocUnsafeSlow(SERVER_READ_BUFFER_BYTES);
  }

  /** The target's address, for cancel requests. */
  get target(): RouteTarget {
    return this.pool.target;
  }

  write(b: Buffer): boolean {
    return this.socket.write(b);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.destroyed) this.socket.end(TERMINATE);
    this.socket.destroy();
    this.pool.forget(this);
  }

  /** Handles what an idle connection receives: only asynchronous messages are expected. */
  idleData(chunk: Buffer): void {
    const f = this.framer;
    f.feed(chunk, true);
    while (f.next()) {
      const t = f.type;
      if (t === B_PARAMETER_STATUS) this.noteParameter(f.buf, f.start, f.end);
      else if (t === B_ERROR) {
        // Terminated while idle (FATAL 57P01 on a fence): it is gone.
        this.close();
        return;
      }
      // NotificationResponse and NoticeResponse with no client: dropped.
    }
    if (f.error) this.close();
  }

  noteParameter(buf: Buffer, start: number, end: number): [string, string] | null {
    const p = parseParameterStatus(buf, start, end);
    if (p) {
      this.reported.set(p[0], p[1]);
      this.paramsSig = null;
    }
    return p;
  }

  /**
   * The statements that bring this connection's tracked parameters to what a
   * client wants: set_config for each that differs, RESET for those another client
   * changed and this one did not ask for. Empty when nothing differs (the usual case).
   */
  paramSync(wanted: ReadonlyMap<string, string>): string {
    let sql = '';
    for (const [name, value] of wanted) {
      const have = this.reported.has(name) ? this.reported.get(name) : this.setByProxy.get(name);
      // set_config parses the value as a startup parameter is parsed: a list
      // (search_path '"$user", public') stays a list, where SET ... TO 'a, b' would name one schema "a, b".
      if (have !== value) sql += `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false);`;
    }
    for (const name of new Set([...TRACKED_PARAMS, ...this.setByProxy.keys()])) {
      if (wanted.has(name)) continue;
      const dirty = this.reported.has(name) ? this.reported.get(name) !== this.initial.get(name) : this.setByProxy.has(name);
      if (dirty) sql += `RESET ${quoteIdent(name)};`;
    }
    return sql;
  }

  /**
   * The session-level settings read back from the server (pg_settings, source
   * 'session') after a client may have changed some: the truth for the ones the
   * server does not report.
   */
  noteSessionSettings(session: ReadonlyMap<string, string>): void {
    this.setByProxy.clear();
    for (const [name, value] of session) if (!this.reported.has(name)) this.setByProxy.set(name, value);
    this.paramsSig = null;
  }

  /** Bookkeeping after a successful paramSync: the values not reported by the server. */
  noteSynced(wanted: ReadonlyMap<string, string>): void {
    for (const name of [...this.setByProxy.keys()]) if (!wanted.has(name)) this.setByProxy.delete(name);
    for (const [name, v] of wanted) if (!this.initial.has(name) && !this.reported.has(name)) this.setByProxy.set(name, v);
  }

  /**
   * Runs proxy-internal SQL (parameter sync, the session-mode reset) and swallows
   * its results; calls done once the server is ready again. Only on a connection
   * that is between transactions and owned by the caller.
   */
  runInternal(sql: string, done: (err: ServerError | null) => void, onValue?: (value: string | null) => void): void {
    const prev = this.handler;
    let failure: ServerError | null = null;
    const finish = (err: ServerError | null) => {
      this.handler = prev;
      done(err);
    };
    this.handler = {
      onServerData: (_c, chunk) => {
        const f = this.framer;
        f.feed(chunk, true);
        while (f.next()) {
          const t = f.type;
          if (t === B_PARAMETER_STATUS) this.noteParameter(f.buf, f.start, f.end);
          else if (t === B_DATA_ROW && onValue) onValue(firstColumn(f.buf, f.start, f.end));
          else if (t === B_ERROR) {
            const e = parseErrorFields(f.buf, f.start, f.end);
            failure = new ServerError(e.message, e.code, isFatal(e.severity), e);
          } else if (t === B_READY_FOR_QUERY) {
            if (f.pendingBytes > 0 || readyStatus(f.buf, f.start) !== 0x49) {
              this.close();
              finish(new ServerError('unexpected state after an internal statement', '08P01', false));
              return;
            }
            finish(failure);
            return;
          }
        }
        if (f.error) {
          this.close();
          finish(new ServerError(f.error, '08P01', false));
        }
      },
      onServerClose: (_c, err) => finish(err ?? new ServerError('server closed the connection during an internal statement', '08006', true)),
    };
    this.write(query(sql));
  }
}

/** DataRow: the first column as text (null for NULL or a malformed row). */
function firstColumn(buf: Buffer, start: number, end: number): string | null {
  if (end - start < 11 || buf.readInt16BE(start + 5) < 1) return null;
  const len = buf.readInt32BE(start + 7);
  if (len < 0 || start + 11 + len > end) return null;
  return buf.toString('utf8', start + 11, start + 11 + len);
}
