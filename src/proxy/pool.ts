// Server connections, pooled per (node, generation, database, role)
// (docs/proxy.md, Pooling). A pool hands an idle connection out at once (the hot
// path: no promise, no allocation), opens a new one while under its size, or
// queues the caller (bounded, with a timeout). Idle connections are closed after
// serverIdleTimeoutMs, and at once when their generation is no longer current.
// A pool's size is its tenant's poolSize (else the proxy's defaultPoolSize) and
// follows it when it changes: see Pool.resize.
//
// A connection belongs to at most one client session at a time (its `handler`).
// While idle, anything the server sends (a notification for a LISTEN left behind,
// a notice, a FATAL when it is terminated) is handled here.

import net from 'node:net';
import { Framer } from './protocol/framer.js';
import {
  authCode,
  B_AUTHENTICATION,
  B_BACKEND_KEY_DATA,
  B_DATA_ROW,
  B_ERROR,
  B_PARAMETER_STATUS,
  B_READY_FOR_QUERY,
  isFatal,
  parseBackendKeyData,
  parseErrorFields,
  parseParameterStatus,
  readyStatus,
  SERVER_MESSAGE_BYTES_MAX,
  type ErrorFields,
} from './protocol/backend.js';
import { passwordMessage, query, saslInitialResponse, saslResponse, startupMessage, TERMINATE } from './protocol/write.js';
import { ScramClient } from './protocol/scram-client.js';
import { createHash } from 'node:crypto';
import type { RouteTarget } from './router.js';
import type { ServerCredentials } from './types.js';
import { PASSTHROUGH_PARAMS } from './identity.js';

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

/** SQLSTATEs at login that mean "not now" rather than "never": worth waiting out. */
const TRANSIENT_LOGIN_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08006', '08001', '08004', '28000']);

let nextConnId = 1;

/** A server connection's read buffer (reads larger than this arrive in several chunks). */
const SERVER_READ_BUFFER_BYTES = 32 * 1024;

export class ServerConnection {
  readonly id = nextConnId++;
  readonly framer = new Framer(SERVER_MESSAGE_BYTES_MAX);
  /** ParameterStatus values the server reported, kept current. */
  readonly reported = new Map<string, string>();
  /** Tracked parameters not reported by the server (search_path, ...) as the proxy last set them. */
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
   * client wants: SET for each that differs, RESET for those another client
   * changed and this one did not ask for. Empty when nothing differs (the usual case).
   */
  paramSync(wanted: ReadonlyMap<string, string>): string {
    let sql = '';
    for (const [name, value] of wanted) {
      const have = this.reported.has(name) ? this.reported.get(name) : this.setByProxy.get(name);
      if (have !== value) sql += `SET ${quoteIdent(name)} TO ${quoteLiteral(value)};`;
    }
    for (const name of TRACKED_PARAMS) {
      if (wanted.has(name)) continue;
      const dirty = this.reported.has(name) ? this.reported.get(name) !== this.initial.get(name) : this.setByProxy.has(name);
      if (dirty) sql += `RESET ${quoteIdent(name)};`;
    }
    return sql;
  }

