// The local primary's replication figures for the status route and the metrics
// scrape, read at most once per maxAgeMs and never twice at the same time. The
// reads share the agent's small connection pool (2 connections), so status
// polls and scrapes must not pile up on it: one query in flight, whoever asks.

import type { PostgresInstance } from '../postgres/instance.js';
import { replicationStats, type ReplicationStats } from '../postgres/replication-stats.js';

export class PostgresUnavailableError extends Error {
  override name = 'PostgresUnavailableError';
}

export interface LiveReplicationOptions {
  /** The local instance, if any (the agent's; undefined when not supervised or before its first pass). */
  instance: () => Pick<PostgresInstance, 'query' | 'isRunning'> | undefined;
  /** Bound on one reading, pool wait included. */
  timeoutMs: number;
  /** A reading younger than this is served again. */
  maxAgeMs: number;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export class LiveReplication {
  private inflight: Promise<ReplicationStats | null> | undefined;
  private last: { atMs: number; value: ReplicationStats | null } | undefined;
  private readonly now: () => number;

  constructor(private readonly o: LiveReplicationOptions) {
    if (!(o.timeoutMs > 0) || !(o.maxAgeMs >= 0)) throw new RangeError(`LiveReplication: timeoutMs ${o.timeoutMs} must be > 0 and maxAgeMs ${o.maxAgeMs} >= 0`);
    this.now = o.now ?? (() => performance.now());
  }

  /**
   * The primary's view of its standbys; null when the local Postgres is a standby.
   * Throws PostgresUnavailableError when no local Postgres runs, and an Error when
   * the reading fails or takes longer than timeoutMs.
   */
  read(): Promise<ReplicationStats | null> {
    if (this.last && this.now() - this.last.atMs <= this.o.maxAgeMs) return Promise.resolve(this.last.value);
    if (this.inflight) return this.inflight;
    const p = this.readOnce().finally(() => {
      if (this.inflight === p) this.inflight = undefined;
    });
    this.inflight = p;
    return p;
  }

  private async readOnce(): Promise<ReplicationStats | null> {
    const inst = this.o.instance();
    if (!inst?.isRunning()) throw new PostgresUnavailableError('Postgres is not running on this node');
    let timer: NodeJS.Timeout | undefined;
    try {
      // query() bounds the statement, not the wait for a pooled connection: bound both.
      const value = await Promise.race([
        replicationStats(inst, { timeoutMs: this.o.timeoutMs }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`reading pg_stat_replication timed out after ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
        }),
      ]);
      this.last = { atMs: this.now(), value };
      return value;
    } finally {
      clearTimeout(timer);
    }
  }
}
