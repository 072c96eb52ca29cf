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
// requests.ts (the client's requests: waiting, forwarding, prepared statements,
// the response queue), retry-window.ts (the retry window), recovery.ts (the
// fence check, a lost server, reruns and the prelude; its questions in
// fence-check.ts and termination-check.ts), out-slice.ts (output batching),
// session-types.ts (the context and the link state). What stays here: the
// sockets, the phase and the link state, the server's answers, and linking and
// giving back servers.

import type net from 'node:net';
import { Framer } from './protocol/framer.js';
import { readShared } from './shared-read.js';
import { AUTH_MESSAGE_BYTES_MAX, checkFrontendMessage, F_TERMINATE, STARTUP_PACKET_BYTES_MAX } from './protocol/frontend.js';
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
import { backendKeyData, errorResponse, parameterStatus, READY_IDLE, type ErrorSpec } from './protocol/write.js';
import { TRACKED_PARAMS, type ServerConnection, type ServerHandler } from './server-conn.js';
import { giveBackAtClose, readBackSettings } from './give-back.js';
import type { ClaimedIdentity, PoolMode } from './types.js';
import {
  isFakeKind,
  K_BIND,
  K_CLOSE,
  K_DESC_PORTAL,
  K_DESC_STMT,
  K_EXECUTE,
  K_FUNC,
  K_PARSE,
  K_QUERY,
  K_SWALLOW_CLOSE,
  K_SWALLOW_PARSE,
  K_SYNC,
} from './response-queue.js';
import { ClientLogin, isTerminate, type LoginHost } from './client-login.js';
import { ServerAcquirer, type AcquireHost } from './server-acquire.js';
import {
  firstBatchLength,
  isBeginTag,
  isPrecommitTag,
  keepsOpening,
  OPENING_ANSWERED,
  OPENING_BEGUN,
  OPENING_CANDIDATE,
  OPENING_NONE,
  RetryWindow,
} from './retry-window.js';
import { describeTarget, ENDED_UNRUN_CODES, lostTransaction } from './fence-check.js';
import { OutSlice } from './out-slice.js';
import { Requests } from './requests.js';
import { Recovery } from './recovery.js';
import { CLOSE_LINGER_MS, LINKED, NOT_NOW, SYNCING, WAIT_READ_BYTES_MAX, type LinkState, type SessionContext } from './session-types.js';

/** The client connection's phase; `link` says where a linking or ready session stands with a server. */
type Phase = 'startup' | 'auth' | 'linking' | 'ready' | 'closed';

export class Session implements ServerHandler, LoginHost, AcquireHost {
  socket: net.Socket;
  private phase: Phase = 'startup';
  private linkState: LinkState = 'idle';
  readonly framer = new Framer(STARTUP_PACKET_BYTES_MAX, false, 4);
  /** Startup and authentication; dropped once authenticated. */
  private login: ClientLogin | null;
  identity: ClaimedIdentity | null = null;
  /** Known once admitted (the client's options pool_mode, else its tenant's, else the proxy's); servers are used only after. */
  private mode: PoolMode = 'transaction';
  private admittedIn = false;
  key: { processId: number; secretKey: number } | null = null;

  // --- the linked server
  server: ServerConnection | null = null;
  private serverFatal: ErrorFields | null = null;

  // --- waiting for a server
  private readonly acq: ServerAcquirer;
  /** Client bytes kept since this wait for a server began (startAcquire). */
  private waitReadBytes = 0;

  /** A transparent retry of the current transaction's first requests. */
  private readonly window = new RetryWindow();
  /** The client's requests: waiting, forwarded, and what the server (or the proxy) still owes them. */
  private readonly req: Requests;
  /** What a fence, a lost server or a rerun does to the transaction; made on first use (an idle client's memory counts). */
  private recovery: Recovery | undefined;

  /** The server socket whose 'drain' this client's reading waits on (flushServer); dropped with the link (a lost server never drains). */
  private drainWaitOn: net.Socket | null = null;
  /** Handling a server chunk (a reused read buffer: what is kept past it is copied). */
  private inServerChunk = false;
  /** A released connection whose settings are read back (give-back.ts), and whether a transaction waits for it; made only meanwhile. */
  private readingBack: { conn: ServerConnection; acquireAfter: boolean } | null = null;
  private readonly out = new OutSlice();
  private readonly toServer = new OutSlice();

