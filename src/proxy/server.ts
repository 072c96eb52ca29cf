// ProxyServer: the Postgres wire-protocol listener (docs/proxy.md). It owns the
// sessions, the cancel map (our BackendKeyData -> the session, whose current
// server backend gets the real CancelRequest), client limits, the pools and the
// figures (`stats()`, in the spirit of PgBouncer's SHOW POOLS; metrics read it).
//
// Usable without a daemon: give it a router (StaticRouter for a fixed primary),
// an identity resolver, a SCRAM factory and server credentials.

import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import type { Logger } from '../log.js';
import type { ScramVerifier } from '../auth/scram.js';
import { PoolManager } from './pool-manager.js';
import type { PoolStats } from './pool.js';
import { StatementNames } from './prepared.js';
import type { RouteTarget, Router } from './router.js';
import { sharedReadsSupported } from './shared-read.js';
import { Session } from './session.js';
import type { PoolMode, SessionContext, SessionCounters } from './session-types.js';
import type { ClaimedIdentity, ProxyRefusal, ResolveIdentity, ScramServerExchange, ServerCredentials } from './types.js';
import { cancelRequest, errorResponse } from './protocol/write.js';

export interface ProxyPoolOptions {
  mode: PoolMode;
  /** Server connections per (node, generation, database, role). */
  defaultPoolSize: number;
  /** Client connections per proxy, all tenants together. */
  maxClientConnections: number;
  queueTimeoutMs: number;
  serverIdleTimeoutMs: number;
  holdTimeoutMs: number;
  maxMessageBytes: number;
  /** Named statements kept per server connection in transaction mode (PgBouncer's max_prepared_statements). */
  maxPreparedPerServer?: number;
  /** Connecting and logging in to a server. */
  connectTimeoutMs?: number;
  /** Startup and authentication of a client. */
  authTimeoutMs?: number;
}

export interface ProxyTlsOptions {
  mode: 'off' | 'on' | 'required';
  /** A context, or its options (PEM certificate and key: tls.ts's loadProxyTls). */
  context?: tls.SecureContext | tls.SecureContextOptions | undefined;
}

export interface ProxyServerOptions {
  host: string;
  /** 0: an ephemeral port (see address()). */
  port: number;
  pool: ProxyPoolOptions;
  resolveIdentity: ResolveIdentity;
  /** The SCRAM server exchange for one client (scram-server.ts's scramServerExchange). */
  scram: (verifier: ScramVerifier, identity: ClaimedIdentity) => ScramServerExchange;
  /**
   * For a refusal with 28P01 (an unknown user or tenant): an exchange that runs to
   * the end and fails, so the flow does not tell whether the user exists (as
   * Postgres does). Without it the 28P01 is sent at once.
   */
  doomedScram?: ((user: string) => ScramServerExchange) | undefined;
  credentials: (role: string) => ServerCredentials;
  /**
   * The current poolSize of the tenant with this database and role (null: the
   * default; undefined: no such tenant), checked every POOL_SIZE_CHECK_MS so a
   * changed limit reaches pools whose clients connected before the change. Without
   * it a change is seen when a client of that tenant next connects (its identity
   * carries the size).
   */
  poolSizeOf?: ((database: string, role: string) => number | null | undefined) | undefined;
  router: Router;
  tls?: ProxyTlsOptions | undefined;
  log?: Logger | undefined;
  /**
   * Cancel keys that name their proxy, so a CancelRequest that reaches another
   * node's proxy (a load balancer in front of all of them) is relayed to the
   * one holding the session: `selfTag` (1-127) goes in the top bits of every
   * process id this proxy hands out; `peerOf(tag)` is that node's proxy address.
   * Without it, ids carry no tag and a cancel is only looked up here.
   */
  cancelRouting?: { selfTag: number; peerOf: (tag: number) => { host: string; port: number } | undefined } | undefined;
}

