// One client connection's state machine (docs/proxy.md, Session states).
//
//   startup -> (TLS) -> auth (SCRAM against the stored verifier) -> linking (a
//   server for the welcome; hold while there is no writable primary) -> ready
//
// In ready, client messages are checked and forwarded as slices of the bytes
// that arrived; server messages are framed and forwarded the same way. The
// response queue follows each request the server will answer, which lets the
// proxy (a) give the server connection back at the right ReadyForQuery in
// transaction mode, (b) answer some requests itself in order (prepared
// statements, prepared.ts) and (c) fail exactly the requests in flight when a
// server connection is lost. Everything is bounded: message sizes (framer), the
// queue (one entry per request the client pipelined, at most what one chunk
// holds), and the bytes kept for a retry (retry-window.ts).
//
// The session's parts, each with its own state: client-login.ts (startup, TLS,
// SCRAM), server-acquire.ts (routes, pools, parameters, the failover hold),
// retry-window.ts (the retry window), fence-check.ts (the fence check and what
// a lost server means), out-slice.ts (output batching). What stays here: the
// phase and the link state (below), the client's requests and what the server
// owes them, and every transition between states.

import type net from 'node:net';
import type tls from 'node:tls';
import { Framer } from './protocol/framer.js';
import { readShared } from './shared-read.js';
import {
  AUTH_MESSAGE_BYTES_MAX,
  bindStatementSpan,
  checkFrontendMessage,
  cstringEnd,
  F_BIND,
  F_CLOSE,
  F_COPY_DATA,
  F_COPY_DONE,
  F_COPY_FAIL,
  F_DESCRIBE,
  F_EXECUTE,
  F_FLUSH,
  F_FUNCTION_CALL,
  F_PARSE,
  F_QUERY,
  F_SYNC,
  F_TARGET_STATEMENT,
  F_TERMINATE,
  STARTUP_PACKET_BYTES_MAX,
} from './protocol/frontend.js';
import {
  B_BIND_COMPLETE,
  B_CLOSE_COMPLETE,
  B_COMMAND_COMPLETE,
  B_COPY_BOTH,
  B_COPY_IN,
  B_COPY_OUT,
  B_EMPTY_QUERY,
  B_ERROR,
  B_NO_DATA,
  B_NOTICE,
  B_PARAMETER_STATUS,
  B_PARSE_COMPLETE,
  B_PORTAL_SUSPENDED,
  B_READY_FOR_QUERY,
  B_ROW_DESCRIPTION,
  isFatal,
  parseErrorFields,
  readyStatus,
  TX_IDLE,
  TX_IN_BLOCK,
  type ErrorFields,
} from './protocol/backend.js';
import { backendKeyData, CLOSE_COMPLETE, closeStatement, errorResponse, parameterStatus, PARSE_COMPLETE, parseRenamed, READY_IDLE, withNameReplaced, type ErrorSpec } from './protocol/write.js';
import { ClientStatements, CLIENT_STATEMENTS_MAX, touchServerStatement, type StatementNames } from './prepared.js';
import { ServerError, TRACKED_PARAMS, type ServerConnection, type ServerHandler } from './server-conn.js';
import type { PoolManager } from './pool-manager.js';
import { terminationCause } from './termination-check.js';
import type { RouteTarget, Router } from './router.js';
import type { ClaimedIdentity, ProxyRefusal, ResolveIdentity, ScramServerExchange } from './types.js';
import {
  endsBatch,
  isFakeKind,
  K_BIND,
  K_CLOSE,
  K_DESC_PORTAL,
  K_DESC_STMT,
  K_EXECUTE,
  K_FAKE_CLOSE,
  K_FAKE_ERROR,
  K_FAKE_PARSE,
  K_FUNC,
  K_PARSE,
  K_QUERY,
  K_SWALLOW_CLOSE,
  K_SWALLOW_PARSE,
  K_SYNC,
  ResponseQueue,
} from './response-queue.js';
import type { ScramVerifier } from '../auth/scram.js';
import { ClientLogin, isTerminate, type LoginHost } from './client-login.js';
import { ServerAcquirer, type AcquireHost } from './server-acquire.js';
import { firstBatchLength, isBeginTag, isPrecommitTag, keepsOpening, OPENING_ANSWERED, OPENING_BEGUN, OPENING_CANDIDATE, OPENING_NONE, RetryWindow } from './retry-window.js';
import { askFence, describeTarget, endedByServer, ENDED_UNRUN_CODES, IDLE_SESSION_TIMEOUT, lostTransaction, viewMoved } from './fence-check.js';
import { OutSlice } from './out-slice.js';

export type PoolMode = 'session' | 'transaction';

/** What every session shares: the ProxyServer provides it. */
export interface SessionContext {
  mode: PoolMode;
  holdTimeoutMs: number;
  maxMessageBytes: number;
  /** Startup and authentication must finish within this. */
  authTimeoutMs: number;
  maxPreparedPerServer: number;
  tlsMode: 'off' | 'on' | 'required';
  tls: tls.SecureContext | null;
  /** Client sockets arrive paused (pauseOnConnect) and read into the shared buffer (shared-read.ts). */
  sharedReads: boolean;
  resolveIdentity: ResolveIdentity;
  scram: (verifier: ScramVerifier, identity: ClaimedIdentity) => ScramServerExchange;
  /** See ProxyServerOptions.doomedScram. */
  doomedScram: ((user: string) => ScramServerExchange) | null;
  pools: PoolManager;
  router: Router;
  names: StatementNames;
  /** Admission (client limits); returns a refusal, or null and counts the client in. */
  admit(identity: ClaimedIdentity): ProxyRefusal | null;
  /** The client leaves (undoes admit). */
  leave(identity: ClaimedIdentity): void;
  /** A BackendKeyData for this session (cancel map). */
  register(session: Session): { processId: number; secretKey: number };
  unregister(session: Session): void;
  /** A CancelRequest arrived (the key as the client sent it). */
  cancel(processId: number, secretKey: number): void;
  /** Sends a CancelRequest to a server backend. */
  cancelServer(target: RouteTarget, processId: number, secretKey: number): void;
  counters: SessionCounters;
  log(e: { level: 'debug' | 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }): void;
}

export interface SessionCounters {
  protocolErrors: number;
  authFailures: number;
  held: number;
  holdTimeouts: number;
  retried: number;
  failedInFlight: number;
}

/** After the proxy ends a client connection, how long the peer has to close its side. */
const CLOSE_LINGER_MS = 5_000;
/** Client bytes read and kept while waiting for a server before reading pauses (then at most one more chunk or message). */
const WAIT_READ_BYTES_MAX = 256 * 1024;

/** The client connection's phase; `link` says where a linking or ready session stands with a server. */
type Phase = 'startup' | 'auth' | 'linking' | 'ready' | 'closed';