  constructor(
    socket: net.Socket,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socket;
    this.acq = new ServerAcquirer(ctx, this);
    this.req = new Requests(ctx, this.window, {
      server: () => this.server,
      writeClient: (b) => this.writeClient(b),
      flushClient: () => this.flushClient(),
      resumeClient: () => this.socket.resume(),
      writeServer: (b) => this.writeServer(b),
      forwardRange: (buf, start, end) => this.forwardRange(buf, start, end),
      giveUpRetry: () => this.giveUpRetry(),
      close: () => this.close(),
      mode: () => this.mode,
    });
    this.attach(socket);
    if (ctx.sharedReads && !readShared(socket, this.onSharedRead)) socket.resume();
    this.login = new ClientLogin(ctx, this);
  }

  private get rec(): Recovery {
    if (this.recovery === undefined) this.recovery = this.makeRecovery();
    return this.recovery;
  }

  private makeRecovery(): Recovery {
    return new Recovery(
      this.ctx,
      {
        server: () => this.server,
        isClosed: () => this.phase === 'closed',
        mode: () => this.mode,
        isReady: () => this.phase === 'ready',
        linkState: () => this.linkState,
        to: (next) => this.to(next),
        waiting: () => this.waiting,
        writeClient: (b) => this.writeClient(b),
        takeServerFatal: () => {
          const fatal = this.serverFatal;
          this.serverFatal = null;
          return fatal;
        },
        unlinkServer: () => this.unlinkServer(),
        linkServer: (conn) => this.linkServer(conn),
        releaseServer: () => this.releaseServer(),
        startAcquire: () => this.startAcquire(),
        forwardPending: (conn, msgs) => this.forwardPending(conn, msgs),
        clientMessage: (m) => this.clientMessage(m[0]!, m, 0, m.length),
        flushClient: () => this.flushClient(),
        flushServer: () => this.flushServer(),
        giveUpRetry: () => this.giveUpRetry(),
        dropOutput: () => this.out.drop(),
        pauseClient: () => this.socket.pause(),
        resumeClient: () => this.socket.resume(),
        fatal: (e) => this.fatal(e),
        close: () => this.close(),
      },
      this.window,
      this.req,
      this.acq,
    );
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
    this.mode = identity.poolMode ?? this.ctx.mode;
    this.admittedIn = true;
    for (const [k, v] of identity.serverParams) if (TRACKED_PARAMS.has(k)) this.acq.want(k, v);
  }