export interface ProxyStats {
  mode: PoolMode;
  /** The size of a pool whose tenant sets no poolSize (each pool's own size is in pools[].size). */
  defaultPoolSize: number;
  clients: { total: number; maxClientConnections: number; byTenant: Record<string, number> };
  pools: PoolStats[];
  /** cancelsRelayed: CancelRequests for another node's session, sent on to its proxy. */
  counters: SessionCounters & { accepted: number; refusedLimit: number; cancels: number; cancelsForwarded: number; cancelsRelayed: number };
  /** Distinct prepared statements named by this proxy (transaction mode). */
  preparedStatements: number;
}

/** How a ProxyServer's options come from cluster.yml's proxy section. */
export function proxyPoolOptions(p: {
  poolMode: PoolMode;
  defaultPoolSize: number;
  maxClientConnections: number;
  queueTimeoutMs: number;
  serverIdleTimeoutMs: number;
  holdTimeoutMs: number;
  maxMessageBytes: number;
}): ProxyPoolOptions {
  return {
    mode: p.poolMode,
    defaultPoolSize: p.defaultPoolSize,
    maxClientConnections: p.maxClientConnections,
    queueTimeoutMs: p.queueTimeoutMs,
    serverIdleTimeoutMs: p.serverIdleTimeoutMs,
    holdTimeoutMs: p.holdTimeoutMs,
    maxMessageBytes: p.maxMessageBytes,
  };
}

const CANCEL_CONNECT_TIMEOUT_MS = 5_000;
/** How often tenants' pool sizes are checked against poolSizeOf (a limit change takes effect within this). */
const POOL_SIZE_CHECK_MS = 1_000;
const GENERATION_CHECK_MS = 100;
/** Our BackendKeyData process ids: positive int32, never 0. */
const PROCESS_ID_MAX = 0x7fffffff;
/** With cancel routing: the node's tag in bits 24-30, a sequence in bits 0-23. */
const TAG_SHIFT = 24;
const TAGGED_SEQ_MAX = (1 << TAG_SHIFT) - 1;
export const CANCEL_TAG_MAX = 127;

export class ProxyServer {
  private readonly server: net.Server;
  private readonly sessions = new Set<Session>();
  private readonly byKey = new Map<number, Session>();
  private readonly byTenant = new Map<string, number>();
  /**
   * The pool size of each tenant login (database and role) with admitted clients:
   * from the newest client's identity, or poolSizeOf. Bounded by the clients: an
   * entry goes when its last client leaves.
   */
  private readonly logins = new Map<string, { database: string; role: string; clients: number; size: number }>();
  private lastPoolSizeCheckMs = 0;
  private readonly pools: PoolManager;
  private readonly names = new StatementNames();
  private readonly ctx: SessionContext;
  private readonly counters = {
    protocolErrors: 0,
    authFailures: 0,
    held: 0,
    holdTimeouts: 0,
    retried: 0,
    failedInFlight: 0,
    accepted: 0,
    refusedLimit: 0,
    cancels: 0,
    cancelsForwarded: 0,
    cancelsRelayed: 0,
  };
  private nextProcessId = 1;
  private lastGeneration: number;
  private listening = false;

