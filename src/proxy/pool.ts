// Server connections, pooled per (node, generation, database, role)
// (docs/proxy.md, Pooling). A pool hands an idle connection out at once (the hot
// path: no promise, no allocation), opens a new one while under its size, or
// queues the caller (bounded, with a timeout). Idle connections are closed after
// serverIdleTimeoutMs, and at once when their generation is no longer current.
// A pool's size is its tenant's poolSize (else the proxy's defaultPoolSize) and
// follows it when it changes: see Pool.resize.

import type { RouteTarget } from './router.js';
import type { ServerCredentials } from './types.js';
import { ServerError, type ServerConnection } from './server-conn.js';
import { loginServer } from './backend-login.js';

export interface PoolOptions {
  /** Server connections at most: the tenant's poolSize, else defaultPoolSize (changed by Pool.resize). */
  size: number;
  /** A queued acquire fails after this long. */
  queueTimeoutMs: number;
  /** Waiting acquires at most (beyond: refused at once). */
  maxWaiting: number;
  /** Connecting and logging in must finish within this. */
  connectTimeoutMs: number;
  credentials: ServerCredentials;
  database: string;
  /** The client-side role the pool serves (its login may differ: credentials.user); PoolManager.resize finds pools by it. */
  clientRole: string;
  /** Startup parameters for every server connection (e.g. application_name for the pool itself). */
  startupParams?: ReadonlyMap<string, string>;
}

type Waiter = {
  cb: (conn: ServerConnection | null, err: ServerError | null) => void;
  sinceMs: number;
};

export interface PoolStats {
  node: string;
  host: string;
  port: number;
  generation: number;
  primary: boolean;
  database: string;
  role: string;
  size: number;
  active: number;
  idle: number;
  connecting: number;
  waiting: number;
  /** Age of the oldest waiter, ms (0 when none). */
  maxWaitMs: number;
  /** Transactions (transaction mode) or sessions (session mode) served. */
  served: number;
  /** Acquires that had to wait, and their total wait. */
  waits: number;
  waitMsTotal: number;
  /** Connections opened and failed logins since the pool was made. */
  opened: number;
  failedLogins: number;
}

export class Pool {
  private readonly idle: ServerConnection[] = [];
  private readonly all = new Set<ServerConnection>();
  private connecting = 0;
  private readonly waiters: Waiter[] = [];
  /** Parameters the first connection reported, sent to clients at startup. */
  welcome: ReadonlyMap<string, string> | null = null;
  retired = false;
  private served = 0;
  private waits = 0;
  private waitMsTotal = 0;
  private opened = 0;
  private failedLogins = 0;

  constructor(
    readonly key: string,
    readonly target: RouteTarget,
    readonly o: PoolOptions,
  ) {}

  get role(): string {
    return this.o.credentials.user;
  }

