// When the linked server fails the transaction (docs/proxy.md, Failover;
// Session states): a 25006 that may be a fence (the fence check), a server
// lost or terminated, a rerun of the retry window elsewhere or here, and the
// prelude that re-creates an opening the client already saw answered. The
// questions and their answers are in fence-check.ts and termination-check.ts;
// the transitions they lead to are here. The session (session.ts) owns the
// sockets, the link and its state; this side reaches them through
// RecoveryHost, and the client's requests through Requests.

import { TX_IDLE, TX_IN_BLOCK, type ErrorFields } from './protocol/backend.js';
import type { ErrorSpec } from './protocol/write.js';
import { OPENING_ANSWERED, OPENING_BEGUN, type RetryWindow } from './retry-window.js';
import { askFence, describeTarget, endedByServer, ENDED_UNRUN_CODES, IDLE_SESSION_TIMEOUT, lostTransaction, viewMoved } from './fence-check.js';
import { terminationCause } from './termination-check.js';
import { ServerError, type ServerConnection } from './server-conn.js';
import type { ServerAcquirer } from './server-acquire.js';
import type { RouteTarget } from './router.js';
import type { Requests } from './requests.js';
import type { LinkState, PoolMode, SessionContext } from './session-types.js';

/** What recovery needs of the session. */
export interface RecoveryHost {
  /** The linked server, or null. */
  server(): ServerConnection | null;
  isClosed(): boolean;
  /** The session's pooling mode. */
  mode(): PoolMode;
  /** In the ready phase (not startup, auth, linking or closed). */
  isReady(): boolean;
  linkState(): LinkState;
  /** The one place the link state changes (Session.to). */
  to(next: LinkState): void;
  /** Client messages wait in `pending` (a link state other than idle and linked). */
  waiting(): boolean;
  /** The FATAL the server sent before it went (cleared as taken). */
  takeServerFatal(): ErrorFields | null;
  /** Writes an answer to the client (after what is being collected). */
  writeClient(b: Buffer): void;
  unlinkServer(): void;
  linkServer(conn: ServerConnection): void;
  /** Gives the server back between transactions. */
  releaseServer(): void;
  /** Waits for a server (link state acquiring). */
  startAcquire(): void;
  /** Forwards waiting messages to the linked server; those after a release or a loss wait again. */
  forwardPending(conn: ServerConnection, msgs: Buffer[]): void;
  /** A client message as if it had just arrived (checked already). */
  clientMessage(m: Buffer): void;
  flushClient(): void;
  flushServer(): void;
  /** No retry for this transaction any more: what was held goes to the client. */
  giveUpRetry(): void;
  /** Drops the server's answers being collected for the client. */
  dropOutput(): void;
  pauseClient(): void;
  resumeClient(): void;
  fatal(e: ErrorSpec): void;
  close(): void;
}

export class Recovery {
  /** The server was lost while the client was inside a transaction block with nothing in flight: its next request gets this error. */
  private lost: ErrorSpec | null = null;
  /** Session mode: a 25006 from the primary, then its ReadyForQuery, held back while checkSessionFence asks whether the server is fenced. */
  private refusal: Buffer[] | null = null;

  constructor(
    private readonly ctx: SessionContext,
    private readonly host: RecoveryHost,
    private readonly window: RetryWindow,
    private readonly req: Requests,
    private readonly acq: ServerAcquirer,
  ) {}

  /** The client's next request gets an error (its transaction was lost while it sat idle in its block). */
  get lostTransaction(): boolean {
    return this.lost !== null;
  }

  /** The error for the client's next request, once. */
  takeLostTransaction(): ErrorSpec | null {
    const e = this.lost;
    this.lost = null;
    return e;
  }

  // -------------------------------------------------------------------------
  // The retry window's transitions