/**
 * Where the session stands with a server (docs/proxy.md, Session states). Every
 * change goes through to(). In every state but idle and linked, the client's
 * messages wait in `pending`.
 */
export type LinkState =
  | 'idle' // no server: the next client message looks for one
  | 'acquiring' // waiting for a server (pool queue, parameter sync, failover hold)
  | 'linked' // a server runs the client's messages
  | 'prelude' // a rerun's opening runs alone; its answers are swallowed
  | 'prelude-answered' // the prelude's ReadyForQuery came: endPrelude decides after the chunk
  | 'fence-check' // the server is asked whether its 25006 was a fence (askFence)
  | 'termination-check'; // a terminated backend: the cluster's doing or someone's? (termination-check.ts)

export class Session implements ServerHandler, LoginHost, AcquireHost {
  socket: net.Socket;
  private phase: Phase = 'startup';
  private linkState: LinkState = 'idle';
  readonly framer = new Framer(STARTUP_PACKET_BYTES_MAX, false, 4);
  /** Startup and authentication; dropped once authenticated. */
  private login: ClientLogin | null;
  identity: ClaimedIdentity | null = null;
  private admittedIn = false;
  key: { processId: number; secretKey: number } | null = null;

  // --- the linked server, and the transaction on it
  server: ServerConnection | null = null;
  private txStatus = TX_IDLE;
  /** Extended-protocol messages forwarded since the last Sync (the server is mid-batch). */
  private midBatch = false;
  /** After an error the proxy made up (or a lost server), client messages are dropped until Sync, as Postgres does. */
  private discardUntilSync = false;
  private statements: ClientStatements | null = null;
  private serverFatal: ErrorFields | null = null;
  /** The server was lost while the client was inside a transaction block with nothing in flight: its next request gets this error. */
  private lostTransaction: ErrorSpec | null = null;

  // --- waiting for a server
  private readonly acq: ServerAcquirer;
  /** Client messages waiting for a server (or for a check to finish). */
  private pending: Buffer[] | null = null;
  /** Client bytes kept since this wait for a server began (startAcquire). */
  private waitReadBytes = 0;

  /** A transparent retry of the current transaction's first requests. */
  private readonly window = new RetryWindow();

  // --- what the server (or the proxy) still owes the client (response-queue.ts)
  private readonly q = new ResponseQueue();

  /**
   * The server socket whose 'drain' this client's reading waits on (flushServer).
   * A server lost meanwhile never drains: the wait is dropped with the link
   * (unlinkServer), or the client would never be read again.
   */
  private drainWaitOn: net.Socket | null = null;
  /** Handling a server chunk (a reused read buffer: what is kept past it is copied). */
  private inServerChunk = false;
  private readonly out = new OutSlice();
  private readonly toServer = new OutSlice();

  constructor(
    socket: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socket;
    this.acq = new ServerAcquirer(ctx, this);
    this.attach(socket);
    if (ctx.sharedReads && !readShared(socket, this.onSharedRead)) socket.resume();
    this.login = new ClientLogin(ctx, this);
  }

  /** Client messages wait in `pending` (no server to run them yet, or a check runs first). */
  private get waiting(): boolean {
    return this.linkState !== 'idle' && this.linkState !== 'linked';
  }

