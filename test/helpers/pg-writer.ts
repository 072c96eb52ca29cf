// A client that keeps writing to one Postgres over its unix socket and records
// every attempt on the caller's monotonic clock: when it started, when it ended,
// and what Postgres said. Partition tests use it to see when an old primary stops
// accepting writes and when a new one starts.
//
// "Accepted" means committed on that server, which is more than "acknowledged".
// With synchronous replication and no standby reachable, a COMMIT is written
// locally and then waits for an acknowledgement that never comes. statement_timeout
// does not end that wait (Postgres disarms it before the commit; measured here: the
// INSERT hung until the fence terminated the session), so such an attempt ends as
// 'terminated' with its row committed on the server. Only the rows the server holds
// afterwards tell which attempts it committed; the caller reads them back. A wait
// cancelled by a query cancel instead returns success with the warning "canceling
// wait for synchronous replication" and is recorded as 'local-only' (accepted, not
// replicated).

import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

export type WriteOutcome =
  /** Committed and acknowledged by the synchronous standbys. */
  | 'acked'
  /** Committed locally; the wait for the standbys was cancelled by a query cancel (see above). */
  | 'local-only'
  /** SQLSTATE 25006: the server is read-only (fenced, or a standby). */
  | 'read-only'
  /** The server ended the session (a fence terminates client backends). The row may or may not be committed. */
  | 'terminated'
  /** Cancelled by statement_timeout before the commit. */
  | 'timeout'
  | 'connect-failed'
  /** Anything else, including a client-side timeout: the outcome is unknown. */
  | 'error';

export interface WriteAttempt {
  id: number;
  startMs: number;
  endMs: number;
  outcome: WriteOutcome;
  detail?: string;
}

export function accepted(a: WriteAttempt): boolean {
  return a.outcome === 'acked' || a.outcome === 'local-only';
}

export interface WriteLoopOptions {
  /** unix_socket_directories of the server (ogel puts it in the data directory). */
  socketDir: string;
  port: number;
  /** A table with an integer primary key `id`. */
  table: string;
  /** Ids are firstId, firstId + 1, ...: one per attempt, so a row names its attempt. */
  firstId: number;
  /** Bounds each INSERT's execution on the server (not its wait for the standbys, see above). */
  statementTimeoutMs: number;
  /** Bounds each attempt on the client: past it the outcome is unknown ('error'). */
  clientTimeoutMs: number;
  /** Pause between attempts, so the loop does not starve the servers of CPU. */
  intervalMs: number;
  /** The clock every figure of the test uses. */
  clock: () => number;
}

const SYNC_CANCEL = /canceling (the )?wait for synchronous replication/i;

export class WriteLoop {
  readonly attempts: WriteAttempt[] = [];
  private nextId: number;
  private client: pg.Client | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private syncCancelled = false;

  constructor(private readonly o: WriteLoopOptions) {
    this.nextId = o.firstId;
  }

  start(): void {
    if (this.running !== undefined) throw new Error('WriteLoop.start called twice');
    this.running = this.loop();
  }

  /** Stops after the attempt in flight, so every attempt has an end and an outcome. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    this.dropClient();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.attempt();
      await sleep(this.o.intervalMs);
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.o.socketDir,
      port: this.o.port,
      user: 'postgres',
      database: 'postgres',
      application_name: 'partition-writer',
      statement_timeout: this.o.statementTimeoutMs,
      query_timeout: this.o.clientTimeoutMs,
      connectionTimeoutMillis: 1_000,
    });
    client.on('error', () => {}); // a terminated session shows up as the next query's error
    client.on('notice', (n) => {
      if (SYNC_CANCEL.test(n.message ?? '')) this.syncCancelled = true;
    });
    await client.connect();
    return client;
  }

  private dropClient(): void {
    const c = this.client;
    this.client = undefined;
    // Not awaited: a session the server already ended may never answer the Terminate.
    if (c !== undefined) void c.end().catch(() => {});
  }

  private async attempt(): Promise<void> {
    const id = this.nextId++;
    const startMs = this.o.clock();
    const record = (outcome: WriteOutcome, detail?: string) =>
      this.attempts.push({ id, startMs, endMs: this.o.clock(), outcome, ...(detail !== undefined ? { detail } : {}) });
    if (this.client === undefined) {
      try {
        this.client = await this.connect();
      } catch (e) {
        record('connect-failed', (e as Error).message);
        return;
      }
    }
    this.syncCancelled = false;
    try {
      await this.client.query(`INSERT INTO ${this.o.table} (id) VALUES ($1)`, [id]);
      record(this.syncCancelled ? 'local-only' : 'acked');
    } catch (e) {
      const err = e as Error & { code?: string };
      const outcome = classify(err);
      record(outcome, `${err.code ?? ''} ${err.message}`.trim());
      if (outcome !== 'read-only' && outcome !== 'timeout') this.dropClient();
    }
  }
}

function classify(err: Error & { code?: string }): WriteOutcome {
  if (err.code === '25006') return 'read-only';
  if (err.code === '57014') return 'timeout';
  // 57P01 admin_shutdown is what pg_terminate_backend sends.
  if (err.code === '57P01' || err.code === '57P02' || err.code === '57P03') return 'terminated';
  if (err.code === undefined && /Connection terminated|ECONNRESET|EPIPE|not queryable/i.test(err.message)) return 'terminated';
  return 'error';
}