  /**
   * The retry window failed with 25006 (read-only) on the primary, and nothing
   * else of it is in flight: is it ogel's fence (fence-check.ts)? A fence: the
   * window runs again on the next writable server. Otherwise the client gets
   * the error it earned. An aborted block (status E) is rolled back first; it
   * then runs again here, once, so that the client's block is in the state it
   * would be in (aborted, by the same error) and the server's matches it.
   */
  checkFence(conn: ServerConnection): void {
    this.window.fenceSuspect = false;
    this.host.to('fence-check'); // the client's next messages wait
    this.req.pending ??= [];
    this.host.pauseClient();
    askFence(
      conn,
      this.req.txStatus !== TX_IDLE,
      () => !this.host.isClosed() && this.host.server() === conn,
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
    this.host.unlinkServer();
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
    this.host.linkServer(conn);
  }

  /** Not a fence: the held error (and its ReadyForQuery, status I) goes to the client; what it sent meanwhile goes on. */
  private passOnFenceCheck(): void {
    const req = this.req;
    this.host.giveUpRetry();
    this.host.flushClient();
    this.host.to('linked');
    const pending = req.pending ?? [];
    req.pending = null;
    if (req.quiet) this.host.releaseServer();
    req.pending = pending.length > 0 ? pending : null;
    if (req.pending !== null && this.host.server() === null) this.host.startAcquire();
    else if (req.pending !== null) {
      const p = req.pending;
      req.pending = null;
      for (const m of p) req.forward(m[0]!, m, 0, m.length);
      this.host.flushServer();
    }
    if (!this.host.waiting()) this.host.resumeClient();
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
    this.req.rewind();
    const replay = this.window.requeue();
    this.host.to('acquiring');
    this.host.dropOutput();
    this.req.pending = [...replay, ...(this.req.pending ?? [])];
  }

  /**
   * A rerun whose client already saw its opening (BEGIN) answered: the opening
   * goes first, alone, its answers swallowed; the rest waits until it is known
   * to have opened the transaction again (endPrelude). Sent together, a BEGIN
   * that failed would leave the client's statement to run outside its block.
   */
  startPrelude(conn: ServerConnection, pending: Buffer[], preludeMsgs: number): void {
    this.host.to('prelude'); // the client's messages wait, as while acquiring
    this.window.openingMsgs = preludeMsgs; // a rerun of this rerun has the same prelude
    this.req.pending = pending.slice(preludeMsgs);
    this.host.forwardPending(conn, pending.slice(0, preludeMsgs));
  }

  /**
   * The prelude (the opening run again) answered. It must have opened the
   * transaction as the first time did (one BEGIN, status T); then the client's
   * messages follow. Anything else, and the client's transaction is lost.
   */
  endPrelude(conn: ServerConnection): void {
    if (this.host.server() !== conn) return;
    const w = this.window;
    if (w.opening !== OPENING_BEGUN || this.req.txStatus !== TX_IN_BLOCK || !w.isOpen) {
      this.host.unlinkServer();
      conn.close();
      return this.abandonPrelude(
        lostTransaction(`${describeTarget(conn.target)} did not open this transaction again as the first server did (its BEGIN failed)`),
      );
    }
    w.opening = OPENING_ANSWERED;
    w.openingMsgs = w.msgs!.length;
    this.host.to('linked');
    const pending = this.req.pending;
    this.req.pending = null;
    if (pending !== null) this.host.forwardPending(conn, pending);
    if (!this.host.waiting() && this.host.isReady()) this.host.resumeClient();
  }

  /** A prelude could not re-create the opening: the client's messages since get the error, or (none yet) its next one does. */
  abandonPrelude(spec: ErrorSpec): void {
    this.host.to('idle');
    this.req.clear();
    this.window.reset();
    this.ctx.counters.failedInFlight++;
    if (this.req.pending === null || this.req.pending.length === 0) {
      this.req.pending = null;
      this.lost = spec;
      this.host.resumeClient();
      return;
    }
    this.req.failPending(spec);
  }

  // -------------------------------------------------------------------------
  // A lost server

  /** The linked server went away (closed, crashed, terminated, or sent garbage), or was given up (`cause`). */
  serverLost(conn: ServerConnection, cause?: string): void {
    const host = this.host;
    if (conn !== host.server() || host.isClosed()) return;
    host.unlinkServer();
    host.flushClient();
    const t = conn.target;
    const fatal = host.takeServerFatal();
    if (host.mode() === 'session' && host.isReady() && fatal !== null) {
      this.refusal = null; // a refusal held back before the end: the end says it all
      // A termination of the primary's session was held back (serverChunk): ogel's
      // fence, or an operator's? One error either way.
      if (ENDED_UNRUN_CODES.has(fatal.code) && t.primary) return this.endSession(conn, fatal);
      // Other FATALs went to the client as they came: the client's session ends with
      // the server's, without a second copy (which node-postgres would give the next
      // queued query and emit as one more error).
      return host.close();
    }
    if (host.mode() === 'session' || !host.isReady()) {
      // The client's session was that server session: it ends too.
      return host.fatal(
        fatal && host.mode() === 'session'
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
      host.startAcquire();
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
      this.host.startAcquire();
      return;
    }
    this.failLost(spec);
  }

  /** Every request in flight gets `spec`; a client idle in its block gets it at its next request. */
  private failLost(spec: ErrorSpec): void {
    if (this.host.linkState() === 'prelude') return this.abandonPrelude(spec);
    // What the server answered before it went belongs before the error.
    this.host.giveUpRetry();
    this.ctx.counters.failedInFlight++;
    const inBlock = this.req.txStatus !== TX_IDLE;
    const answered = !this.req.quiet;
    this.req.failOutstanding(spec);
    // Idle inside BEGIN ... with nothing in flight: the client must not go on as if its transaction were open.
    if (inBlock && !answered) this.lost = spec;
  }

  // -------------------------------------------------------------------------
  // Session mode and the fence (docs/proxy.md, Failover)

  get refusalHeld(): boolean {
    return this.refusal !== null;
  }

  /** Keeps a copy of a server message back (a 25006 from the primary, then its ReadyForQuery); true. */
  holdRefusal(b: Buffer): boolean {
    this.refusal ??= [];
    this.refusal.push(Buffer.from(b));
    return true;
  }

  /** The held messages, for the client now (something else followed them in the pipeline: no check). */
  takeRefusal(): Buffer {
    const b = Buffer.concat(this.refusal ?? []);
    this.refusal = null;
    return b;
  }

  /**
   * Session mode: the primary refused a write as read-only, and the refusal waits
   * with its ReadyForQuery. Is the server fenced for a switchover or failover? It
   * is asked on a connection of its own (termination-check.ts), so the client's
   * block stays as it is. Fenced: the session ends now, with one FATAL that says
   * why, instead of a 25006 for every statement until the old primary ends its
   * sessions. Not fenced (a read-only database or role): the client gets the
   * refusal as it came.
   */
  checkSessionFence(conn: ServerConnection): void {
    this.pauseFor('fence-check');
    void terminationCause(conn.pool).then((by) => {
      if (this.host.isClosed() || this.host.server() !== conn) return; // lost meanwhile: serverLost said it
      if (by === 'cluster' || viewMoved(this.ctx.router, conn.target)) {
        this.refusal = null;
        this.host.unlinkServer();
        conn.close();
        return this.host.fatal(fencedSessionEnd(conn.target));
      }
      this.host.to('linked');
      this.host.writeClient(this.takeRefusal());
      this.resumeWaiting();
    });
  }

  /** Session mode: the primary's server session was terminated. The cluster's doing ends the client's session with one FATAL naming it; an operator's with the server's own. */
  private endSession(conn: ServerConnection, fatal: ErrorFields): void {
    const t = conn.target;
    this.pauseFor('termination-check');
    void terminationCause(conn.pool).then((by) => {
      if (this.host.isClosed()) return;
      this.host.fatal(by === 'cluster' || viewMoved(this.ctx.router, t) ? fencedSessionEnd(t) : { code: fatal.code || '57P01', message: fatal.message });
    });
  }

  /** The client's messages wait (as while acquiring) while a check runs. */
  private pauseFor(state: 'fence-check' | 'termination-check'): void {
    this.host.to(state);
    this.req.pending ??= [];
    this.host.pauseClient();
  }

  /** After a check: what the client sent meanwhile goes on, and it is read again. */
  private resumeWaiting(): void {
    const host = this.host;
    if (host.waiting()) return; // a rerun took the waiting messages with it
    const pending = this.req.pending ?? [];
    this.req.pending = null;
    for (const m of pending) {
      if (!host.isReady()) return;
      if (host.waiting()) this.req.pending!.push(m);
      else host.clientMessage(m);
    }
    host.flushServer();
    if (host.isReady()) host.resumeClient();
  }

  /**
   * A backend terminated (57P01..57P03) while the view still names its server: a
   * fence or a shutdown the view does not show yet, or an operator's
   * pg_terminate_backend() (termination-check.ts asks the server). An operator's
   * reaches the client as the server's error, as it would directly; the session
   * goes on. The client's messages wait meanwhile, as while acquiring.
   */
  private checkTermination(conn: ServerConnection, fatal: ErrorFields): void {
    const host = this.host;
    const t = conn.target;
    this.pauseFor('termination-check');
    void terminationCause(conn.pool).then((by) => {
      if (host.isClosed()) return;
      host.to('idle');
      if (by === 'cluster' || viewMoved(this.ctx.router, t)) this.lostToCluster(t, fatal, undefined);
      else this.failLost(endedByServer(t, fatal));
      this.resumeWaiting();
    });
  }
}

/** How a session-mode client's session ends when its primary was fenced or stopped by the cluster. */
function fencedSessionEnd(t: RouteTarget): ErrorSpec {
  return {
    code: '57P01',
    message: `terminating connection: ${describeTarget(t)} was stopped for a switchover or failover, and this session was on it; reconnect to reach the new primary`,
  };
}