  /** The one place the link state changes. */
  private to(next: LinkState): void {
    this.linkState = next;
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.clientData(chunk);
    } catch (e) {
      // A bug must not take the daemon down: this client gets an error and is closed.
      this.ctx.log({ level: 'error', msg: 'proxy session failed', error: (e as Error).stack ?? String(e) });
      this.fatal({ code: 'XX000', message: `internal error in the proxy: ${(e as Error).message}` });
    }
  };
  /** A read into the shared buffer (shared-read.ts): copied out at once. */
  private readonly onSharedRead = (view: Buffer): void => {
    // Pooled on the hot path (cheap); exact-size before ready, so that whatever
    // startup and authentication keep pins no pool slab for an idle client's life.
    const chunk = this.phase === 'ready' ? Buffer.allocUnsafe(view.length) : Buffer.allocUnsafeSlow(view.length);
    view.copy(chunk);
    this.onData(chunk);
  };
  private readonly onClose = (): void => this.close();
  private readonly onError = (): void => this.close();
  private readonly onClientDrain = (): void => {
    this.server?.socket.resume();
  };
  private readonly onServerDrain = (): void => {
    this.drainWaitOn = null;
    if (!this.waiting && this.phase === 'ready') this.socket.resume();
  };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('close', this.onClose);
    s.on('error', this.onError);
    s.on('drain', this.onClientDrain);
  }

  // -------------------------------------------------------------------------
  // Startup and authentication (client-login.ts calls these)

  replaceSocket(secure: net.Socket): void {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    raw.removeListener('close', this.onClose);
    raw.removeListener('drain', this.onClientDrain);
    this.socket = secure;
    this.attach(secure);
  }

  startAuth(): void {
    this.phase = 'auth';
    this.framer.configure(true, AUTH_MESSAGE_BYTES_MAX);
  }

  admitted(identity: ClaimedIdentity): void {
    this.identity = identity;
    this.admittedIn = true;
    for (const [k, v] of identity.serverParams) if (TRACKED_PARAMS.has(k)) this.acq.want(k, v);
  }

  authenticated(): void {
    this.login = null;
    this.phase = 'linking';
    this.framer.configure(true, this.ctx.maxMessageBytes);
    this.pending = [];
    this.startAcquire();
  }

  isClosed(): boolean {
    return this.phase === 'closed';
  }

  // -------------------------------------------------------------------------
  // Client bytes

  private clientData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    const f = this.framer;
    if (this.phase === 'startup' && f.pendingBytes === 0 && isTerminate(chunk)) {
      // A client that gives up before its startup packet (node-postgres: connect()
      // then end() at once) sends Terminate. Postgres reads it as a startup length
      // and closes without a word (its error is only logged); an error here would
      // reach the driver as an unhandled one.
      return this.close();
    }
    f.feed(chunk);
    try {
      while (f.next()) {
        if (this.phase === 'ready') {
          const err = checkFrontendMessage(f.type, f.buf, f.start, f.end);
          if (err !== null) return this.protocolError(err);
          this.clientMessage(f.type, f.buf, f.start, f.end);
        } else if (this.phase === 'startup') {
          if (!this.login!.startupPacket(f.buf, f.start, f.end)) return;
        } else if (this.phase === 'auth') {
          this.login!.authMessage(f.type, f.buf, f.start, f.end);
        } else if (this.phase === 'linking') {
          return this.protocolError('the client sent a message before ReadyForQuery');
        } else return;
      }
      if (f.error) return this.protocolError(f.error);
    } finally {
      // Contiguous messages went out as one slice; a rewritten one in between split it.
      this.flushServer();
    }
  }

  /** A checked message in the ready phase. */
  private clientMessage(type: number, buf: Buffer, start: number, end: number): void {
    if (this.waiting) {
      // Waiting for a server: keep it (bounded: reading pauses past WAIT_READ_BYTES_MAX).
      this.pending!.push(buf.subarray(start, end));
      this.waitReadBytes += end - start;
      if (this.waitReadBytes > WAIT_READ_BYTES_MAX) this.socket.pause();
      return;
    }
    if (this.server === null) {
      if (type === F_TERMINATE) return this.close();
      if (this.discardUntilSync) {
        if (type !== F_SYNC) return;
        this.discardUntilSync = false;
        return this.writeClient(READY_IDLE);
      }
      switch (type) {
        case F_SYNC: // with nothing open: Postgres answers ReadyForQuery
          return this.writeClient(READY_IDLE);
        case F_FLUSH: // nothing to flush
        case F_COPY_DATA: // outside COPY: Postgres ignores them
        case F_COPY_DONE:
        case F_COPY_FAIL:
          return;
      }
      // The first message of a transaction: find it a server. The usual case
      // (an idle connection whose parameters already match) links at once.
      const now = this.lostTransaction === null ? this.tryLinkNow() : NOT_NOW;
      if (now === LINKED) return this.forward(type, buf, start, end);
      if (now === SYNCING) {
        this.pending!.push(buf.subarray(start, end));
        return;
      }
      this.pending = [buf.subarray(start, end)];
      if (this.lostTransaction !== null) {
        const e = this.lostTransaction;
        this.lostTransaction = null;
        return this.failPending(e);
      }
      this.startAcquire();
      return;
    }
    this.forward(type, buf, start, end);
  }

  /** Forwards one client message to the linked server, rewriting prepared statements in transaction mode. */
  private forward(type: number, buf: Buffer, start: number, end: number): void {
    if (this.window.isOpen && !this.window.record(buf.subarray(start, end))) this.giveUpRetry();
    if (this.discardUntilSync) {
      if (type !== F_SYNC) return;
      this.discardUntilSync = false;
    }
    const rewrite = this.ctx.mode === 'transaction';
    switch (type) {
      case F_QUERY:
        this.push(K_QUERY);
        break;
      case F_SYNC:
        this.midBatch = false;
        this.push(K_SYNC);
        break;
      case F_FUNCTION_CALL:
        this.push(K_FUNC);
        break;
      case F_TERMINATE: // the client is leaving; the server stays (or goes) as close() decides
        return this.close();
      case F_PARSE:
        this.midBatch = true;
        if (rewrite && buf[start + 5] !== 0) return this.rewriteParse(buf, start, end);
        this.push(K_PARSE);
        break;
      case F_BIND:
        this.midBatch = true;
        if (rewrite) {
          const span = bindStatementSpan(buf, start, end);
          if (span.to > span.from) {
            const name = this.renameFor(buf.toString('utf8', span.from, span.to));
            if (name !== null) {
              this.push(K_BIND);
              return this.writeServer(withNameReplaced(buf, start, end, span.from, span.to, name));
            }
          }
        }
        this.push(K_BIND);
        break;
      case F_DESCRIBE:
      case F_CLOSE: {
        this.midBatch = true;
        const statement = buf[start + 5] === F_TARGET_STATEMENT;
        const named = buf[start + 6] !== 0;
        if (rewrite && statement && named) {
          const clientName = buf.toString('utf8', start + 6, end - 1);
          if (type === F_CLOSE) {
            // Statements stay on the server (shared, evicted by LRU): only the client forgets it.
            this.window.note(clientName, this.statements);
            this.statements?.delete(clientName);
            return this.pushFake(K_FAKE_CLOSE, null, null);
          }
          const name = this.renameFor(clientName);
          if (name !== null) {
            this.push(K_DESC_STMT);
            return this.writeServer(withNameReplaced(buf, start, end, start + 6, end - 1, name));
          }
        }
        this.push(type === F_CLOSE ? K_CLOSE : statement ? K_DESC_STMT : K_DESC_PORTAL);
        break;
      }
      case F_EXECUTE:
        this.midBatch = true;
        this.push(K_EXECUTE);
        break;
      case F_FLUSH: // the client waits for answers before its Sync, so none may be held back
        if (this.window.isOpen) this.giveUpRetry();
        break;
      default:
        // CopyData, CopyDone, CopyFail: no entry of their own.
        break;
    }
    this.forwardRange(buf, start, end);
  }

  /** A named Parse in transaction mode. */
  private rewriteParse(buf: Buffer, start: number, end: number): void {
    const nameEnd = cstringEnd(buf, start + 5, end);
    const clientName = buf.toString('utf8', start + 5, nameEnd);
    const statements = (this.statements ??= new ClientStatements());
    if (statements.has(clientName)) {
      return this.fakeError({ code: '42P05', message: `prepared statement "${clientName}" already exists` });
    }
    if (statements.size >= CLIENT_STATEMENTS_MAX) {
      return this.fakeError({ code: '53400', message: `too many prepared statements on this connection (${CLIENT_STATEMENTS_MAX}); close some (DEALLOCATE/Close)` });
    }
    const rest = Buffer.from(buf.subarray(nameEnd + 1, end));
    const serverName = this.ctx.names.nameFor(rest);
    this.window.note(clientName, this.statements);
    statements.add(clientName, { serverName, rest });
    const server = this.server!;
    if (server.prepared.has(serverName)) {
      // Shared by text, the server's statement may have been planned before a schema
      // change (ALTER TABLE ... ADD COLUMN): executed now it fails with 0A000 "cached
      // plan must not change result type", where this client's own Parse would have
      // planned afresh on Postgres. So a client's Parse always plans on the server:
      // the shared statement is closed (its CloseComplete swallowed) and parsed again
      // under the same name. A retry on 0A000 instead could not help inside a
      // transaction block, which the error aborts. Bind/Describe of a statement
      // the connection lacks still re-prepares silently (renameFor).
      touchServerStatement(server.prepared, serverName, this.ctx.maxPreparedPerServer);
      this.push(K_SWALLOW_CLOSE, null, serverName);
      this.writeServer(closeStatement(serverName));
      this.push(K_PARSE, clientName, serverName);
      return this.writeServer(parseRenamed(serverName, rest, 0, rest.length));
    }
    this.evictFor(server, serverName);
    this.push(K_PARSE, clientName, serverName);
    this.writeServer(parseRenamed(serverName, rest, 0, rest.length));
  }

  /** The server name for a client's statement, prepared on the linked server first if needed; null: unknown (forward as is: the server says it does not exist). */
  private renameFor(clientName: string): string | null {
    const s = this.statements?.get(clientName);
    if (!s) return null;
    const server = this.server!;
    if (server.prepared.has(s.serverName)) {
      touchServerStatement(server.prepared, s.serverName, this.ctx.maxPreparedPerServer);
      return s.serverName;
    }
    this.evictFor(server, s.serverName);
    this.push(K_SWALLOW_PARSE, null, s.serverName);
    this.writeServer(parseRenamed(s.serverName, s.rest, 0, s.rest.length));
    return s.serverName;
  }

  /** Adds serverName to the connection's set, closing the least recently used statement when over the bound. */
  private evictFor(server: ServerConnection, serverName: string): void {
    const evicted = touchServerStatement(server.prepared, serverName, this.ctx.maxPreparedPerServer);
    if (evicted !== null) {
      this.push(K_SWALLOW_CLOSE, null, evicted);
      this.writeServer(closeStatement(evicted));
    }
  }

  /** An error the proxy answers in order; the client's messages up to Sync are then dropped, as Postgres does. */
  private fakeError(e: ErrorSpec): void {
    this.pushFake(K_FAKE_ERROR, null, errorResponse(e));
    this.discardUntilSync = true;
  }

  // -------------------------------------------------------------------------
  // Server bytes

  onServerData(conn: ServerConnection, chunk: Buffer): void {
    if (conn !== this.server) return;
    try {
      this.serverData(conn, chunk);
    } catch (e) {
      this.ctx.log({ level: 'error', msg: 'proxy session failed on server data', error: (e as Error).stack ?? String(e) });
      this.fatal({ code: 'XX000', message: `internal error in the proxy: ${(e as Error).message}` });
    }
  }

  private serverData(conn: ServerConnection, chunk: Buffer): void {
    const f = conn.framer;
    // The chunk is a view of the connection's read buffer, reused by the next read:
    // what is kept past this call is copied (held answers, split messages), and a
    // client write still pending at the end moves the reads to fresh memory.
    f.feed(chunk, true);
    this.inServerChunk = true;
    try {
      this.serverChunk(conn, f);
    } finally {
      this.inServerChunk = false;
      if (this.socket.writableLength > 0) conn.renewReadBuffer();
    }
  }

  private serverChunk(conn: ServerConnection, f: Framer): void {
    const client = this.socket;
    const w = this.window;
    let release = false;
    let checkFence = false;
    let preludeDone = false;
    while (f.next()) {
      const t = f.type;
      const kind = this.q.headKind();
      // Anything but BEGIN's own answers makes the window's first batch more than an opening.
      if (w.opening < OPENING_ANSWERED && !keepsOpening(t)) w.opening = OPENING_NONE;
      let show = true;
      switch (t) {
        case B_READY_FOR_QUERY:
          this.txStatus = readyStatus(f.buf, f.start);
          if (kind === K_SYNC || kind === K_QUERY || kind === K_FUNC) this.pop(false, false);
          if (this.linkState === 'prelude') {
            // The opening ran again; the client's own messages follow once it is checked (endPrelude).
            this.to('prelude-answered');
            preludeDone = true;
            show = false;
            break;
          }
          if (w.fenceSuspect && this.txStatus !== TX_IN_BLOCK && this.q.empty) {
            // Hold this answer back until we know whether the server is fenced (after this chunk:
            // the fence's termination may follow in it).
            checkFence = true;
            break;
          }
          w.fenceSuspect = false;
          if (w.isOpen) {
            if (w.opening === OPENING_BEGUN && this.txStatus === TX_IN_BLOCK) {
              // A bare BEGIN: the client sees it answered, and the window goes on to its next batch.
              w.opening = OPENING_ANSWERED;
              w.openingMsgs = firstBatchLength(w.msgs!);
              this.forwardToClient(f.buf, f.start, f.end);
              this.showHeld();
              show = false;
              break;
            }
            // The window is over: it will not run again, the client may see it.
            this.giveUpRetry();
          }
          release = this.txStatus === TX_IDLE && this.q.empty && !this.midBatch;
          break;
        case B_ERROR: {
          const e = parseErrorFields(f.buf, f.start, f.end);
          // A write refused as read-only on what the view calls the primary: maybe a fence (switchover), maybe the database's own setting. Checked at ReadyForQuery.
          if (e.code === '25006' && conn.target.primary) {
            // A connection to the primary that refuses writes may sit on a fenced server: it is not pooled again.
            conn.readOnlySeen = true;
            if (w.isOpen && !this.identity!.readOnly && !w.fenceSettled) w.fenceSuspect = true;
          }
          if (isFatal(e.severity)) {
            this.serverFatal = e;
            // Transaction mode: the session outlives its server; the close that follows says what happened.
            if (this.ctx.mode === 'transaction') {
              show = false;
              break;
            }
          }
          if (kind === K_SWALLOW_PARSE || (kind >= K_PARSE && kind <= K_EXECUTE)) {
            this.pop(true, false);
            this.dropUntilSync();
          }
          break;
        }
        case B_PARSE_COMPLETE:
          if (kind === K_SWALLOW_PARSE) {
            this.pop(false, false);
            show = false;
          } else if (kind === K_PARSE) this.pop(false, false);
          break;
        case B_BIND_COMPLETE:
          if (kind === K_BIND) this.pop(false, false);
          break;
        case B_CLOSE_COMPLETE:
          if (kind === K_SWALLOW_CLOSE) {
            this.pop(false, false);
            show = false;
          } else if (kind === K_CLOSE) this.pop(false, false);
          break;
        case B_ROW_DESCRIPTION:
        case B_NO_DATA:
          if (kind === K_DESC_STMT || kind === K_DESC_PORTAL) this.pop(false, false);
          break;
        case B_COMMAND_COMPLETE:
          if (f.buf[f.start + 5] === 0x44 /* 'D': DISCARD, DEALLOCATE */) this.noteDiscard(conn, f.buf, f.start, f.end);
          if (w.isOpen) this.windowCommandComplete(kind, f.buf, f.start, f.end);
          if (kind === K_EXECUTE) this.pop(false, false);
          break;
        case B_EMPTY_QUERY:
        case B_PORTAL_SUSPENDED:
          if (kind === K_EXECUTE) this.pop(false, false);
          break;
        case B_NOTICE: // e.g. "canceling the wait for synchronous replication" (committed locally): never retry after one
        case B_COPY_IN: // the client must see it to send its data
        case B_COPY_OUT:
        case B_COPY_BOTH:
          if (w.isOpen) this.giveUpRetry();
          break;
        case B_PARAMETER_STATUS: {
          // The server's value, and (for tracked ones) what this client now wants
          const p = conn.noteParameter(f.buf, f.start, f.end);
          if (p && TRACKED_PARAMS.has(p[0]) && this.acq.wanted.get(p[0]) !== p[1]) this.acq.want(p[0], p[1]);
          break;
        }
        default:
          break;
      }
      // A prelude's answers are the client's old news: swallowed.
      if (show && this.linkState !== 'prelude' && !preludeDone) this.forwardToClient(f.buf, f.start, f.end);
      // Answers the proxy makes up come after the server's answer that precedes them.
      if (isFakeKind(this.q.headKind())) this.emitFakes();
    }
    this.flushClient();
    if (f.error) {
      this.ctx.log({ level: 'warn', msg: 'server sent a malformed message', node: conn.target.node, error: f.error });
      conn.close();
      return this.serverLost(conn);
    }
    if (preludeDone) return this.endPrelude(conn);
    if (checkFence) {
      // Terminated right after (a FATAL in this chunk): its close retries the batch. Else ask.
      if (this.serverFatal === null && w.isOpen) this.checkFence(conn);
      return;
    }
    if (client.writableNeedDrain) conn.socket.pause();
    if (release && this.ctx.mode === 'transaction' && this.server === conn) this.releaseServer();
  }

  /**
   * A CommandComplete inside the retry window. The first one, of BEGIN, may
   * make the opening; after any other, the window ends unless its statement is
   * sure not to have committed (a plain statement in an extended batch; a
   * simple query's statement commits by its CommandComplete outside a block).
   */
  private windowCommandComplete(kind: number, buf: Buffer, start: number, end: number): void {
    const w = this.window;
    if (w.opening === OPENING_CANDIDATE && isBeginTag(buf, start, end)) {
      w.opening = OPENING_BEGUN;
      return;
    }
    if (w.opening !== OPENING_ANSWERED) w.opening = OPENING_NONE;
    if (kind === K_QUERY || !isPrecommitTag(buf, start, end)) this.giveUpRetry();
  }

  /** DISCARD ALL / DEALLOCATE ALL remove every prepared statement from the server. */
  private noteDiscard(conn: ServerConnection, buf: Buffer, start: number, end: number): void {
    const tag = buf.toString('latin1', start + 5, end - 1);
    if (tag === 'DISCARD ALL' || tag === 'DEALLOCATE ALL') conn.prepared.clear();
    if (tag === 'DISCARD ALL') {
      // RESET ALL too: what the proxy had set is gone.
      conn.setByProxy.clear();
      conn.paramsSig = null;
    }
  }

  // -------------------------------------------------------------------------
  // The retry window's transitions (docs/proxy.md, Failover)

  /**
   * The retry window failed with 25006 (read-only) on the primary, and nothing
   * else of it is in flight: is it ogel's fence (fence-check.ts)? A fence: the
   * window runs again on the next writable server. Otherwise the client gets
   * the error it earned. An aborted block (status E) is rolled back first; it
   * then runs again here, once, so that the client's block is in the state it
   * would be in (aborted, by the same error) and the server's matches it.
   */
  private checkFence(conn: ServerConnection): void {
    this.window.fenceSuspect = false;
    this.to('fence-check'); // the client's next messages wait
    this.pending ??= [];
    this.socket.pause();
    askFence(
      conn,
      this.txStatus !== TX_IDLE,
      () => this.phase !== 'closed' && this.server === conn,
      (verdict) => {
        if (verdict === 'fenced') this.moveOffFence(conn);
        else if (verdict === 'rerun-here') this.rerunHere(conn);
        else this.passOnFenceCheck();
      },
    );
  }

  /**
   * Runs the window again once a writable server takes it: the old primary's
   * successor, or this one when it is a new primary not yet unfenced (its lease
   * renewal commits just before its agent lifts the fence). Backoff, or a view
   * change, first; bounded by holdTimeoutMs from the first fence this
   * transaction met.
   */
  private moveOffFence(conn: ServerConnection): void {
    const t = conn.target;
    this.unlinkServer();
    conn.close();
    this.requeueWindow();
    const w = this.window;
    if (w.moveDeadlineMs === 0) w.moveDeadlineMs = performance.now() + this.ctx.holdTimeoutMs;
    this.acq.beginUntil(w.moveDeadlineMs);
    this.acq.hold(new ServerError(`${t.node} (generation ${t.generation}) refuses writes: it is fenced for a failover or switchover`, '25006', true));
  }

  /** Runs the window again on the same server connection (idle now), once: a 25006 then is the client's own. */
  private rerunHere(conn: ServerConnection): void {
    this.window.fenceSettled = true;
    this.requeueWindow();
    this.linkServer(conn);
  }

  /** Not a fence: the held error (and its ReadyForQuery, status I) goes to the client; what it sent meanwhile goes on. */
  private passOnFenceCheck(): void {
    this.giveUpRetry();
    this.flushClient();
    this.to('linked');
    const pending = this.pending ?? [];
    this.pending = null;
    if (this.q.empty && !this.midBatch) this.releaseServer();
    this.pending = pending.length > 0 ? pending : null;
    if (this.pending !== null && this.server === null) this.startAcquire();
    else if (this.pending !== null) {
      const p = this.pending;
      this.pending = null;
      for (const m of p) this.forward(m[0]!, m, 0, m.length);
      this.flushServer();
    }
    if (!this.waiting) this.socket.resume();
  }

  /**
   * The retry window runs again from its start (after a fence, or a backend
   * terminated before it answered): its messages go back to the head of
   * `pending`, the opening the client already saw answered marked as the
   * prelude, and the client's statement table as it was before the window.
   * The server connection is gone or idle; what it answered is dropped. The
   * caller looks for a server at once.
   */
  private requeueWindow(): void {
    this.ctx.counters.retried++;
    this.resetQueue();
    this.window.undoStatements(() => (this.statements ??= new ClientStatements()));
    this.midBatch = false;
    this.discardUntilSync = false; // as when the window began: its messages are checked again
    this.txStatus = TX_IDLE;
    const replay = this.window.requeue();
    this.to('acquiring');
    this.out.drop();
    this.pending = [...replay, ...(this.pending ?? [])];
  }

  /**
   * A rerun whose client already saw its opening (BEGIN) answered: the opening
   * goes first, alone, its answers swallowed; the rest waits until it is known
   * to have opened the transaction again (endPrelude). Sent together, a BEGIN
   * that failed would leave the client's statement to run outside its block.
   */
  private startPrelude(conn: ServerConnection, pending: Buffer[], preludeMsgs: number): void {
    this.to('prelude'); // the client's messages wait, as while acquiring
    this.window.openingMsgs = preludeMsgs; // a rerun of this rerun has the same prelude
    this.pending = pending.slice(preludeMsgs);
    this.forwardPending(conn, pending.slice(0, preludeMsgs));
  }

  /**
   * The prelude (the opening run again) answered. It must have opened the
   * transaction as the first time did (one BEGIN, status T); then the client's
   * messages follow. Anything else, and the client's transaction is lost.
   */
  private endPrelude(conn: ServerConnection): void {
    if (this.server !== conn) return;
    const w = this.window;
    if (w.opening !== OPENING_BEGUN || this.txStatus !== TX_IN_BLOCK || !w.isOpen) {
      this.unlinkServer();
      conn.close();
      return this.abandonPrelude(lostTransaction(`${describeTarget(conn.target)} did not open this transaction again as the first server did (its BEGIN failed)`));
    }
    w.opening = OPENING_ANSWERED;
    w.openingMsgs = w.msgs!.length;
    this.to('linked');
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) this.forwardPending(conn, pending);
    if (!this.waiting && this.phase === 'ready') this.socket.resume();
  }

  /** A prelude could not re-create the opening: the client's messages since get the error, or (none yet) its next one does. */
  private abandonPrelude(spec: ErrorSpec): void {
    this.to('idle');
    this.resetQueue();
    this.midBatch = false;
    this.txStatus = TX_IDLE;
    this.window.reset();
    this.ctx.counters.failedInFlight++;
    if (this.pending === null || this.pending.length === 0) {
      this.pending = null;
      this.lostTransaction = spec;
      this.socket.resume();
      return;
    }
    this.failPending(spec);
  }

  /** No retry for this transaction any more: what was held back goes to the client now. */
  private giveUpRetry(): void {
    // What was held goes out; the range being collected (out) comes after it and
    // stays pending, so a batch answered within one chunk still leaves in one write.
    const held = this.window.giveUp();
    if (held !== null && !this.socket.destroyed) for (const h of held) this.writeOut(h);
  }

  /** What was held back goes to the client now, in order (the window, if any, goes on: after the opening's answer). */
  private showHeld(): void {
    const held = this.window.takeHeld();
    if (held !== null && !this.socket.destroyed) for (const h of held) this.writeOut(h);
    // The range being collected comes after what was held: out now too, not held (the window goes on after it).
    const b = this.out.take();
    if (b !== null && !this.socket.destroyed) this.writeOut(b);
  }

  // -------------------------------------------------------------------------
  // A lost server

  onServerClose(conn: ServerConnection): void {
    if (conn !== this.server) return;
    this.serverLost(conn);
  }

  /**
   * The cluster promoted a primary of generation `generation`. A transaction
   * still running on an older primary cannot commit there any more (its
   * standbys stopped receiving before the promotion, I4), and a partitioned or
   * paused old primary may never answer at all: without this its client would
   * wait for TCP to give up. The transaction fails now, its outcome unknown
   * (its COMMIT may have reached a standby first), and the next one runs on the
   * new primary. A switchover ends the old primary's transactions before the
   * promotion, so this finds none then.
   */
  onNewGeneration(generation: number): void {
    const conn = this.server;
    if (conn === null || this.phase === 'closed' || !conn.target.primary || conn.target.generation >= generation) return;
    if (conn.handler !== this) {
      // An internal statement of the proxy's own (a fence check, a parameter sync) is running: its failure path moves on.
      conn.close();
      return;
    }
    const t = conn.target;
    this.serverLost(conn, `${describeTarget(t)} was replaced by the primary of generation ${generation} while this transaction ran there`);
    conn.close();
  }

  /** The linked server went away (closed, crashed, terminated, or sent garbage), or was given up (`cause`). */
  private serverLost(conn: ServerConnection, cause?: string): void {
    if (conn !== this.server || this.phase === 'closed') return;
    this.unlinkServer();
    this.flushClient();
    const t = conn.target;
    const fatal = this.serverFatal;
    this.serverFatal = null;
    if (this.ctx.mode === 'session' && this.phase === 'ready' && fatal !== null) {
      // The server's FATAL went to the client as it came (serverChunk): the client's
      // session ends with the server's, without a second copy (which node-postgres
      // would give the next queued query and emit as one more error).
      return this.close();
    }
    if (this.ctx.mode === 'session' || this.phase !== 'ready') {
      // The client's session was that server session: it ends too.
      return this.fatal(
        fatal && this.ctx.mode === 'session'
          ? { code: fatal.code || '08006', message: fatal.message }
          : { code: '08006', message: cause ?? `the server connection to ${t.node} (generation ${t.generation}) was lost${fatal ? `: ${fatal.message}` : ''}` },
      );
    }
    // Transaction mode.
    if (cause !== undefined || fatal === null) return this.lostToCluster(t, fatal, cause);
    if (fatal.code === IDLE_SESSION_TIMEOUT && this.window.isOpen) {
      // The server ended an idle session (idle_session_timeout) as the proxy handed
      // it a transaction: it sends that only while idle, before it reads anything,
      // so nothing ran. Another connection takes the transaction.
      this.requeueWindow();
      this.startAcquire();
      return;
    }
    if (!ENDED_UNRUN_CODES.has(fatal.code)) return this.failLost(endedByServer(t, fatal));
    if (viewMoved(this.ctx.router, t)) return this.lostToCluster(t, fatal, undefined);
    this.checkTermination(conn, fatal);
  }

  /**
   * The server was lost to the cluster (a failover, a fence, a shutdown), or
   * vanished without a word. Safe to run again elsewhere only while the retry
   * window is open (the client has seen nothing of this transaction but, at
   * most, its opening BEGIN answered) and the server said it ended without
   * committing it (its backend was terminated); a server that vanished
   * silently may have committed.
   */
  private lostToCluster(t: RouteTarget, fatal: ErrorFields | null, cause: string | undefined): void {
    const why = fatal ? ` (${fatal.code}: ${fatal.message})` : '';
    const spec = lostTransaction(cause ?? `the connection to ${describeTarget(t)} was lost during this transaction${why}`);
    if (this.window.isOpen && fatal !== null && ENDED_UNRUN_CODES.has(fatal.code)) {
      this.requeueWindow();
      this.startAcquire();
      return;
    }
    this.failLost(spec);
  }

  /** Every request in flight gets `spec`; a client idle in its block gets it at its next request. */
  private failLost(spec: ErrorSpec): void {
    if (this.linkState === 'prelude') return this.abandonPrelude(spec);
    // What the server answered before it went belongs before the error.
    this.giveUpRetry();
    this.ctx.counters.failedInFlight++;
    const inBlock = this.txStatus !== TX_IDLE;
    const answered = !this.q.empty || this.midBatch;
    this.failOutstanding(spec);
    // Idle inside BEGIN ... with nothing in flight: the client must not go on as if its transaction were open.
    if (inBlock && !answered) this.lostTransaction = spec;
  }

  /**
   * A backend terminated (57P01..57P03) while the view still names its server: a
   * fence or a shutdown the view does not show yet, or an operator's
   * pg_terminate_backend() (termination-check.ts asks the server). An operator's
   * reaches the client as the server's error, as it would directly; the session
   * goes on. The client's messages wait meanwhile, as while acquiring.
   */
  private checkTermination(conn: ServerConnection, fatal: ErrorFields): void {
    const t = conn.target;
    this.to('termination-check');
    this.pending ??= [];
    this.socket.pause();
    void terminationCause(conn.pool).then((by) => {
      if (this.phase === 'closed') return;
      this.to('idle');
      if (by === 'cluster' || viewMoved(this.ctx.router, t)) this.lostToCluster(t, fatal, undefined);
      else this.failLost(endedByServer(t, fatal));
      if (this.waiting) return; // a rerun took the waiting messages with it
      const pending = this.pending ?? [];
      this.pending = null;
      for (const m of pending) {
        if (this.phase !== 'ready') return;
        if (this.waiting) this.pending!.push(m);
        else this.clientMessage(m[0]!, m, 0, m.length);
      }
      this.flushServer();
      if (this.phase === 'ready') this.socket.resume();
    });
  }

  /** Answers every request the lost server would have answered: an error and ReadyForQuery per batch. */
  private failOutstanding(e: ErrorSpec): void {
    const err = errorResponse(e);
    let sentError = false;
    while (!this.q.empty) {
      const k = this.q.headKind();
      this.pop(true);
      if (!sentError) {
        this.writeClient(err);
        sentError = true;
      }
      if (endsBatch(k)) {
        this.writeClient(READY_IDLE);
        sentError = false;
      }
    }
    this.resetQueue();
    if (this.midBatch) {
      if (!sentError) this.writeClient(err);
      this.discardUntilSync = true;
    }
    this.midBatch = false;
    this.txStatus = TX_IDLE;
    this.window.reset(); // given up already (failLost): nothing is held
    this.flushClient();
  }

  // -------------------------------------------------------------------------
  // Response queue

  private push(kind: number, name: string | null = null, aux: string | Buffer | null = null): void {
    this.q.push(kind, name, aux);
  }

  /** A synthetic answer: written now if nothing is ahead of it, else when its turn comes. */
  private pushFake(kind: number, name: string | null, aux: Buffer | null): void {
    const wasEmpty = this.q.empty;
    this.q.push(kind, name, aux);
    if (wasEmpty) this.emitFakes();
  }

  /**
   * Removes the head; `failed`: its request did not take effect (undo its
   * bookkeeping). `emit`: answer the made-up entries now at the head; the
   * server's reader passes false and emits them after forwarding the answer
   * that popped this entry, so they keep their place.
   */
  private pop(failed = false, emit = true): void {
    if (failed) this.undoHead();
    this.q.shift();
    if (!this.q.empty && emit) this.emitFakes();
  }

  /** The head request did not take effect: the statement tables forget what it added. */
  private undoHead(): void {
    const k = this.q.headKind();
    const name = this.q.headName();
    const aux = this.q.headAux();
    if ((k === K_PARSE || k === K_FAKE_PARSE) && name) this.statements?.delete(name);
    if ((k === K_PARSE || k === K_SWALLOW_PARSE) && typeof aux === 'string') this.server?.prepared.delete(aux);
  }

  private emitFakes(): void {
    for (;;) {
      const k = this.q.headKind();
      if (k === K_FAKE_PARSE) this.writeClient(PARSE_COMPLETE);
      else if (k === K_FAKE_CLOSE) this.writeClient(CLOSE_COMPLETE);
      else if (k === K_FAKE_ERROR) {
        this.writeClient(this.q.headAux() as Buffer);
        this.q.shift();
        this.dropUntilSync();
        continue;
      } else return;
      this.q.shift();
    }
  }

  /** After an error in a batch the server skips to Sync: so do the entries (undoing what they did). */
  private dropUntilSync(): void {
    while (!this.q.empty && this.q.headKind() !== K_SYNC) {
      this.undoHead();
      this.q.shift();
    }
  }

  private resetQueue(): void {
    while (!this.q.empty) {
      this.undoHead();
      this.q.shift();
    }
  }

  // -------------------------------------------------------------------------
  // Output

  private forwardToClient(buf: Buffer, start: number, end: number): void {
    if (this.out.extend(buf, start, end)) return;
    this.flushClient();
    this.out.begin(buf, start, end);
  }

  private flushClient(): void {
    const out = this.out.take();
    if (out === null) return;
    if (this.window.isOpen) return this.holdBack(this.inServerChunk ? Buffer.from(out) : out);
    this.writeOut(out);
  }

  /** Writes to the client (the single place, so a view of a reused read buffer is never left referenced). */
  private writeOut(b: Buffer): void {
    this.socket.write(b);
  }

  private writeClient(b: Buffer): void {
    if (this.linkState === 'prelude') return; // the prelude's made-up answers too: the client saw them the first time
    this.flushClient();
    if (this.window.isOpen) return this.holdBack(b);
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Keeps a response back while the batch may still run again (bounded: past the bound, no retry). */
  private holdBack(b: Buffer): void {
    if (!this.window.hold(b)) this.giveUpRetry();
  }

  private forwardRange(buf: Buffer, start: number, end: number): void {
    if (this.toServer.extend(buf, start, end)) return;
    this.flushServer();
    this.toServer.begin(buf, start, end);
  }

  private flushServer(): void {
    const b = this.toServer.take();
    if (b === null) return;
    const s = this.server;
    if (!s || s.closed) return;
    // A socket already ended or destroyed (its close event not yet run) refuses
    // the write too, but will never drain: its close unlinks it (serverLost).
    if (!s.write(b) && s.socket.writable && this.drainWaitOn === null) {
      this.drainWaitOn = s.socket;
      this.socket.pause();
      s.socket.once('drain', this.onServerDrain);
    }
  }

  private writeServer(b: Buffer): void {
    this.flushServer();
    const s = this.server;
    if (s && !s.closed) s.write(b);
  }

  /**
   * Ends the link to the current server. A wait for its drain ends with it: the
   * client is read again unless something else holds its reading (a wait for
   * the next server, which resumes it when it links).
   */
  private unlinkServer(): void {
    this.server = null;
    if (this.linkState === 'linked') this.to('idle');
    const w = this.drainWaitOn;
    if (w === null) return;
    this.drainWaitOn = null;
    w.removeListener('drain', this.onServerDrain);
    if (!this.waiting && this.phase === 'ready') this.socket.resume();
  }

  // -------------------------------------------------------------------------
  // Getting a server (server-acquire.ts), linking, giving it back

  private startAcquire(): void {
    this.to('acquiring');
    // In ready, reading goes on while waiting (a queued transaction costs no
    // readStop/readStart) until the messages kept reach a bound; before ready,
    // nothing may be read until the welcome.
    this.waitReadBytes = 0;
    if (this.phase !== 'ready') this.socket.pause();
    this.acq.begin();
    this.acq.attempt();
  }

  /** The hot path of transaction mode: an idle server of the current view, parameters in step. */
  private tryLinkNow(): number {
    const conn = this.acq.takeIdle();
    if (conn === null) return NOT_NOW;
    if (this.acq.inStep(conn)) {
      this.linkServer(conn);
      return LINKED;
    }
    // Parameters differ: the slow path syncs them.
    this.pending = [];
    this.to('acquiring');
    this.socket.pause();
    this.acq.begin();
    this.acq.acquired(conn);
    return SYNCING;
  }

  /** A server for the session (server-acquire.ts calls this). */
  link(conn: ServerConnection): void {
    this.linkServer(conn);
  }

  private linkServer(conn: ServerConnection): void {
    this.to('linked');
    this.server = conn;
    conn.handler = this;
    conn.uses++;
    this.serverFatal = null;
    // A new retry window; a transaction that runs again keeps its fence state.
    this.window.open(this.ctx.mode === 'transaction');
    if (this.phase === 'linking') return this.welcome(conn);
    const pending = this.pending;
    this.pending = null;
    if (pending === null) return; // the fast path: the caller forwards its message
    const preludeMsgs = this.window.preludeMsgs;
    this.window.preludeMsgs = 0;
    if (preludeMsgs > 0 && this.window.isOpen) return this.startPrelude(conn, pending, preludeMsgs);
    this.forwardPending(conn, pending);
    if (!this.waiting && this.phase === 'ready') this.socket.resume();
  }

  /** Forwards waiting client messages to the linked server, in order; those after a release or a loss wait for the next server. */
  private forwardPending(conn: ServerConnection, pending: Buffer[]): void {
    for (const m of pending) {
      if (this.server !== conn || (this.waiting && this.linkState !== 'prelude')) {
        // The first messages released the server again or lost it: the rest waits for the next one.
        (this.pending ??= []).push(m);
        continue;
      }
      this.forward(m[0]!, m, 0, m.length);
    }
    this.flushServer();
  }

  /** Waiting failed: the waiting requests get an error (the session goes on), or at startup the client is refused. */
  failAcquire(e: ErrorSpec): void {
    this.acq.clearHold();
    this.to('idle');
    if (this.phase === 'linking') return this.fatal(e);
    this.window.dropRerun();
    if (this.window.preludeMsgs > 0) {
      // A rerun of a transaction whose BEGIN the client saw answered: the opening is
      // not the client's to be answered again, and its block is lost.
      this.pending = (this.pending ?? []).slice(this.window.preludeMsgs);
      this.window.preludeMsgs = 0;
      return this.abandonPrelude(lostTransaction(`this transaction could not move to a writable primary (${e.code}: ${e.message})`));
    }
    this.failPending(e);
  }

  /** Answers the pending requests with one error per batch (and ReadyForQuery per Sync/Query), as the server would. */
  private failPending(e: ErrorSpec): void {
    const pending = this.pending ?? [];
    this.pending = null;
    const err = errorResponse(e);
    let sentError = false;
    let open = false;
    for (const m of pending) {
      const t = m[0]!;
      if (t === F_TERMINATE) return this.close();
      if (t === F_SYNC || t === F_QUERY || t === F_FUNCTION_CALL) {
        if (!sentError && !this.discardUntilSync) this.writeClient(err);
        this.writeClient(READY_IDLE);
        sentError = false;
        open = false;
        this.discardUntilSync = false;
      } else if (t !== F_FLUSH && t !== F_COPY_DATA && t !== F_COPY_DONE && t !== F_COPY_FAIL) {
        if (!sentError && !this.discardUntilSync) {
          this.writeClient(err);
          sentError = true;
        }
        open = true;
      }
    }
    if (open) this.discardUntilSync = true;
    this.flushClient();
    this.socket.resume();
  }

  /** Gives the server back between transactions (transaction mode). */
  private releaseServer(): void {
    const conn = this.server!;
    this.unlinkServer();
    this.giveUpRetry();
    this.flushClient();
    conn.socket.resume();
    if (conn.readOnlySeen) conn.close();
    else conn.pool.release(conn);
    // Messages that arrived while the server was finishing wait for the next one.
    if (this.pending !== null && this.pending.length > 0 && !this.waiting) this.startAcquire();
  }

  /** The startup link is done: parameters, our key, ReadyForQuery. */
  private welcome(conn: ServerConnection): void {
    this.key = this.ctx.register(this);
    const parts: Buffer[] = [];
    for (const [k, v] of conn.reported) parts.push(parameterStatus(k, v));
    parts.push(backendKeyData(this.key.processId, this.key.secretKey), READY_IDLE);
    this.phase = 'ready';
    this.pending = null;
    this.socket.write(Buffer.concat(parts));
    if (this.ctx.mode === 'transaction') this.releaseServer();
    this.socket.resume();
  }

  // -------------------------------------------------------------------------
  // Cancel, errors, close

  /** Our CancelRequest key matched: pass it to the server backend running this client's query. */
  cancelQuery(): void {
    const s = this.server;
    if (s && s.processId !== 0) this.ctx.cancelServer(s.target, s.processId, s.secretKey);
  }

  protocolError(why: string): void {
    this.ctx.counters.protocolErrors++;
    this.fatal({ code: '08P01', message: `invalid message from the client: ${why}` });
  }

  /** Sends a FATAL error and closes. */
  fatal(e: ErrorSpec): void {
    if (this.phase === 'closed') return;
    try {
      this.giveUpRetry();
      this.flushClient();
      if (!this.socket.destroyed) this.socket.end(errorResponse({ ...e, severity: 'FATAL' }));
    } catch {
      // The socket is gone: nothing to tell.
    }
    this.close();
  }

  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.acq.clearHold();
    this.login?.stop();
    this.pending = null;
    const conn = this.server;
    this.unlinkServer();
    if (conn) {
      const clean = this.q.empty && this.txStatus === TX_IDLE && !this.midBatch && !conn.closed;
      // Paused while this client could not keep up: whoever uses it next must hear it.
      if (clean) conn.socket.resume();
      if (!clean) conn.close();
      else if (this.ctx.mode === 'session') {
        // The next client must not see this one's session state.
        conn.runInternal('DISCARD ALL', (err) => {
          if (err) return conn.close();
          conn.prepared.clear();
          conn.setByProxy.clear();
          conn.paramsSig = null;
          conn.pool.release(conn);
        });
      } else conn.pool.release(conn);
    }
    if (this.key) this.ctx.unregister(this);
    if (this.admittedIn && this.identity) this.ctx.leave(this.identity);
    this.admittedIn = false;
    const socket = this.socket;
    if (!socket.destroyed) {
      // end() lets a FATAL already written reach the client; a peer that never closes its side is cut off.
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
    }
  }
}

// tryLinkNow's answers.
const NOT_NOW = 0;
const LINKED = 1;
const SYNCING = 2;
