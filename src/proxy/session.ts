// One client connection's state machine (docs/proxy.md).
//
//   startup -> (TLS) -> auth (SCRAM against the stored verifier) -> link a server
//   (hold while there is no writable primary) -> welcome -> ready
//
// In ready, client messages are checked and forwarded as slices of the bytes
// that arrived; server messages are framed and forwarded the same way. The
// response queue follows each request the server will answer, which lets the
// proxy (a) give the server connection back at the right ReadyForQuery in
// transaction mode, (b) answer some requests itself in order (prepared
// statements, prepared.ts) and (c) fail exactly the requests in flight when a
// server connection is lost. Everything is bounded: message sizes (framer), the
// queue (one entry per request the client pipelined, at most what one chunk
// holds), and the bytes kept for a retry.

import type net from 'node:net';
import tls from 'node:tls';
import { describeType, Framer } from './protocol/framer.js';
import { readShared } from './shared-read.js';
import {
  AUTH_MESSAGE_BYTES_MAX,
  bindStatementSpan,
  checkFrontendMessage,
  cstringEnd,
  parseSaslInitialResponse,
  parseStartupPacket,
  PROTOCOL_MINOR_LATEST,
  saslResponseData,
  STARTUP_PACKET_BYTES_MAX,
} from './protocol/frontend.js';
import { isFatal, parseErrorFields, readyStatus, type ErrorFields } from './protocol/backend.js';
import {
  AUTHENTICATION_OK,
  authenticationSasl,
  authenticationSaslContinue,
  authenticationSaslFinal,
  backendKeyData,
  CLOSE_COMPLETE,
  closeStatement,
  errorResponse,
  negotiateProtocolVersion,
  parameterStatus,
  PARSE_COMPLETE,
  parseRenamed,
  READY_IDLE,
  SSL_NO,
  SSL_YES,
  withNameReplaced,
  type ErrorSpec,
} from './protocol/write.js';
import { ClientStatements, CLIENT_STATEMENTS_MAX, touchServerStatement, type Statement, type StatementNames } from './prepared.js';
import { ServerError, TRACKED_PARAMS, type ServerConnection, type ServerHandler } from './server-conn.js';
import type { Pool } from './pool.js';
import type { PoolManager } from './pool-manager.js';
import { terminationCause } from './termination-check.js';
import type { RouteTarget, Router } from './router.js';
import { isRefusal, type ClaimedIdentity, type ProxyRefusal, type ResolveIdentity, type ScramServerExchange } from './types.js';
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
import { tlsServerEndPoint } from './channel-binding.js';
import { checkScramMechanism, scramMechanisms } from './scram-server.js';
import type { ScramVerifier } from '../auth/scram.js';

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

/** CommandComplete tags of statements that do not commit by themselves (in a batch, the commit comes at Sync or COMMIT). */
const PRECOMMIT_TAGS = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'BEGIN', 'SET', 'SHOW']);

function isPrecommitTag(buf: Buffer, start: number, end: number): boolean {
  const sp = buf.indexOf(0x20, start + 5);
  const wordEnd = sp >= 0 && sp < end - 1 ? sp : end - 1;
  return PRECOMMIT_TAGS.has(buf.toString('latin1', start + 5, wordEnd));
}

/** CommandComplete of BEGIN or START TRANSACTION (whatever their options): a transaction block opened, nothing else done. */
function isBeginTag(buf: Buffer, start: number, end: number): boolean {
  const tag = buf.toString('latin1', start + 5, end - 1);
  return tag === 'BEGIN' || tag === 'START TRANSACTION';
}

// Where a retry window's first batch stands as the transaction's opening
// (docs/proxy.md, Failover): a bare BEGIN the client may see answered while the
// transaction can still move, because running it again answers the same.
const OPENING_CANDIDATE = 0; // nothing but protocol acknowledgements yet
const OPENING_BEGUN = 1; // exactly one BEGIN completed, nothing else
const OPENING_ANSWERED = 2; // the opening batch is over and the client has its answer; the window goes on to the next batch
const OPENING_NONE = 3; // the first batch was something else: the window ends with it

/** Server messages that say nothing about what a statement did (ParseComplete, BindComplete, CloseComplete, ParameterDescription, NoData, ParameterStatus). */
function isProtocolAck(type: number): boolean {
  return type === 0x31 || type === 0x32 || type === 0x33 || type === 0x74 || type === 0x6e || type === 0x53;
}

/** Messages of the first batch in `msgs` (up to and including its Query, Sync or FunctionCall). */
function firstBatchLength(msgs: readonly Buffer[]): number {
  for (let i = 0; i < msgs.length; i++) {
    const t = msgs[i]![0];
    if (t === 0x51 || t === 0x53 || t === 0x46) return i + 1;
  }
  return msgs.length;
}

/** Terminate ('X', length 4): the whole of what a client that gives up before its startup packet sends. */
function isTerminate(chunk: Buffer): boolean {
  return chunk.length === 5 && chunk[0] === 0x58 && chunk.readInt32BE(1) === 4;
}

/** After the proxy ends a client connection, how long the peer has to close its side. */
const CLOSE_LINGER_MS = 5_000;
/** Client bytes read and kept while waiting for a server before reading pauses (then at most one more chunk or message). */
const WAIT_READ_BYTES_MAX = 256 * 1024;
/** Client bytes kept for a transparent retry of a transaction's first requests, at most. */
const REPLAY_BYTES_MAX = 256 * 1024;
/** Between retries when the server refuses but the view has not changed. */
const RETRY_BACKOFF_MS = [20, 50, 100, 200, 400];
/** Server errors that say the server session ended without running what it was sent (its backend was terminated or is shutting down). */
const ENDED_UNRUN_CODES = new Set(['57P01', '57P02', '57P03']);
/** idle_session_timeout: the server ended a session that was idle outside a transaction. */
const IDLE_SESSION_TIMEOUT = '57P05';