  constructor(private readonly o: ProxyServerOptions) {
    const p = o.pool;
    if (!(p.defaultPoolSize >= 1)) throw new RangeError(`proxy: defaultPoolSize must be at least 1, not ${p.defaultPoolSize}`);
    if (!(p.maxClientConnections >= 1)) throw new RangeError(`proxy: maxClientConnections must be at least 1, not ${p.maxClientConnections}`);
    const tag = o.cancelRouting?.selfTag;
    if (tag !== undefined && !(Number.isInteger(tag) && tag >= 1 && tag <= CANCEL_TAG_MAX))
      throw new RangeError(`proxy: cancelRouting.selfTag must be an integer from 1 to ${CANCEL_TAG_MAX}, not ${tag}`);
    if (!(p.maxMessageBytes >= 10_000)) throw new RangeError(`proxy: maxMessageBytes must be at least 10000, not ${p.maxMessageBytes}`);
    const log = o.log ?? (() => {});
    this.pools = new PoolManager({
      sizeFor: (database, role) => this.poolSizeFor(database, role),
      queueTimeoutMs: p.queueTimeoutMs,
      maxWaiting: p.maxClientConnections,
      connectTimeoutMs: p.connectTimeoutMs ?? 5_000,
      serverIdleTimeoutMs: p.serverIdleTimeoutMs,
      credentials: o.credentials,
    });
    const tlsMode = o.tls?.mode ?? 'off';
    let context: tls.SecureContext | null = null;
    if (tlsMode !== 'off') {
      const c = o.tls?.context;
      if (!c) throw new Error(`proxy: tls.mode is ${tlsMode} but no certificate was given`);
      context = 'context' in c ? (c as tls.SecureContext) : tls.createSecureContext(c as tls.SecureContextOptions);
    }
    this.ctx = {
      mode: p.mode,
      holdTimeoutMs: p.holdTimeoutMs,
      maxMessageBytes: p.maxMessageBytes,
      authTimeoutMs: p.authTimeoutMs ?? 30_000,
      maxPreparedPerServer: p.maxPreparedPerServer ?? 200,
      tlsMode,
      tls: context,
      sharedReads: tlsMode === 'off' && sharedReadsSupported,
      resolveIdentity: o.resolveIdentity,
      scram: o.scram,
      doomedScram: o.doomedScram ?? null,
      pools: this.pools,
      router: o.router,
      names: this.names,
      admit: (id) => this.admit(id),
      leave: (id) => this.leave(id),
      register: (s) => this.register(s),
      unregister: (s) => {
        if (s.key && this.byKey.get(s.key.processId) === s) this.byKey.delete(s.key.processId);
      },
      cancel: (pid, secret) => this.cancel(pid, secret),
      cancelServer: (t, pid, secret) => this.cancelServer(t, pid, secret),
      counters: this.counters,
      log,
    };
    // Pools of a past generation: their servers may be fenced or have changed role.
    this.lastGeneration = o.router.generation();
    // Without TLS, client sockets read into one shared buffer (shared-read.ts): accepted paused, the session starts them.
    this.server = net.createServer({ noDelay: true, pauseOnConnect: this.ctx.sharedReads }, (socket) => this.accept(socket));
    this.server.on('error', (e) => log({ level: 'error', msg: 'proxy listener error', error: e.message }));
    this.genTimer = setInterval(() => this.tick(), GENERATION_CHECK_MS);
    this.genTimer.unref();
  }