  /** Bookkeeping after a successful paramSync: the values not reported by the server. */
  noteSynced(wanted: ReadonlyMap<string, string>): void {
    for (const name of TRACKED_PARAMS) {
      if (this.initial.has(name) || this.reported.has(name)) continue;
      const v = wanted.get(name);
      if (v === undefined) this.setByProxy.delete(name);
      else this.setByProxy.set(name, v);
    }
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

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** E'...' so the value means the same whatever standard_conforming_strings is. */
function quoteLiteral(s: string): string {
  return `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

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
    if (this.retired) return cb(null, new ServerError(`the pool for ${this.target.node} is retired (generation ${this.target.generation} is no longer current)`, '57P03', true));
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
      w.cb(null, new ServerError(`no server connection became free within queueTimeoutMs=${this.o.queueTimeoutMs} (pool ${this.describe()}, size ${this.o.size})`, '53300', false));
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

/** Connects and logs in (SCRAM-SHA-256, or MD5/cleartext if the server asks) and waits for ReadyForQuery. */
function loginServer(pool: Pool, o: PoolOptions): Promise<ServerConnection> {
  return new Promise((resolve, reject) => {
    const t = pool.target;
    const conn = new ServerConnection(pool);
    // Reads go to the connection's own buffer (no allocation per read, no stream machinery).
    const socket = net.connect({
      host: t.host,
      port: t.port,
      noDelay: true,
      onread: {
        buffer: () => conn.rbuf,
        callback: (n: number, buf: Uint8Array) => {
          conn.onRead((buf as Buffer).subarray(0, n));
          return true; // pausing is pause()'s job
        },
      },
    });
    conn.socket = socket;
    let scram: ScramClient | null = null;
    let settled = false;
    const fail = (err: ServerError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      conn.closed = true;
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new ServerError(`connecting to ${t.node} (${t.host}:${t.port}) took longer than ${o.connectTimeoutMs} ms`, '08001', true)),
      o.connectTimeoutMs,
    );
    socket.on('error', (e: Error) => {
      if (!settled) fail(new ServerError(`cannot connect to ${t.node} (${t.host}:${t.port}): ${e.message}`, '08001', true));
    });
    socket.on('close', () => {
      if (!settled) return fail(new ServerError(`${t.node} (${t.host}:${t.port}) closed the connection during login`, '08006', true));
      // Closed by the proxy (close()): whoever closed it knows. Else tell the user, if any.
      const byProxy = conn.closed;
      conn.closed = true;
      pool.forget(conn);
      if (!byProxy) conn.handler?.onServerClose(conn, null);
    });
    const onLoginData = (chunk: Buffer) => {
      const f = conn.framer;
      f.feed(chunk, true);
      while (f.next()) {
        const { buf, start, end } = f;
        switch (f.type) {
          case B_AUTHENTICATION: {
            const code = authCode(buf, start, end);
            if (code === 0) break;
            if (code === 10) {
              const mechs = buf.toString('utf8', start + 9, end).split('\0');
              if (!mechs.includes('SCRAM-SHA-256')) return fail(new ServerError(`${t.node} offers no SCRAM-SHA-256 (${mechs.filter(Boolean).join(', ')})`, '28000', false));
              scram = new ScramClient(o.credentials.password);
              socket.write(saslInitialResponse('SCRAM-SHA-256', scram.first()));
            } else if (code === 11 && scram) {
              try {
                socket.write(saslResponse(scram.final(buf.toString('utf8', start + 9, end))));
              } catch (e) {
                return fail(new ServerError((e as Error).message, '28000', false));
              }
            } else if (code === 12 && scram) {
              try {
                scram.verify(buf.toString('utf8', start + 9, end));
              } catch (e) {
                return fail(new ServerError((e as Error).message, '28000', false));
              }
            } else if (code === 3) {
              socket.write(passwordMessage(o.credentials.password));
            } else if (code === 5 && end - start === 13) {
              const salt = buf.subarray(start + 9, start + 13);
              const inner = createHash('md5').update(o.credentials.password + o.credentials.user).digest('hex');
              socket.write(passwordMessage('md5' + createHash('md5').update(inner).update(salt).digest('hex')));
            } else {
              return fail(new ServerError(`${t.node} asks for an authentication method the proxy does not speak (code ${code})`, '28000', false));
            }
            break;
          }
          case B_PARAMETER_STATUS:
            conn.noteParameter(buf, start, end);
            break;
          case B_BACKEND_KEY_DATA: {
            const k = parseBackendKeyData(buf, start, end);
            if (k) {
              conn.processId = k.processId;
              conn.secretKey = k.secretKey;
            }
            break;
          }
          case B_ERROR: {
            const e = parseErrorFields(buf, start, end);
            const transient = TRANSIENT_LOGIN_CODES.has(e.code);
            return fail(new ServerError(`${t.node} (${t.host}:${t.port}) refused the proxy's login as ${JSON.stringify(o.credentials.user)}: ${e.message}`, e.code || '08006', transient, e));
          }
          case B_READY_FOR_QUERY: {
            settled = true;
            clearTimeout(timer);
            conn.initial = new Map(conn.reported);
            if (!pool.welcome) pool.welcome = conn.initial;
            conn.onLogin = null;
            if (f.pendingBytes > 0) return fail(new ServerError('unexpected bytes after ReadyForQuery at login', '08P01', false));
            return resolve(conn);
          }
          default:
            // NoticeResponse and NegotiateProtocolVersion at login: nothing to do.
            break;
        }
      }
      if (f.error) fail(new ServerError(`${t.node}: ${f.error}`, '08P01', false));
    };
    conn.onLogin = onLoginData;
    socket.on('connect', () => {
      const params = new Map<string, string>([
        ['user', o.credentials.user],
        ['database', o.database],
      ]);
      for (const [k, v] of o.startupParams ?? []) params.set(k, v);
      socket.write(startupMessage(params));
    });
  });
}