type Phase = 'startup' | 'auth' | 'linking' | 'ready' | 'closed';

export class Session implements ServerHandler {
  socket: net.Socket;
  private phase: Phase = 'startup';
  private readonly framer = new Framer(STARTUP_PACKET_BYTES_MAX, false, 4);
  private isTls = false;
  private sni: string | undefined;
  identity: ClaimedIdentity | null = null;
  private admitted = false;
  private scram: ScramServerExchange | null = null;
  /** The refusal a doomed exchange ends with. */
  private doomed: ProxyRefusal | null = null;
  private saslStep = 0;
  /** tls-server-end-point data of this connection when SCRAM-SHA-256-PLUS is offered (TLS, a bindable certificate). */
  private serverEndPoint: Buffer | null = null;
  key: { processId: number; secretKey: number } | null = null;
  private authTimer: NodeJS.Timeout | null = null;
  /** Tracked parameters this client wants on its server connections (startup values, then its own SETs). */
  private wanted: Map<string, string> = new Map();
  /** A canonical spelling of `wanted`: a server connection synced to the same one needs no check. */
  private wantedSig = '[]';

  // --- the linked server, and the transaction on it
  server: ServerConnection | null = null;
  private txStatus = 0x49; // 'I'
  /** Extended-protocol messages forwarded since the last Sync (the server is mid-batch). */
  private midBatch = false;
  /** After an error the proxy made up (or a lost server), client messages are dropped until Sync, as Postgres does. */
  private discardUntilSync = false;
  private statements: ClientStatements | null = null;

  // --- waiting for a server
  private lastRoute: RouteTarget | null = null;
  private lastPool: Pool | null = null;
  /** Client bytes kept since this wait for a server began (startAcquire). */
  private waitReadBytes = 0;
  private acquiring = false;
  private pending: Buffer[] | null = null;
  private holdDeadlineMs = 0;
  private holdOff: (() => void) | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private retryStep = 0;

  // --- a transparent retry of the current transaction's first requests (the retry window)
  private replay: Buffer[] | null = null;
  private replayBytes = 0;
  /** The window's first batch as a possible opening (OPENING_*). */
  private opening = OPENING_NONE;
  /** Messages at the head of `replay` that make the opening the client has already seen answered (0: none). */
  private openingMsgs = 0;
  /** What the window changed in the client's statement table ([name, entry before]), undone before it runs again. */
  private journal: [string, Statement | undefined][] | null = null;
  /** The next link runs the window again (set by requeueWindow): keep the transaction's retry state. */
  private rerun = false;
  /** On a rerun, the leading pending messages that re-create the opening: sent first, answers swallowed. */
  private preludeMsgs = 0;
  /** A prelude runs on the linked server: its answers are swallowed, the client's messages wait for its ReadyForQuery. */
  private preluding = false;
  /** A transaction being moved off a fenced server gives up at this time (0: not moving): one bound per transaction, however often it meets the fence. */
  private moveDeadlineMs = 0;
  /** Responses held back while a retry is possible (replay !== null): the client sees nothing of a batch that may run again. */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private serverFatal: ErrorFields | null = null;
  /** The server was lost while the client was inside a transaction block with nothing in flight: its next request gets this error. */
  private lostTransaction: ErrorSpec | null = null;
  /** A 25006 in the retry window on the primary: is the server being fenced? (checkFence) */
  private fenceSuspect = false;
  /** This transaction's 25006 was checked and it ran again where it was: a 25006 now is the client's own. */
  private fenceSettled = false;

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

  // --- output batching: a contiguous range of a chunk, written as one slice
  private outBuf: Buffer | null = null;
  private outStart = 0;
  private outEnd = 0;
  private srvBuf: Buffer | null = null;
  private srvStart = 0;
  private srvEnd = 0;

  constructor(
    socket: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socket;
    this.attach(socket);
    if (ctx.sharedReads && !readShared(socket, this.onSharedRead)) socket.resume();
    this.authTimer = setTimeout(() => this.fatal({ code: '08006', message: `startup and authentication did not finish within ${ctx.authTimeoutMs} ms` }), ctx.authTimeoutMs);
    this.authTimer.unref();
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
    if (!this.acquiring && this.phase === 'ready') this.socket.resume();
  };