  private readonly genTimer: NodeJS.Timeout;

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.removeListener('error', onError);
        this.listening = true;
        resolve(this.address());
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('proxy: not listening');
    return { host: a.address, port: a.port };
  }

  /** Stops listening, ends every client session and closes every server connection. */
  async close(): Promise<void> {
    clearInterval(this.genTimer);
    const closed = this.listening ? new Promise<void>((r) => this.server.close(() => r())) : Promise.resolve();
    for (const s of [...this.sessions]) {
      s.close();
      s.socket.destroy();
    }
    this.pools.close();
    await closed;
  }

  stats(): ProxyStats {
    return {
      mode: this.ctx.mode,
      defaultPoolSize: this.o.pool.defaultPoolSize,
      clients: { total: this.sessions.size, maxClientConnections: this.o.pool.maxClientConnections, byTenant: Object.fromEntries(this.byTenant) },
      pools: this.pools.stats(),
      counters: { ...this.counters },
      preparedStatements: this.names.size,
    };
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    if (this.sessions.size >= this.o.pool.maxClientConnections) {
      this.counters.refusedLimit++;
      socket.on('error', () => {});
      socket.resume(); // accepted paused (pauseOnConnect): read to the peer's end so the socket closes
      socket.end(
        errorResponse({
          severity: 'FATAL',
          code: '53300',
          message: `sorry, too many clients already (maxClientConnections=${this.o.pool.maxClientConnections})`,
        }),
      );
      return;
    }
    this.counters.accepted++;
    const s = new Session(socket, this.ctx);
    this.sessions.add(s);
    socket.once('close', () => this.sessions.delete(s));
  }

  private admit(id: ClaimedIdentity): ProxyRefusal | null {
    if (id.tenantId === null) return null;
    const n = this.byTenant.get(id.tenantId) ?? 0;
    if (id.maxClientConnections !== null && n >= id.maxClientConnections) {
      this.counters.refusedLimit++;
      return { code: '53300', message: `too many connections for this database (limit ${id.maxClientConnections})` };
    }
    this.byTenant.set(id.tenantId, n + 1);
    this.noteLogin(id);
    return null;
  }

  private leave(id: ClaimedIdentity): void {
    if (id.tenantId === null) return;
    const n = (this.byTenant.get(id.tenantId) ?? 1) - 1;
    if (n <= 0) this.byTenant.delete(id.tenantId);
    else this.byTenant.set(id.tenantId, n);
    const key = loginKey(id.database, id.role);
    const login = this.logins.get(key);
    if (login !== undefined && --login.clients <= 0) this.logins.delete(key);
  }

  /** An admitted tenant client: its identity carries the tenant's current pool size, which its pools take. */
  private noteLogin(id: ClaimedIdentity): void {
    const key = loginKey(id.database, id.role);
    const size = id.poolSize ?? this.o.pool.defaultPoolSize;
    const login = this.logins.get(key);
    if (login !== undefined) {
      login.clients++;
      if (login.size === size) return;
      login.size = size;
    } else {
      this.logins.set(key, { database: id.database, role: id.role, clients: 1, size });
    }
    // Also pools left from earlier clients (idle, not yet reaped).
    this.pools.resize(id.database, id.role, size);
  }

  /** The size of a new pool for this login. */
  private poolSizeFor(database: string, role: string): number {
    const known = this.logins.get(loginKey(database, role));
    if (known !== undefined) return known.size;
    return this.o.poolSizeOf?.(database, role) ?? this.o.pool.defaultPoolSize;
  }

  /** Brings the pools of logins with clients to their tenant's current size (poolSizeOf). */
  private checkPoolSizes(): void {
    const lookup = this.o.poolSizeOf;
    if (lookup === undefined) return;
    for (const login of this.logins.values()) {
      const current = lookup(login.database, login.role);
      if (current === undefined) continue; // deleted meanwhile: its clients are on their way out
      const size = current ?? this.o.pool.defaultPoolSize;
      if (size === login.size) continue;
      login.size = size;
      this.pools.resize(login.database, login.role, size);
    }
  }

  private tick(): void {
    this.checkGeneration();
    const now = performance.now();
    if (now - this.lastPoolSizeCheckMs < POOL_SIZE_CHECK_MS) return;
    this.lastPoolSizeCheckMs = now;
    this.checkPoolSizes();
  }

  private register(s: Session): { processId: number; secretKey: number } {
    // Sequential ids skipping live ones; a random secret so a key cannot be guessed from another.
    const tag = this.o.cancelRouting?.selfTag ?? 0;
    const seqMax = tag === 0 ? PROCESS_ID_MAX : TAGGED_SEQ_MAX;
    for (let i = 0; i < 1_000_000; i++) {
      const seq = this.nextProcessId;
      this.nextProcessId = seq >= seqMax ? 1 : seq + 1;
      const pid = tag === 0 ? seq : ((tag << TAG_SHIFT) | seq) >>> 0;
      if (this.byKey.has(pid)) continue;
      const key = { processId: pid, secretKey: randomBytes(4).readInt32BE(0) };
      this.byKey.set(pid, s);
      return key;
    }
    throw new Error('proxy: no free process id for BackendKeyData');
  }

  private cancel(processId: number, secretKey: number): void {
    this.counters.cancels++;
    const routing = this.o.cancelRouting;
    const tag = processId >>> TAG_SHIFT;
    if (routing !== undefined && tag !== 0 && tag !== routing.selfTag) {
      // Another node's session: its proxy looks it up (and there the tag is its own, so it goes no further).
      const peer = routing.peerOf(tag);
      if (peer === undefined) return;
      this.counters.cancelsRelayed++;
      return this.sendCancel(peer, processId, secretKey);
    }
    const s = this.byKey.get(processId);
    // A wrong secret is ignored silently, as Postgres does.
    if (s?.key == null || s.key.secretKey !== secretKey) return;
    if (s.server) this.counters.cancelsForwarded++;
    s.cancelQuery();
  }

  private cancelServer(t: RouteTarget, processId: number, secretKey: number): void {
    this.sendCancel(t, processId, secretKey);
  }

  /** A CancelRequest on a connection of its own, as libpq sends it; no answer is expected. */
  private sendCancel(t: { host: string; port: number }, processId: number, secretKey: number): void {
    const sock = net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => sock.destroy(), CANCEL_CONNECT_TIMEOUT_MS);
    timer.unref();
    sock.on('error', () => clearTimeout(timer));
    sock.on('close', () => clearTimeout(timer));
    sock.on('connect', () => sock.end(cancelRequest(processId, secretKey)));
  }

  /** Retires pools of generations that are not current any more. */
  private checkGeneration(): void {
    const g = this.o.router.generation();
    if (g === this.lastGeneration) return;
    this.lastGeneration = g;
    this.pools.retireOtherGenerations(g);
    if (g > 0) for (const s of this.sessions) s.onNewGeneration(g);
  }
}

