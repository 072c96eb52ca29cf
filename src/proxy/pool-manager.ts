// Every pool of one proxy (docs/proxy.md, Pooling), keyed by target and login:
// finds or makes a pool, resizes a login's pools, reaps idle connections and
// retires the pools of past generations.

import type { RouteTarget } from './router.js';
import type { ServerCredentials } from './types.js';
import { Pool, type PoolStats } from './pool.js';

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