  /** An idle connection now, or null (then use acquire). */
  tryAcquire(): ServerConnection | null {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.closed) continue;
      this.served++;
      return c;
    }
    return null;
  }

  /** Calls back with a connection (opened if under size) or an error (login failure, queue timeout, full queue). */
  acquire(cb: (conn: ServerConnection | null, err: ServerError | null) => void): void {
    const c = this.tryAcquire();
    if (c) return cb(c, null);
    if (this.retired)
      return cb(
        null,
        new ServerError(`the pool for ${this.target.node} is retired (generation ${this.target.generation} is no longer current)`, '57P03', true),
      );
    if (this.waiters.length >= this.o.maxWaiting) {
      return cb(null, new ServerError(`too many clients waiting for a server connection (${this.waiters.length}, pool ${this.describe()})`, '53300', false));
    }
    this.waiters.push({ cb, sinceMs: performance.now() });
    if (this.queueTimer === null) this.armQueueTimer();
    this.waits++;
    this.maybeOpen();
  }

  /**
   * One timer per pool for the queue (not one per waiter: a busy pool queues on
   * every transaction): due when the oldest waiter's time is up. Waiters are in
   * arrival order, so the expired ones are at the head.
   */
  private queueTimer: NodeJS.Timeout | null = null;

  private armQueueTimer(): void {
    const head = this.waiters[0];
    if (head === undefined) return;
    const dueMs = head.sinceMs + this.o.queueTimeoutMs - performance.now();
    this.queueTimer = setTimeout(this.onQueueTimer, Math.max(1, Math.ceil(dueMs)));
  }

  private readonly onQueueTimer = (): void => {
    this.queueTimer = null;
    const now = performance.now();
    while (this.waiters.length > 0 && now - this.waiters[0]!.sinceMs >= this.o.queueTimeoutMs) {
      const w = this.waiters.shift()!;
      w.cb(
        null,
        new ServerError(
          `no server connection became free within queueTimeoutMs=${this.o.queueTimeoutMs} (pool ${this.describe()}, size ${this.o.size})`,
          '53300',
          false,
        ),
      );
    }
    if (this.queueTimer === null) this.armQueueTimer();
  };

  private clearQueueTimer(): void {
    if (this.queueTimer !== null) clearTimeout(this.queueTimer);
    this.queueTimer = null;
  }

  /** Gives a connection back: it must be between transactions, its handler cleared. */
  release(c: ServerConnection): void {
    c.handler = null;
    c.lastUsedMs = performance.now();
    if (c.closed) return;
    if (this.retired) return c.close();
    // Over size after a shrink (resize): between transactions is the first moment
    // this connection can close without cutting a client's transaction.
    if (this.all.size > this.o.size) return c.close();
    const w = this.waiters.shift();
    if (w) {
      if (this.waiters.length === 0) this.clearQueueTimer();
      this.waitMsTotal += performance.now() - w.sinceMs;
      this.served++;
      return w.cb(c, null);
    }
    this.idle.push(c);
  }

  /**
   * Takes a new size (its tenant's poolSize changed). Growing opens connections for
   * waiters now. Shrinking closes idle connections beyond the size now and busy ones
   * as they are released (release), so no transaction is cut; meanwhile nothing new
   * is opened, since all.size + connecting is not under the size.
   */
  resize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`pool ${this.describe()}: size must be a positive integer, not ${size}`);
    if (size === this.o.size) return;
    this.o.size = size;
    // Oldest idle first: the newer ones were used last and are the warmest.
    while (this.idle.length > 0 && this.all.size > size) this.idle.shift()!.close();
    this.maybeOpen();
  }

  /** Called by a connection that closed (whatever the reason). */
  forget(c: ServerConnection): void {
    if (!this.all.delete(c)) return;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // A slot freed up: someone waiting may get a new connection.
    this.maybeOpen();
  }

  /** Closes connections idle for longer than idleMs (all idle ones when retired). */
  reap(nowMs: number, idleMs: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (this.retired || nowMs - c.lastUsedMs >= idleMs) c.close();
    }
  }

  /** No more connections for this pool (its generation passed): idle ones close now, busy ones on release. */
  retire(): void {
    this.retired = true;
    for (const c of [...this.idle]) c.close();
    this.clearQueueTimer();
    for (const w of this.waiters.splice(0)) {
      w.cb(null, new ServerError(`the view changed while waiting (pool ${this.describe()})`, '57P03', true));
    }
  }

  get empty(): boolean {
    return this.all.size === 0 && this.connecting === 0 && this.waiters.length === 0;
  }

  closeAll(): void {
    this.retire();
    for (const c of [...this.all]) c.close();
  }

  stats(): PoolStats {
    const now = performance.now();
    return {
      node: this.target.node,
      host: this.target.host,
      port: this.target.port,
      generation: this.target.generation,
      primary: this.target.primary,
      database: this.o.database,
      role: this.role,
      size: this.o.size,
      active: this.all.size - this.idle.length,
      idle: this.idle.length,
      connecting: this.connecting,
      waiting: this.waiters.length,
      maxWaitMs: this.waiters.length > 0 ? Math.round(now - this.waiters[0]!.sinceMs) : 0,
      served: this.served,
      waits: this.waits,
      waitMsTotal: Math.round(this.waitMsTotal),
      opened: this.opened,
      failedLogins: this.failedLogins,
    };
  }

  describe(): string {
    return `${this.target.node}/${this.o.database}/${this.role}`;
  }

  private maybeOpen(): void {
    while (!this.retired && this.waiters.length > this.connecting && this.all.size + this.connecting < this.o.size) {
      this.connecting++;
      this.opened++;
      void this.open().then(
        (c) => {
          this.connecting--;
          if (this.retired) return c.close();
          this.all.add(c);
          this.release(c);
        },
        (err: ServerError) => {
          this.connecting--;
          this.failedLogins++;
          // The server is unreachable or refusing: everyone waiting hears it now
          // (the session decides whether to hold and retry) instead of timing out.
          this.clearQueueTimer();
          for (const w of this.waiters.splice(0)) {
            w.cb(null, err);
          }
        },
      );
    }
  }

  private open(): Promise<ServerConnection> {
    return loginServer(this, this.o);
  }
}