function loginKey(database: string, role: string): string {
  return `${database}\0${role}`;
}

/** Prometheus gauges read from stats() at scrape time. */
export function registerProxyMetrics(registry: Registry, proxy: ProxyServer): void {
  const stats = () => proxy.stats();
  const poolGauge = (name: string, help: string, pick: (p: PoolStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['node', 'database', 'role'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of stats().pools) this.inc({ node: p.node, database: p.database, role: p.role }, pick(p));
      },
    });
  poolGauge('ogel_proxy_pool_size', "Server connections a pool may hold (its tenant's poolSize, else defaultPoolSize).", (p) => p.size);
  poolGauge('ogel_proxy_server_connections_active', 'Server connections in use by a client.', (p) => p.active);
  poolGauge('ogel_proxy_server_connections_idle', 'Idle pooled server connections.', (p) => p.idle);
  poolGauge('ogel_proxy_clients_waiting', 'Clients waiting for a server connection.', (p) => p.waiting);
  poolGauge('ogel_proxy_max_wait_seconds', 'Age of the oldest waiting client.', (p) => p.maxWaitMs / 1000);
  poolGauge('ogel_proxy_served_total', 'Transactions (or sessions) served by the pool.', (p) => p.served);
  new Gauge({
    name: 'ogel_proxy_clients',
    help: 'Client connections.',
    registers: [registry],
    collect() {
      this.set(stats().clients.total);
    },
  });
  const counter = (name: string, help: string, pick: (c: ProxyStats['counters']) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(stats().counters));
      },
    });
  counter('ogel_proxy_held_total', 'Transactions held for a primary (failover, switchover).', (c) => c.held);
  counter('ogel_proxy_hold_timeouts_total', 'Held transactions that failed after holdTimeoutMs.', (c) => c.holdTimeouts);
  counter('ogel_proxy_retried_total', 'Transactions run again on a new server after their server ended them unrun.', (c) => c.retried);
  counter('ogel_proxy_failed_in_flight_total', 'Transactions failed because their server was lost.', (c) => c.failedInFlight);
  counter('ogel_proxy_protocol_errors_total', 'Clients closed for malformed messages.', (c) => c.protocolErrors);
  counter('ogel_proxy_auth_failures_total', 'Refused logins.', (c) => c.authFailures);
  counter('ogel_proxy_refused_limit_total', 'Clients refused by a connection limit.', (c) => c.refusedLimit);
  counter('ogel_proxy_cancels_relayed_total', "CancelRequests for another node's session, sent on to that node's proxy.", (c) => c.cancelsRelayed);
}
