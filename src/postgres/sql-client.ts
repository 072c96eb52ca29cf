// SQL as the superuser over a local server's unix socket: a pool of at most
// two connections, every query bounded by a timeout. The pool's own backends
// are known by PID (ownPids), so the fence can end every session but ogel's.

import pg from 'pg';
import type { Logger } from '../log.js';
import { PostgresStateError } from './errors.js';
import { connectSocket, socketClientConfig, sqlState, type SocketTarget } from './query.js';

export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/** Anything that runs SQL as the superuser: a PostgresInstance, a SqlClient. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], opts?: { timeoutMs?: number }): Promise<pg.QueryResult<R>>;
}

export interface SqlClientOptions {
  target: SocketTarget;
  /** Names the server in errors. */
  dataDir: string;
  /** Throws (PostgresStateError) unless the server runs: a query then fails at once. */
  requireRunning: (what: string) => void;
  logger?: Logger | undefined;
}

export class SqlClient implements Queryable {
  private pool: pg.Pool | undefined;
  private readonly poolPids = new Set<number>();

  constructor(private readonly opts: SqlClientOptions) {}

  /** The server PIDs of this pool's connections. */
  ownPids(): number[] {
    return [...this.poolPids];
  }

  private getPool(): pg.Pool {
    this.opts.requireRunning('query');
    if (!this.pool) {
      const pool = new pg.Pool({ ...socketClientConfig(this.opts.target), max: 2, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5000 });
      // An idle client killed by the server (shutdown, crash): drop it quietly; the next query reconnects.
      pool.on('error', () => {});
      pool.on('connect', (client) => {
        const pid = (client as unknown as { processID?: number }).processID;
        if (typeof pid === 'number') {
          this.poolPids.add(pid);
          client.on('end', () => this.poolPids.delete(pid));
        }
      });
      this.pool = pool;
    }
    return this.pool;
  }

  /** Closes the pool; returns the promise of its end (not awaited by fast and immediate stops). */
  drop(): Promise<void> | undefined {
    const pool = this.pool;
    if (!pool) return undefined;
    this.pool = undefined;
    this.poolPids.clear();
    return pool.end().catch(() => {});
  }

  /**
   * SQL as the superuser, over a pool of at most 2 unix-socket connections.
   * The call fails after `timeoutMs` (client side; the connection is dropped).
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], opts: { timeoutMs?: number } = {}): Promise<pg.QueryResult<R>> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const client = await this.getPool().connect();
    const pid = (client as unknown as { processID?: number }).processID;
    // pg-pool listens for 'error' only on idle clients: a checked-out one that the
    // server terminates (57P01 at shutdown) would otherwise crash the daemon. The
    // query itself fails with the error.
    const onError = () => {};
    client.on('error', onError);
    try {
      const r = await client.query<R>({ text: sql, values: params, query_timeout: timeoutMs } as pg.QueryConfig);
      client.removeListener('error', onError);
      client.release();
      return r;
    } catch (err) {
      client.removeListener('error', onError);
      // An SQL error leaves the connection usable; anything else (timeout, lost connection) drops it.
      const serverError = sqlState(err) !== undefined;
      client.release(serverError ? undefined : (err as Error));
      if (!serverError && /timeout/i.test((err as Error).message)) {
        // The server is still running it: end that session too.
        if (pid !== undefined) this.terminateBackend(pid);
        throw new PostgresStateError(`query timed out after ${timeoutMs} ms on ${this.opts.dataDir}: ${sql.replace(/\s+/g, ' ').trim().slice(0, 120)}`);
      }
      throw err;
    }
  }

  private terminateBackend(pid: number): void {
    void (async () => {
      const c = await connectSocket(this.opts.target, { timeoutMs: 5000 });
      try {
        await c.query({ text: 'SELECT pg_terminate_backend($1)', values: [pid], query_timeout: 5000 } as pg.QueryConfig);
      } finally {
        await c.end().catch(() => {});
      }
    })().catch((e: Error) => this.opts.logger?.({ level: 'warn', msg: 'could not terminate the session of a timed-out query', pid, error: e.message }));
  }
}