  authenticated(): void {
    this.login = null;
    this.phase = 'linking';
    this.framer.configure(true, this.ctx.maxMessageBytes);
    this.req.pending = [];
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
      this.req.pending!.push(buf.subarray(start, end));
      this.waitReadBytes += end - start;
      if (this.waitReadBytes > WAIT_READ_BYTES_MAX) this.socket.pause();
      return;
    }
    if (this.server === null) {
      if (type === F_TERMINATE) return this.close();
      const alone = this.req.withoutServer(type);
      if (alone === null) return;
      if (alone !== undefined) return this.writeClient(alone);
      // The first message of a transaction: find it a server. The usual case
      // (an idle connection whose parameters already match) links at once.
      const now = this.rec.lostTransaction ? NOT_NOW : this.tryLinkNow();
      if (now === LINKED) return this.req.forward(type, buf, start, end);
      if (now === SYNCING) {
        this.req.pending!.push(buf.subarray(start, end));
        return;
      }
      this.req.pending = [buf.subarray(start, end)];
      const lost = this.rec.takeLostTransaction();
      if (lost !== null) return this.req.failPending(lost);
      this.startAcquire();
      return;
    }
    this.req.forward(type, buf, start, end);
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
      const kind = this.req.headKind();
      // Anything but BEGIN's own answers makes the window's first batch more than an opening.
      if (w.opening < OPENING_ANSWERED && !keepsOpening(t)) w.opening = OPENING_NONE;
      let show = true;
      switch (t) {
        case B_READY_FOR_QUERY:
          this.req.txStatus = readyStatus(f.buf, f.start);
          if (kind === K_SYNC || kind === K_QUERY || kind === K_FUNC) this.req.pop(false, false);
          if (this.linkState === 'prelude') {
            // The opening ran again; the client's own messages follow once it is checked (endPrelude).
            this.to('prelude-answered');
            preludeDone = true;
            show = false;
            break;
          }
          if (this.recovery?.refusalHeld === true) {
            // The refused statement's ReadyForQuery: held with it, unless more of the pipeline follows.
            checkFence = this.req.empty && this.rec.holdRefusal(f.buf.subarray(f.start, f.end));
            if (checkFence) {
              show = false;
              break;
            }
            const held = this.rec.takeRefusal();
            this.forwardToClient(held, 0, held.length);
          }
          if (w.fenceSuspect && this.req.txStatus !== TX_IN_BLOCK && this.req.empty) {
            // Hold this answer back until we know whether the server is fenced (after this chunk:
            // the fence's termination may follow in it).
            checkFence = true;
            break;
          }
          w.fenceSuspect = false;
          if (w.isOpen) {
            if (w.opening === OPENING_BEGUN && this.req.txStatus === TX_IN_BLOCK) {
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
          release = this.req.txStatus === TX_IDLE && this.req.empty && !this.req.midBatch;
          break;
        case B_ERROR: {
          const e = parseErrorFields(f.buf, f.start, f.end);
          // A write refused as read-only on what the view calls the primary: maybe a fence (switchover), maybe the database's own setting. Checked at ReadyForQuery.
          if (e.code === '25006' && conn.target.primary) {
            // A connection to the primary that refuses writes may sit on a fenced server: it is not pooled again.
            conn.readOnlySeen = true;
            if (w.isOpen && !this.identity!.readOnly && !w.fenceSettled) w.fenceSuspect = true;
            // Session mode: held back with its ReadyForQuery while the fence is checked (recovery.ts checkSessionFence).
            else if (this.mode === 'session' && !this.identity!.readOnly) show = !this.rec.holdRefusal(f.buf.subarray(f.start, f.end));
          }
          if (isFatal(e.severity)) {
            this.serverFatal = e;
            // Transaction mode: the session outlives its server; the close that follows says what happened.
            // Session mode: a termination on the primary waits for the check of who ended it (recovery.ts).
            if (this.mode === 'transaction' || (ENDED_UNRUN_CODES.has(e.code) && conn.target.primary)) {
              show = false;
              break;
            }
          }
          if (kind === K_SWALLOW_PARSE || (kind >= K_PARSE && kind <= K_EXECUTE)) {
            this.req.pop(true, false);
            this.req.dropUntilSync();
          }
          break;
        }
        case B_PARSE_COMPLETE:
          if (kind === K_SWALLOW_PARSE) {
            this.req.pop(false, false);
            show = false;
          } else if (kind === K_PARSE) this.req.pop(false, false);
          break;
        case B_BIND_COMPLETE:
          if (kind === K_BIND) this.req.pop(false, false);
          break;
        case B_CLOSE_COMPLETE:
          if (kind === K_SWALLOW_CLOSE) {
            this.req.pop(false, false);
            show = false;
          } else if (kind === K_CLOSE) this.req.pop(false, false);
          break;
        case B_ROW_DESCRIPTION:
        case B_NO_DATA:
          if (kind === K_DESC_STMT || kind === K_DESC_PORTAL) this.req.pop(false, false);
          break;
        case B_COMMAND_COMPLETE:
          if (f.buf[f.start + 5] === 0x44 /* 'D': DISCARD, DEALLOCATE */) this.req.noteDiscard(conn, f.buf, f.start, f.end);
          if (w.isOpen) this.windowCommandComplete(kind, f.buf, f.start, f.end);
          if (kind === K_EXECUTE) this.req.pop(false, false);
          break;
        case B_EMPTY_QUERY:
        case B_PORTAL_SUSPENDED:
          if (kind === K_EXECUTE) this.req.pop(false, false);
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
      if (isFakeKind(this.req.headKind())) this.req.emitFakes();
    }
    this.flushClient();
    if (f.error) {
      this.ctx.log({ level: 'warn', msg: 'server sent a malformed message', node: conn.target.node, error: f.error });
      conn.close();
      return this.rec.serverLost(conn);
    }
    if (preludeDone) return this.rec.endPrelude(conn);
    if (checkFence) {
      // Terminated right after (a FATAL in this chunk): its close retries the batch. Else ask.
      if (this.serverFatal === null && w.isOpen) this.rec.checkFence(conn);
      else if (this.serverFatal === null && this.recovery?.refusalHeld === true) this.rec.checkSessionFence(conn);
      return;
    }
    if (client.writableNeedDrain) conn.socket.pause();
    if (release && this.mode === 'transaction' && this.server === conn) this.releaseServer();
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
    if (conn === this.server) this.rec.serverLost(conn);
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
    this.rec.serverLost(conn, `${describeTarget(conn.target)} was replaced by the primary of generation ${generation} while this transaction ran there`);
    conn.close();
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
    if (this.server && !this.server.closed) this.server.write(b);
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
    if (this.readingBack !== null) {
      this.readingBack.acquireAfter = true; // the wanted settings are not known yet
      return;
    }
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
    if (this.readingBack !== null) return NOT_NOW;
    const conn = this.acq.takeIdle();
    if (conn === null) return NOT_NOW;
    if (this.acq.inStep(conn)) {
      this.linkServer(conn);
      return LINKED;
    }
    // Parameters differ: the slow path syncs them.
    this.req.pending = [];
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
    this.window.open(this.mode === 'transaction');
    if (this.phase === 'linking') return this.welcome(conn);
    const pending = this.req.pending;
    this.req.pending = null;
    if (pending === null) return; // the fast path: the caller forwards its message
    const preludeMsgs = this.window.preludeMsgs;
    this.window.preludeMsgs = 0;
    if (preludeMsgs > 0 && this.window.isOpen) return this.rec.startPrelude(conn, pending, preludeMsgs);
    this.forwardPending(conn, pending);
    if (!this.waiting && this.phase === 'ready') this.socket.resume();
  }

  /** Forwards waiting client messages to the linked server, in order; those after a release or a loss wait for the next server. */
  private forwardPending(conn: ServerConnection, pending: Buffer[]): void {
    for (const m of pending) {
      if (this.server !== conn || (this.waiting && this.linkState !== 'prelude')) {
        // The first messages released the server again or lost it: the rest waits for the next one.
        this.req.pending ??= [];
        this.req.pending.push(m);
        continue;
      }
      this.req.forward(m[0]!, m, 0, m.length);
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
      this.req.pending = (this.req.pending ?? []).slice(this.window.preludeMsgs);
      this.window.preludeMsgs = 0;
      return this.rec.abandonPrelude(lostTransaction(`this transaction could not move to a writable primary (${e.code}: ${e.message})`));
    }
    this.req.failPending(e);
  }

  /** Gives the server back between transactions (transaction mode). */
  private releaseServer(): void {
    const conn = this.server!;
    this.unlinkServer();
    this.giveUpRetry();
    this.flushClient();
    conn.socket.resume();
    if (conn.readOnlySeen) conn.close();
    else if (!this.req.maySetSession) conn.pool.release(conn);
    else {
      // This client may have changed session settings: read them back before anyone else gets the connection (give-back.ts).
      const reading = { conn, acquireAfter: false };
      [this.readingBack, this.req.maySetSession] = [reading, false];
      readBackSettings(conn, this.acq, () => {
        this.readingBack = null;
        if (reading.acquireAfter && this.phase !== 'closed') this.startAcquire();
      });
    }
    // Messages that arrived while the server was finishing wait for the next one.
    if (this.req.pending !== null && this.req.pending.length > 0 && !this.waiting) this.startAcquire();
  }

  /** The startup link is done: parameters, our key, ReadyForQuery. */
  private welcome(conn: ServerConnection): void {
    this.key = this.ctx.register(this);
    const parts: Buffer[] = [];
    for (const [k, v] of conn.reported) parts.push(parameterStatus(k, v));
    parts.push(backendKeyData(this.key.processId, this.key.secretKey), READY_IDLE);
    this.phase = 'ready';
    this.req.pending = null;
    this.socket.write(Buffer.concat(parts));
    if (this.mode === 'transaction') this.releaseServer();
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
    this.req.pending = null;
    const conn = this.server;
    this.unlinkServer();
    const clean = this.req.empty && this.req.txStatus === TX_IDLE && !this.req.midBatch;
    if (conn) giveBackAtClose(conn, clean, this.mode, this.req.maySetSession, this.acq);
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