  private attach(s: net.Socket): void {
    s.on('data', this.onData);
    s.on('close', this.onClose);
    s.on('error', this.onError);
    s.on('drain', this.onClientDrain);
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
          if (!this.startupPacket(f.buf, f.start, f.end)) return;
        } else if (this.phase === 'auth') {
          this.authMessage(f.type, f.buf, f.start, f.end);
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
    if (this.acquiring) {
      // Waiting for a server: keep it (bounded: reading pauses past WAIT_READ_BYTES_MAX).
      this.pending!.push(buf.subarray(start, end));
      this.waitReadBytes += end - start;
      if (this.waitReadBytes > WAIT_READ_BYTES_MAX) this.socket.pause();
      return;
    }
    if (this.server === null) {
      if (type === 0x58) return this.close(); // X Terminate
      if (this.discardUntilSync) {
        if (type !== 0x53) return;
        this.discardUntilSync = false;
        return this.writeClient(READY_IDLE);
      }
      switch (type) {
        case 0x53: // Sync with nothing open: Postgres answers ReadyForQuery
          return this.writeClient(READY_IDLE);
        case 0x48: // Flush: nothing to flush
        case 0x64: // CopyData, CopyDone, CopyFail outside COPY: Postgres ignores them
        case 0x63:
        case 0x66:
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
    if (this.replay !== null) {
      this.replayBytes += end - start;
      if (this.replayBytes > REPLAY_BYTES_MAX) this.giveUpRetry();
      else this.replay.push(buf.subarray(start, end));
    }
    if (this.discardUntilSync) {
      if (type !== 0x53) return;
      this.discardUntilSync = false;
    }
    const rewrite = this.ctx.mode === 'transaction';
    switch (type) {
      case 0x51: // Q
        this.push(K_QUERY);
        break;
      case 0x53: // S
        this.midBatch = false;
        this.push(K_SYNC);
        break;
      case 0x46: // F
        this.push(K_FUNC);
        break;
      case 0x58: // X: the client is leaving; the server stays (or goes) as close() decides
        return this.close();
      case 0x50: // P
        this.midBatch = true;
        if (rewrite && buf[start + 5] !== 0) return this.rewriteParse(buf, start, end);
        this.push(K_PARSE);
        break;
      case 0x42: // B
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
      case 0x44: // D
      case 0x43: {
        // C
        this.midBatch = true;
        const statement = buf[start + 5] === 0x53;
        const named = buf[start + 6] !== 0;
        if (rewrite && statement && named) {
          const clientName = buf.toString('utf8', start + 6, end - 1);
          if (type === 0x43) {
            // Statements stay on the server (shared, evicted by LRU): only the client forgets it.
            this.note(clientName);
            this.statements?.delete(clientName);
            return this.pushFake(K_FAKE_CLOSE, null, null);
          }
          const name = this.renameFor(clientName);
          if (name !== null) {
            this.push(K_DESC_STMT);
            return this.writeServer(withNameReplaced(buf, start, end, start + 6, end - 1, name));
          }
        }
        this.push(type === 0x43 ? K_CLOSE : statement ? K_DESC_STMT : K_DESC_PORTAL);
        break;
      }
      case 0x45: // E
        this.midBatch = true;
        this.push(K_EXECUTE);
        break;
      case 0x48: // H Flush: the client waits for answers before its Sync, so none may be held back
        if (this.replay !== null) this.giveUpRetry();
        break;
      default:
        // d CopyData, c CopyDone, f CopyFail: no entry of their own.
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
    this.note(clientName);
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

  /** Remembers a client statement's entry before the retry window changes it (undoWindowStatements). */
  private note(clientName: string): void {
    if (this.replay === null) return;
    (this.journal ??= []).push([clientName, this.statements?.get(clientName)]);
  }

  /** Puts the client's statement table back as it was when the window began: its Parse and Close run again. */
  private undoWindowStatements(): void {
    const j = this.journal;
    this.journal = null;
    if (j === null) return;
    const statements = (this.statements ??= new ClientStatements());
    for (let i = j.length - 1; i >= 0; i--) {
      const [name, before] = j[i]!;
      if (before === undefined) statements.delete(name);
      else statements.add(name, before);
    }
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
    let release = false;
    let checkFence = false;
    let preludeDone = false;
    while (f.next()) {
      const t = f.type;
      const kind = this.q.headKind();
      // Anything but BEGIN's own answers makes the window's first batch more than an opening.
      if (this.opening < OPENING_ANSWERED && t !== 0x43 && t !== 0x5a && !isProtocolAck(t)) this.opening = OPENING_NONE;
      let show = true;
      switch (t) {
        case 0x5a: // Z ReadyForQuery
          this.txStatus = readyStatus(f.buf, f.start);
          if (kind === K_SYNC || kind === K_QUERY || kind === K_FUNC) this.pop(false, false);
          if (this.preluding) {
            // The opening ran again; the client's own messages follow once it is checked (endPrelude).
            this.preluding = false;
            preludeDone = true;
            show = false;
            break;
          }
          if (this.fenceSuspect && this.txStatus !== 0x54 && this.q.empty) {
            // Hold this answer back until we know whether the server is fenced (after this chunk:
            // the fence's termination may follow in it).
            checkFence = true;
            break;
          }
          this.fenceSuspect = false;
          if (this.replay !== null) {
            if (this.opening === OPENING_BEGUN && this.txStatus === 0x54) {
              // A bare BEGIN: the client sees it answered, and the window goes on to its next batch.
              this.opening = OPENING_ANSWERED;
              this.openingMsgs = firstBatchLength(this.replay);
              this.forwardToClient(f.buf, f.start, f.end);
              this.showHeld();
              show = false;
              break;
            }
            // The window is over: it will not run again, the client may see it.
            this.giveUpRetry();
          }
          release = this.txStatus === 0x49 && this.q.empty && !this.midBatch;
          break;
        case 0x45: {
          // E ErrorResponse
          const e = parseErrorFields(f.buf, f.start, f.end);
          // A write refused as read-only on what the view calls the primary: maybe a fence (switchover), maybe the database's own setting. Checked at ReadyForQuery.
          if (e.code === '25006' && conn.target.primary) {
            // A connection to the primary that refuses writes may sit on a fenced server: it is not pooled again.
            conn.readOnlySeen = true;
            if (this.replay !== null && !this.identity!.readOnly && !this.fenceSettled) this.fenceSuspect = true;
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
        case 0x31: // 1 ParseComplete
          if (kind === K_SWALLOW_PARSE) {
            this.pop(false, false);
            show = false;
          } else if (kind === K_PARSE) this.pop(false, false);
          break;
        case 0x32: // 2 BindComplete
          if (kind === K_BIND) this.pop(false, false);
          break;
        case 0x33: // 3 CloseComplete
          if (kind === K_SWALLOW_CLOSE) {
            this.pop(false, false);
            show = false;
          } else if (kind === K_CLOSE) this.pop(false, false);
          break;
        case 0x54: // T RowDescription
        case 0x6e: // n NoData
          if (kind === K_DESC_STMT || kind === K_DESC_PORTAL) this.pop(false, false);
          break;
        case 0x43: // C CommandComplete
          if (f.buf[f.start + 5] === 0x44) this.noteDiscard(conn, f.buf, f.start, f.end);
          if (this.replay !== null) this.windowCommandComplete(kind, f.buf, f.start, f.end);
          if (kind === K_EXECUTE) this.pop(false, false);
          break;
        case 0x49: // I EmptyQueryResponse
        case 0x73: // s PortalSuspended
          if (kind === K_EXECUTE) this.pop(false, false);
          break;
        case 0x4e: // N NoticeResponse: e.g. "canceling the wait for synchronous replication" (committed locally): never retry after one
        case 0x47: // G CopyInResponse: the client must see it to send its data
        case 0x48: // H CopyOutResponse
        case 0x57: // W CopyBothResponse
          if (this.replay !== null) this.giveUpRetry();
          break;
        case 0x53: {
          // S ParameterStatus: the server's value, and (for tracked ones) what this client now wants
          const p = conn.noteParameter(f.buf, f.start, f.end);
          if (p && TRACKED_PARAMS.has(p[0]) && this.wanted.get(p[0]) !== p[1]) this.want(p[0], p[1]);
          break;
        }
        default:
          break;
      }
      // A prelude's answers are the client's old news: swallowed.
      if (show && !this.preluding && !preludeDone) this.forwardToClient(f.buf, f.start, f.end);
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
      if (this.serverFatal === null && this.replay !== null) this.checkFence(conn);
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
    if (this.opening === OPENING_CANDIDATE && isBeginTag(buf, start, end)) {
      this.opening = OPENING_BEGUN;
      return;
    }
    if (this.opening !== OPENING_ANSWERED) this.opening = OPENING_NONE;
    if (kind === K_QUERY || !isPrecommitTag(buf, start, end)) this.giveUpRetry();
  }

  /**
   * The retry window failed with 25006 (read-only) on the primary, and nothing
   * else of it is in flight. ogel's fence makes the server read-only with ALTER
   * SYSTEM (the `configuration file` source), first for new transactions while
   * the switchover drains open ones, then for good; a new primary is read-only
   * while still in recovery; a database, role or session setting, or BEGIN READ
   * ONLY, is the client's own. A fence: the window runs
   * again on the next writable server (nothing of it took effect: it failed,
   * and the client saw at most its opening BEGIN). Otherwise the client gets
   * the error it earned. An aborted block (status E) must be rolled back before
   * the server answers anything; it then runs again here, once, so that the
   * client's block is in the state it would be in (aborted, by the same error)
   * and the server's matches it.
   */
  private checkFence(conn: ServerConnection): void {
    this.fenceSuspect = false;
    this.acquiring = true; // the client's next messages wait
    this.pending ??= [];
    this.socket.pause();
    const aborted = this.txStatus !== 0x49;
    let source: string | null = null;
    conn.runInternal(
      (aborted ? 'ROLLBACK;' : '') +
        "SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN 'recovery' WHEN setting = 'off' THEN 'off' ELSE source END FROM pg_catalog.pg_settings WHERE name = 'default_transaction_read_only'",
      (err) => {
        if (this.phase === 'closed' || this.server !== conn) return;
        // 'recovery': the view already names this node the primary while it is still
        // being promoted (its lease renewal can commit before pg_promote is done).
        if (err !== null || source === 'configuration file' || source === 'recovery') return this.moveOffFence(conn);
        // 'off': writable now, so the refusal came from a fence lifted since (a new
        // primary is unfenced just after the view calls it writable), or from the
        // transaction itself (BEGIN READ ONLY): one more run here tells them apart.
        if (aborted || source === 'off') return this.rerunHere(conn);
        this.passOnFenceCheck();
      },
      (v) => (source = v),
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
    if (this.moveDeadlineMs === 0) this.moveDeadlineMs = performance.now() + this.ctx.holdTimeoutMs;
    this.holdDeadlineMs = this.moveDeadlineMs;
    this.retryStep = 0;
    this.hold(new ServerError(`${t.node} (generation ${t.generation}) refuses writes: it is fenced for a failover or switchover`, '25006', true));
  }

  /** Runs the window again on the same server connection (idle now), once: a 25006 then is the client's own. */
  private rerunHere(conn: ServerConnection): void {
    this.fenceSettled = true;
    this.requeueWindow();
    this.link(conn);
  }

  /** Not a fence: the held error (and its ReadyForQuery, status I) goes to the client; what it sent meanwhile goes on. */
  private passOnFenceCheck(): void {
    this.giveUpRetry();
    this.flushClient();
    this.acquiring = false;
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
    if (!this.acquiring) this.socket.resume();
  }

  /**
   * The retry window runs again from its start (after a fence, or a backend
   * terminated before it answered): its messages go back to the head of
   * `pending`, the opening the client already saw answered marked as the
   * prelude, and the client's statement table as it was before the window.
   * The server connection is gone or idle; what it answered is dropped.
   */
  private requeueWindow(): void {
    this.ctx.counters.retried++;
    this.resetQueue();
    this.undoWindowStatements();
    this.midBatch = false;
    this.discardUntilSync = false; // as when the window began: its messages are checked again
    this.txStatus = 0x49;
    const replay = this.replay ?? [];
    this.preludeMsgs = this.openingMsgs;
    this.rerun = true;
    this.replay = null;
    this.opening = OPENING_NONE;
    this.openingMsgs = 0;
    this.preluding = false;
    this.held = null;
    this.heldBytes = 0;
    this.outBuf = null;
    this.pending = [...replay, ...(this.pending ?? [])];
  }

  /**
   * The prelude (the opening run again) answered. It must have opened the
   * transaction as the first time did (one BEGIN, status T); then the client's
   * messages follow. Anything else, and the client's transaction is lost.
   */
  private endPrelude(conn: ServerConnection): void {
    if (this.server !== conn) return;
    if (this.opening !== OPENING_BEGUN || this.txStatus !== 0x54 || this.replay === null) {
      this.unlinkServer();
      conn.close();
      return this.abandonPrelude(lostTransaction(`${describeTarget(conn.target)} did not open this transaction again as the first server did (its BEGIN failed)`));
    }
    this.opening = OPENING_ANSWERED;
    this.openingMsgs = this.replay.length;
    this.acquiring = false;
    const pending = this.pending;
    this.pending = null;
    if (pending !== null) this.forwardPending(conn, pending);
    if (!this.acquiring && this.phase === 'ready') this.socket.resume();
  }

  /** A prelude could not re-create the opening: the client's messages since get the error, or (none yet) its next one does. */
  private abandonPrelude(spec: ErrorSpec): void {
    this.preluding = false;
    this.acquiring = false;
    this.resetQueue();
    this.midBatch = false;
    this.txStatus = 0x49;
    this.replay = null;
    this.opening = OPENING_NONE;
    this.openingMsgs = 0;
    this.journal = null;
    this.held = null;
    this.heldBytes = 0;
    this.ctx.counters.failedInFlight++;
    if (this.pending === null || this.pending.length === 0) {
      this.pending = null;
      this.lostTransaction = spec;
      this.socket.resume();
      return;
    }
    this.failPending(spec);
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
    if (fatal.code === IDLE_SESSION_TIMEOUT && this.replay !== null) {
      // The server ended an idle session (idle_session_timeout) as the proxy handed
      // it a transaction: it sends that only while idle, before it reads anything,
      // so nothing ran. Another connection takes the transaction.
      this.requeueWindow();
      this.startAcquire();
      return;
    }
    if (!ENDED_UNRUN_CODES.has(fatal.code)) return this.lostToServer(t, fatal);
    if (this.viewMoved(t)) return this.lostToCluster(t, fatal, undefined);
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
    if (this.replay !== null && fatal !== null && ENDED_UNRUN_CODES.has(fatal.code)) {
      this.requeueWindow();
      this.startAcquire();
      return;
    }
    this.failLost(spec);
  }

  /**
   * The server ended the session for a reason of its own (pg_terminate_backend()
   * by an operator, idle_in_transaction_session_timeout, ...): no failover. The
   * client gets the server's error, as it would directly, without the session
   * ending (its next transaction takes another server connection).
   */
  private lostToServer(t: RouteTarget, fatal: ErrorFields): void {
    this.failLost({
      code: fatal.code || '08006',
      message: fatal.message,
      detail: `the server ${t.node} ended the session running this transaction; the transaction did not complete, or, if COMMIT was in flight, its outcome is unknown`,
    });
  }

  /** Every request in flight gets `spec`; a client idle in its block gets it at its next request. */
  private failLost(spec: ErrorSpec): void {
    if (this.preluding) return this.abandonPrelude(spec);
    // What the server answered before it went belongs before the error.
    this.giveUpRetry();
    this.ctx.counters.failedInFlight++;
    const inBlock = this.txStatus !== 0x49;
    const answered = !this.q.empty || this.midBatch;
    this.failOutstanding(spec);
    // Idle inside BEGIN ... with nothing in flight: the client must not go on as if its transaction were open.
    if (inBlock && !answered) this.lostTransaction = spec;
  }

  /** The view no longer names this server for the session: the cluster moved (a new generation, no writable primary, another primary). */
  private viewMoved(t: RouteTarget): boolean {
    if (this.ctx.router.generation() !== t.generation) return true;
    if (!t.primary) return false;
    const r = this.ctx.router.route(false);
    return r === 'hold' || r.node !== t.node || r.generation !== t.generation;
  }

  /**
   * A backend terminated (57P01..57P03) while the view still names its server: a
   * fence or a shutdown the view does not show yet, or an operator's
   * pg_terminate_backend() (termination-check.ts asks the server). The client's
   * messages wait meanwhile, as while acquiring.
   */
  private checkTermination(conn: ServerConnection, fatal: ErrorFields): void {
    const t = conn.target;
    this.acquiring = true;
    this.pending ??= [];
    this.socket.pause();
    void terminationCause(conn.pool).then((by) => {
      if (this.phase === 'closed') return;
      this.acquiring = false;
      if (by === 'cluster' || this.viewMoved(t)) this.lostToCluster(t, fatal, undefined);
      else this.lostToServer(t, fatal);
      if (this.acquiring) return; // a rerun took the waiting messages with it
      const pending = this.pending ?? [];
      this.pending = null;
      for (const m of pending) {
        if (this.phase !== 'ready') return;
        if (this.acquiring) this.pending!.push(m);
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
    this.txStatus = 0x49;
    this.replay = null;
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
    if (this.outBuf === buf && this.outEnd === start) {
      this.outEnd = end;
      return;
    }
    this.flushClient();
    this.outBuf = buf;
    this.outStart = start;
    this.outEnd = end;
  }

  private flushClient(): void {
    const b = this.outBuf;
    if (b === null) return;
    this.outBuf = null;
    const out = this.outStart === 0 && this.outEnd === b.length ? b : b.subarray(this.outStart, this.outEnd);
    if (this.replay !== null) return this.holdBack(this.inServerChunk ? Buffer.from(out) : out);
    this.writeOut(out);
  }

  /** Writes to the client (the single place, so a view of a reused read buffer is never left referenced). */
  private writeOut(b: Buffer): void {
    this.socket.write(b);
  }

  private writeClient(b: Buffer): void {
    if (this.preluding) return; // the prelude's made-up answers too: the client saw them the first time
    this.flushClient();
    if (this.replay !== null) return this.holdBack(b);
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Keeps a response back while the batch may still run again (bounded: past the bound, no retry). */
  private holdBack(b: Buffer): void {
    (this.held ??= []).push(b);
    this.heldBytes += b.length;
    if (this.heldBytes > REPLAY_BYTES_MAX) this.giveUpRetry();
  }

  /** No retry for this transaction any more: what was held back goes to the client now. */
  private giveUpRetry(): void {
    // What was held goes out; the range being collected (outBuf) comes after it and
    // stays pending, so a batch answered within one chunk still leaves in one write.
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    if (held !== null && !this.socket.destroyed) for (const h of held) this.writeOut(h);
    this.replay = null;
    this.opening = OPENING_NONE;
    this.openingMsgs = 0;
    this.journal = null;
  }

  /** What was held back goes to the client now, in order (the window, if any, goes on: after the opening's answer). */
  private showHeld(): void {
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    if (held !== null && !this.socket.destroyed) for (const h of held) this.writeOut(h);
    // The range being collected comes after what was held: out now too, not held (the window goes on after it).
    const b = this.outBuf;
    if (b !== null) {
      this.outBuf = null;
      if (!this.socket.destroyed) this.writeOut(this.outStart === 0 && this.outEnd === b.length ? b : b.subarray(this.outStart, this.outEnd));
    }
  }

  private forwardRange(buf: Buffer, start: number, end: number): void {
    if (this.srvBuf === buf && this.srvEnd === start) {
      this.srvEnd = end;
      return;
    }
    this.flushServer();
    this.srvBuf = buf;
    this.srvStart = start;
    this.srvEnd = end;
  }

  private flushServer(): void {
    const b = this.srvBuf;
    if (b === null) return;
    this.srvBuf = null;
    const s = this.server;
    if (!s || s.closed) return;
    // A socket already ended or destroyed (its close event not yet run) refuses
    // the write too, but will never drain: its close unlinks it (serverLost).
    if (!s.write(this.srvStart === 0 && this.srvEnd === b.length ? b : b.subarray(this.srvStart, this.srvEnd)) && s.socket.writable && this.drainWaitOn === null) {
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
    const w = this.drainWaitOn;
    if (w === null) return;
    this.drainWaitOn = null;
    w.removeListener('drain', this.onServerDrain);
    if (!this.acquiring && this.phase === 'ready') this.socket.resume();
  }

  // -------------------------------------------------------------------------
  // Getting a server (with the failover hold)

  private startAcquire(): void {
    this.acquiring = true;
    // In ready, reading goes on while waiting (a queued transaction costs no
    // readStop/readStart) until the messages kept reach a bound; before ready,
    // nothing may be read until the welcome.
    this.waitReadBytes = 0;
    if (this.phase !== 'ready') this.socket.pause();
    this.holdDeadlineMs = performance.now() + this.ctx.holdTimeoutMs;
    this.retryStep = 0;
    this.attempt();
  }

  private attempt(): void {
    this.clearHold();
    if (this.phase === 'closed') return;
    const route = this.ctx.router.route(this.identity!.readOnly);
    if (route === 'hold') return this.hold(null);
    const pool = this.poolFor(route);
    const conn = pool.tryAcquire();
    if (conn) return this.acquired(conn);
    pool.acquire((c, err) => {
      if (c) return this.acquired(c);
      this.acquireFailed(err!);
    });
  }

  /** The hot path of transaction mode: an idle server of the current view, parameters in step. */
  private tryLinkNow(): number {
    const id = this.identity!;
    const route = this.ctx.router.route(id.readOnly);
    if (route === 'hold') return NOT_NOW;
    const conn = this.poolFor(route).tryAcquire();
    if (conn === null) return NOT_NOW;
    if (conn.target.primary && conn.target.generation !== this.ctx.router.generation()) {
      conn.close();
      return NOT_NOW;
    }
    if (conn.paramsSig === this.wantedSig || conn.paramSync(this.wanted) === '') {
      conn.paramsSig = this.wantedSig;
      this.link(conn);
      return LINKED;
    }
    // Parameters differ: the slow path syncs them.
    this.pending = [];
    this.acquiring = true;
    this.socket.pause();
    this.holdDeadlineMs = performance.now() + this.ctx.holdTimeoutMs;
    this.retryStep = 0;
    this.acquired(conn);
    return SYNCING;
  }

  /** The pool of a route; the last one is kept (the same target object while the view stands): no key built, no Map lookup. */
  private poolFor(route: RouteTarget): Pool {
    let pool = this.lastPool;
    if (pool === null || this.lastRoute !== route || pool.retired) {
      pool = this.ctx.pools.pool(route, this.identity!.database, this.identity!.role);
      this.lastPool = pool;
      this.lastRoute = route;
    }
    return pool;
  }

  private want(name: string, value: string): void {
    this.wanted.set(name, value);
    this.wantedSig = JSON.stringify([...this.wanted].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  private acquireFailed(err: ServerError): void {
    if (this.phase === 'closed') return;
    if (err.transient) return this.hold(err);
    this.failAcquire({ code: err.code, message: err.message });
  }

  /** Waits for a view change (or a short backoff when the server refused), up to the hold deadline. */
  private hold(err: ServerError | null): void {
    const leftMs = this.holdDeadlineMs - performance.now();
    if (leftMs <= 0) {
      this.ctx.counters.holdTimeouts++;
      const reason = err ? err.message : this.ctx.router.holdReason();
      return this.failAcquire({
        code: '57P03',
        message: `no server available within holdTimeoutMs=${this.ctx.holdTimeoutMs}: ${reason}`,
        hint: 'a failover or switchover did not finish in time; retry later',
      });
    }
    if (this.retryStep === 0 && err === null) this.ctx.counters.held++;
    const backoffMs = err ? RETRY_BACKOFF_MS[Math.min(this.retryStep++, RETRY_BACKOFF_MS.length - 1)]! : leftMs;
    this.holdOff = this.ctx.router.onChange(() => this.attempt());
    this.holdTimer = setTimeout(() => this.attempt(), Math.min(backoffMs, leftMs));
  }

  private clearHold(): void {
    if (this.holdOff) {
      this.holdOff();
      this.holdOff = null;
    }
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
  }

  private acquired(conn: ServerConnection): void {
    if (this.phase === 'closed') return conn.pool.release(conn);
    if (conn.closed) return this.attempt();
    // Safety (I3): a connection to a pool of an older generation is never used for a write.
    if (conn.target.primary && conn.target.generation !== this.ctx.router.generation()) {
      conn.close();
      return this.attempt();
    }
    const sql = conn.paramSync(this.wanted);
    if (sql === '') return this.link(conn);
    conn.handler = this;
    conn.runInternal(sql, (err) => {
      if (this.phase === 'closed') return err ? conn.close() : conn.pool.release(conn);
      if (err) {
        conn.close();
        if (err.transient) return this.hold(err);
        // A value the server refuses (e.g. an unknown TimeZone from the startup packet).
        return this.failAcquire({ code: err.code, message: `cannot apply the session parameters: ${err.message}` });
      }
      conn.noteSynced(this.wanted);
      conn.paramsSig = this.wantedSig;
      this.link(conn);
    });
  }

  private link(conn: ServerConnection): void {
    this.acquiring = false;
    this.server = conn;
    conn.handler = this;
    conn.uses++;
    this.serverFatal = null;
    // A new retry window; a transaction that runs again keeps its fence state.
    this.replay = this.ctx.mode === 'transaction' ? [] : null;
    this.replayBytes = 0;
    this.opening = this.replay !== null ? OPENING_CANDIDATE : OPENING_NONE;
    this.openingMsgs = 0;
    this.journal = null;
    if (this.rerun) this.rerun = false;
    else {
      this.fenceSettled = false;
      this.moveDeadlineMs = 0;
    }
    if (this.phase === 'linking') return this.welcome(conn);
    const pending = this.pending;
    this.pending = null;
    if (pending === null) return; // the fast path: the caller forwards its message
    const preludeMsgs = this.preludeMsgs;
    this.preludeMsgs = 0;
    if (preludeMsgs > 0 && this.replay !== null) return this.startPrelude(conn, pending, preludeMsgs);
    this.forwardPending(conn, pending);
    if (!this.acquiring && this.phase === 'ready') this.socket.resume();
  }

  /**
   * A rerun whose client already saw its opening (BEGIN) answered: the opening
   * goes first, alone, its answers swallowed; the rest waits until it is known
   * to have opened the transaction again (endPrelude). Sent together, a BEGIN
   * that failed would leave the client's statement to run outside its block.
   */
  private startPrelude(conn: ServerConnection, pending: Buffer[], preludeMsgs: number): void {
    this.preluding = true;
    this.acquiring = true; // the client's messages wait, as while acquiring
    this.openingMsgs = preludeMsgs; // a rerun of this rerun has the same prelude
    this.pending = pending.slice(preludeMsgs);
    this.forwardPending(conn, pending.slice(0, preludeMsgs));
  }

  /** Forwards waiting client messages to the linked server, in order; those after a release or a loss wait for the next server. */
  private forwardPending(conn: ServerConnection, pending: Buffer[]): void {
    for (const m of pending) {
      if (this.server !== conn || (this.acquiring && !this.preluding)) {
        // The first messages released the server again or lost it: the rest waits for the next one.
        (this.pending ??= []).push(m);
        continue;
      }
      this.forward(m[0]!, m, 0, m.length);
    }
    this.flushServer();
  }

  /** Waiting failed: the waiting requests get an error (the session goes on), or at startup the client is refused. */
  private failAcquire(e: ErrorSpec): void {
    this.clearHold();
    this.acquiring = false;
    if (this.phase === 'linking') return this.fatal(e);
    this.rerun = false;
    if (this.preludeMsgs > 0) {
      // A rerun of a transaction whose BEGIN the client saw answered: the opening is
      // not the client's to be answered again, and its block is lost.
      this.pending = (this.pending ?? []).slice(this.preludeMsgs);
      this.preludeMsgs = 0;
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
      if (t === 0x58) return this.close();
      if (t === 0x53 || t === 0x51 || t === 0x46) {
        if (!sentError && !this.discardUntilSync) this.writeClient(err);
        this.writeClient(READY_IDLE);
        sentError = false;
        open = false;
        this.discardUntilSync = false;
      } else if (t !== 0x48 && t !== 0x64 && t !== 0x63 && t !== 0x66) {
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
    if (this.pending !== null && this.pending.length > 0 && !this.acquiring) this.startAcquire();
  }

  // -------------------------------------------------------------------------
  // Startup and authentication

  /** Returns false when the session ended or changed transport (stop reading this chunk). */
  private startupPacket(buf: Buffer, start: number, end: number): boolean {
    const p = parseStartupPacket(buf, start, end);
    switch (p.kind) {
      case 'invalid':
        this.fatal({ code: p.code, message: p.message });
        return false;
      case 'cancel':
        this.ctx.cancel(p.processId, p.secretKey);
        this.close();
        return false;
      case 'gssenc':
        // GSSAPI encryption is not offered; the client may go on with SSLRequest or a startup packet.
        this.socket.write(SSL_NO);
        return true;
      case 'ssl': {
        if (this.isTls) {
          this.fatal({ code: '08P01', message: 'SSLRequest received on a connection that already uses TLS' });
          return false;
        }
        if (this.ctx.tls === null || this.ctx.tlsMode === 'off') {
          this.socket.write(SSL_NO);
          return true;
        }
        if (this.framer.pendingBytes > 0) {
          // Bytes after SSLRequest, before the handshake: they could have been injected by a man in the middle (CVE-2021-23214).
          this.fatal({ code: '08P01', message: 'received unencrypted data after SSLRequest' });
          return false;
        }
        this.socket.write(SSL_YES);
        this.upgradeTls(this.ctx.tls);
        return false;
      }
      case 'startup':
        break;
    }
    if (p.minor > PROTOCOL_MINOR_LATEST || p.protocolOptions.length > 0) {
      this.socket.write(negotiateProtocolVersion(PROTOCOL_MINOR_LATEST, p.protocolOptions));
    }
    if (this.ctx.tlsMode === 'required' && !this.isTls) {
      this.fatal({ code: '28000', message: 'this server requires TLS', hint: 'connect with sslmode=require (or stronger)' });
      return false;
    }
    const params = p.params;
    const user = params.get('user');
    if (!user) {
      this.fatal({ code: '28000', message: 'no PostgreSQL user name specified in startup packet' });
      return false;
    }
    // As Postgres: the database defaults to the user name.
    if (!params.get('database')) params.set('database', user);
    let identity: ClaimedIdentity | ProxyRefusal;
    try {
      identity = this.ctx.resolveIdentity(params, this.sni);
    } catch (e) {
      this.ctx.log({ level: 'error', msg: 'identity resolution failed', error: (e as Error).message });
      identity = { code: 'XX000', message: 'internal error while checking the connection parameters' };
    }
    if (isRefusal(identity)) {
      if (identity.code === '28P01' && this.ctx.doomedScram !== null) {
        // As Postgres for an unknown user: the whole exchange, then the same 28P01 as a wrong password.
        this.scram = this.ctx.doomedScram(user);
        this.doomed = identity;
        this.phase = 'auth';
        this.framer.configure(true, AUTH_MESSAGE_BYTES_MAX);
        this.offerSasl();
        return true;
      }
      this.ctx.counters.authFailures++;
      this.fatal(identity);
      return false;
    }
    const refused = this.ctx.admit(identity);
    if (refused) {
      this.fatal(refused);
      return false;
    }
    this.identity = identity;
    this.admitted = true;
    for (const [k, v] of identity.serverParams) if (TRACKED_PARAMS.has(k)) this.want(k, v);
    this.scram = this.ctx.scram(identity.verifier, identity);
    this.phase = 'auth';
    this.framer.configure(true, AUTH_MESSAGE_BYTES_MAX);
    this.offerSasl();
    return true;
  }

  /** AuthenticationSASL: SCRAM-SHA-256-PLUS too when this TLS connection's certificate can be bound (channel-binding.ts). */
  private offerSasl(): void {
    if (this.isTls) {
      const raw = (this.socket as tls.TLSSocket).getCertificate();
      this.serverEndPoint = raw !== null && 'raw' in raw && Buffer.isBuffer(raw.raw) ? tlsServerEndPoint(raw.raw) : null;
    }
    this.socket.write(authenticationSasl(scramMechanisms(this.serverEndPoint !== null)));
  }

  private upgradeTls(context: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    raw.removeListener('close', this.onClose);
    raw.removeListener('drain', this.onClientDrain);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.isTls = true;
    this.socket = secure;
    this.attach(secure);
    secure.on('secure', () => {
      const name = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      this.sni = typeof name === 'string' && name !== '' ? name : undefined;
    });
  }

  private authMessage(type: number, buf: Buffer, start: number, end: number): void {
    if (type !== 0x70) return this.protocolError(`expected SASL response, got message type ${describeType(type)}`);
    const scram = this.scram!;
    if (this.saslStep === 0) {
      const r = parseSaslInitialResponse(buf, start, end);
      if (typeof r === 'string') return this.protocolError(r);
      const bad = checkScramMechanism(r.mechanism, this.serverEndPoint !== null);
      if (bad !== null) return this.fatal(bad);
      const out = scram.start(r.data, { mechanism: r.mechanism, serverEndPoint: this.serverEndPoint });
      if (isRefusal(out)) return this.authFailed(this.doomed !== null && out.code === '28P01' ? this.doomed : out);
      this.saslStep = 1;
      this.socket.write(authenticationSaslContinue(out));
      return;
    }
    if (this.saslStep === 1) {
      const out = scram.finish(saslResponseData(buf, start, end));
      if (isRefusal(out)) return this.authFailed(out);
      // A doomed exchange must fail; if it did not, refuse anyway.
      if (this.doomed !== null) return this.authFailed(this.doomed);
      this.saslStep = 2;
      this.scram = null;
      this.socket.write(authenticationSaslFinal(out));
      this.socket.write(AUTHENTICATION_OK);
      if (this.authTimer) clearTimeout(this.authTimer);
      this.authTimer = null;
      this.phase = 'linking';
      this.framer.configure(true, this.ctx.maxMessageBytes);
      this.pending = [];
      this.startAcquire();
      return;
    }
    this.protocolError('unexpected SASL response after authentication');
  }

  private authFailed(r: ProxyRefusal): void {
    this.ctx.counters.authFailures++;
    this.fatal(r);
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

  private protocolError(why: string): void {
    this.ctx.counters.protocolErrors++;
    this.fatal({ code: '08P01', message: `invalid message from the client: ${why}` });
  }

  /** Sends a FATAL error and closes. */
  private fatal(e: ErrorSpec): void {
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
    this.clearHold();
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
    this.pending = null;
    const conn = this.server;
    this.unlinkServer();
    if (conn) {
      const clean = this.q.empty && this.txStatus === 0x49 && !this.midBatch && !conn.closed;
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
    if (this.admitted && this.identity) this.ctx.leave(this.identity);
    this.admitted = false;
    const socket = this.socket;
    if (!socket.destroyed) {
      // end() lets a FATAL already written reach the client; a peer that never closes its side is cut off.
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
    }
  }
}

/** The error for a transaction whose server was lost, or that could not be run again elsewhere. */
function lostTransaction(cause: string): ErrorSpec {
  return {
    code: '08006',
    message: `${cause}: the node failed or is being switched over (failover); the transaction did not complete, or, if COMMIT was in flight, its outcome is unknown`,
    hint: 'retry the transaction: the next one goes to the current primary',
  };
}

function describeTarget(t: RouteTarget): string {
  return `${t.primary ? 'the primary' : 'the standby'} ${t.node} (generation ${t.generation})`;
}

// tryLinkNow's answers.
const NOT_NOW = 0;
const LINKED = 1;
const SYNCING = 2;