export interface PoolManagerOptions {
  /** The size of a new pool for this login: its tenant's poolSize, else defaultPoolSize. */
  sizeFor: (database: string, role: string) => number;
  queueTimeoutMs: number;
  maxWaiting: number;
  connectTimeoutMs: number;
  serverIdleTimeoutMs: number;
  credentials: (role: string) => ServerCredentials;
}

/** Every pool of one proxy, keyed by target and login; reaps idle connections and retires old generations. */
export class PoolManager {
  private readonly pools = new Map<string, Pool>();
  /** The same pools by login (database and client role), for resize without a scan of every pool. */
  private readonly byLogin = new Map<string, Set<Pool>>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly o: PoolManagerOptions) {
    // Every connection is checked at least twice per idle timeout (bounded below so a test config does not spin).
    const everyMs = Math.max(100, Math.min(5_000, Math.floor(o.serverIdleTimeoutMs / 2)));
    this.reaper = setInterval(() => this.reap(), everyMs);
    this.reaper.unref();
  }

  pool(target: RouteTarget, database: string, role: string): Pool {
    const key = `${target.node}\0${target.host}:${target.port}\0${target.generation}\0${database}\0${role}`;
    let p = this.pools.get(key);
    if (!p) {
      p = new Pool(key, target, {
        size: this.o.sizeFor(database, role),
        queueTimeoutMs: this.o.queueTimeoutMs,
        maxWaiting: this.o.maxWaiting,
        connectTimeoutMs: this.o.connectTimeoutMs,
        credentials: this.o.credentials(role),
        database,
        clientRole: role,
      });
      this.pools.set(key, p);
      const login = loginOf(database, role);
      const set = this.byLogin.get(login);
      if (set) set.add(p);
      else this.byLogin.set(login, new Set([p]));
    }
    return p;
  }

  private drop(key: string, p: Pool): void {
    this.pools.delete(key);
    const login = loginOf(p.o.database, p.o.clientRole);
    const set = this.byLogin.get(login);
    set?.delete(p);
    if (set?.size === 0) this.byLogin.delete(login);
  }

  /** Gives every pool of this login (any node, any generation) a new size (Pool.resize). */
  resize(database: string, role: string, size: number): void {
    for (const p of this.byLogin.get(loginOf(database, role)) ?? []) p.resize(size);
  }

  /** Retires pools of another generation than `generation` (their servers may be fenced or have changed role). */
  retireOtherGenerations(generation: number): void {
    for (const [key, p] of this.pools) {
      if (p.target.generation === generation) continue;
      p.retire();
      if (p.empty) this.drop(key, p);
    }
  }

  reap(): void {
    const now = performance.now();
    for (const [key, p] of this.pools) {
      p.reap(now, this.o.serverIdleTimeoutMs);
      if (p.retired && p.empty) this.drop(key, p);
    }
  }

  stats(): PoolStats[] {
    return [...this.pools.values()].map((p) => p.stats());
  }

  close(): void {
    clearInterval(this.reaper);
    for (const p of this.pools.values()) p.closeAll();
    this.pools.clear();
    this.byLogin.clear();
  }
}

function loginOf(database: string, role: string): string {
  return `${database}\0${role}`;
}
