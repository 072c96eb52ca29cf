// Getting a server for a session (docs/proxy.md, Routing and Pooling): the
// route, its pool, the parameters the client wants on it, and the failover
// hold (wait for a view change, or back off when a server refuses, up to
// holdTimeoutMs). The session decides when to acquire and what a link means.

import type { Pool } from './pool.js';
import type { ErrorSpec } from './protocol/write.js';
import type { RouteTarget } from './router.js';
import type { ServerError, ServerConnection, ServerHandler } from './server-conn.js';
import type { SessionContext } from './session-types.js';
import type { ClaimedIdentity } from './types.js';

/** Between retries when the server refuses but the view has not changed. */
const RETRY_BACKOFF_MS = [20, 50, 100, 200, 400];

/** What the acquirer needs of its session. */
export interface AcquireHost extends ServerHandler {
  readonly identity: ClaimedIdentity | null;
  isClosed(): boolean;
  /** A server, its parameters in step: link it. */
  link(conn: ServerConnection): void;
  /** No server within the bound (or one refused the parameters): the waiting requests fail. */
  failAcquire(e: ErrorSpec): void;
}

export class ServerAcquirer {
  private lastRoute: RouteTarget | null = null;
  private lastPool: Pool | null = null;
  private holdDeadlineMs = 0;
  private holdOff: (() => void) | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private retryStep = 0;
  /** Tracked parameters this client wants on its server connections (startup values, then its own SETs). */
  readonly wanted: Map<string, string> = new Map();
  /** A canonical spelling of `wanted`: a server connection synced to the same one needs no check. */
  private wantedSig = '[]';

  constructor(
    private readonly ctx: SessionContext,
    private readonly host: AcquireHost,
  ) {}

  want(name: string, value: string): void {
    this.wanted.set(name, value);
    this.resign();
  }

  /**
   * What this client's own statements left on its last server connection: it
   * now wants exactly those session settings (the ones the server reports stay
   * tracked through ParameterStatus).
   */
  adopt(session: ReadonlyMap<string, string>, reported: ReadonlyMap<string, string>): void {
    for (const name of [...this.wanted.keys()]) if (!reported.has(name) && !session.has(name)) this.wanted.delete(name);
    for (const [name, value] of session) if (!reported.has(name)) this.wanted.set(name, value);
    this.resign();
  }

  private resign(): void {
    this.wantedSig = JSON.stringify([...this.wanted].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }

  /** A new wait: the hold's bound runs from now. */
  begin(): void {
    this.holdDeadlineMs = performance.now() + this.ctx.holdTimeoutMs;
    this.retryStep = 0;
  }

  /** A wait bounded by an earlier deadline (a transaction moving off a fence keeps its first one). */
  beginUntil(deadlineMs: number): void {
    this.holdDeadlineMs = deadlineMs;
    this.retryStep = 0;
  }

  attempt(): void {
    this.clearHold();
    if (this.host.isClosed()) return;
    const route = this.ctx.router.route(this.host.identity!.readOnly);
    if (route === 'hold') return this.hold(null);
    const pool = this.poolFor(route);
    const conn = pool.tryAcquire();
    if (conn) return this.acquired(conn);
    pool.acquire((c, err) => {
      if (c) return this.acquired(c);
      this.acquireFailed(err!);
    });
  }

  /** The hot path of transaction mode: an idle server of the current view, or null. */
  takeIdle(): ServerConnection | null {
    const route = this.ctx.router.route(this.host.identity!.readOnly);
    if (route === 'hold') return null;
    const conn = this.poolFor(route).tryAcquire();
    if (conn === null) return null;
    if (conn.target.primary && conn.target.generation !== this.ctx.router.generation()) {
      conn.close();
      return null;
    }
    return conn;
  }

  /** Whether conn's parameters are what the client wants (remembered on it when they are). */
  inStep(conn: ServerConnection): boolean {
    if (conn.paramsSig === this.wantedSig || conn.paramSync(this.wanted) === '') {
      conn.paramsSig = this.wantedSig;
      return true;
    }
    return false;
  }

  /** The pool of a route; the last one is kept (the same target object while the view stands): no key built, no Map lookup. */
  private poolFor(route: RouteTarget): Pool {
    let pool = this.lastPool;
    if (pool === null || this.lastRoute !== route || pool.retired) {
      pool = this.ctx.pools.pool(route, this.host.identity!.database, this.host.identity!.role);
      this.lastPool = pool;
      this.lastRoute = route;
    }
    return pool;
  }

  private acquireFailed(err: ServerError): void {
    if (this.host.isClosed()) return;
    if (err.transient) return this.hold(err);
    this.host.failAcquire({ code: err.code, message: err.message });
  }

  /** Waits for a view change (or a short backoff when the server refused), up to the hold deadline. */
  hold(err: ServerError | null): void {
    const leftMs = this.holdDeadlineMs - performance.now();
    if (leftMs <= 0) {
      this.ctx.counters.holdTimeouts++;
      const reason = err ? err.message : this.ctx.router.holdReason();
      return this.host.failAcquire({
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

  clearHold(): void {
    if (this.holdOff) {
      this.holdOff();
      this.holdOff = null;
    }
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
  }

  /** A server from the pool: checked (I3), its parameters synced, then linked. */
  acquired(conn: ServerConnection): void {
    if (this.host.isClosed()) return conn.pool.release(conn);
    if (conn.closed) return this.attempt();
    // Safety (I3): a connection to a pool of an older generation is never used for a write.
    if (conn.target.primary && conn.target.generation !== this.ctx.router.generation()) {
      conn.close();
      return this.attempt();
    }
    const sql = conn.paramSync(this.wanted);
    if (sql === '') return this.host.link(conn);
    conn.handler = this.host;
    conn.runInternal(sql, (err) => {
      if (this.host.isClosed()) return err ? conn.close() : conn.pool.release(conn);
      if (err) {
        conn.close();
        if (err.transient) return this.hold(err);
        // A value the server refuses (e.g. an unknown TimeZone from the startup packet).
        return this.host.failAcquire({ code: err.code, message: `cannot apply the session parameters: ${err.message}` });
      }
      conn.noteSynced(this.wanted);
      conn.paramsSig = this.wantedSig;
      this.host.link(conn);
    });
  }
}
