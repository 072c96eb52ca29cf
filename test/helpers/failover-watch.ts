// Watchers that bracket the moment of a promotion on the test's monotonic clock.
//
// Each observation is an interval [sentMs, recvMs]. A linearizable read that
// returns the old generation took effect somewhere in its interval, so the
// promotion committed after its sentMs: the latest such sentMs is a lower bound
// on the promotion. The first read showing the new generation gives an upper
// bound (its recvMs). The same holds for a Postgres that is last seen in
// recovery, then first seen out of it.

import pg from 'pg';
import { request } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Bracket {
  /** The promotion happened after this (the last observation of the old state was sent then). */
  afterMs: number;
  /** The promotion happened before this (the first observation of the new state was received then). */
  byMs: number;
}

export interface FsmObservation {
  node: string;
  sentMs: number;
  recvMs: number;
  generation: number;
  primary: string | null;
}

export interface FsmWatchOptions {
  /** Nodes to ask, in turn, with their admin API base URLs. */
  apis: ReadonlyMap<string, string>;
  token: string;
  intervalMs: number;
  /** Bound on each read; reads in flight at once are bounded too. */
  requestTimeoutMs: number;
  inFlightMax: number;
  clock: () => number;
}

/**
 * Polls GET /v1/history, a linearizable read (the node's ReadIndex barrier; it
 * answers 503 when it cannot confirm one), whose last entry is the current
 * generation and primary. Reads overlap: one that waits on a partitioned leader
 * does not hold up the next.
 */
export class FsmWatch {
  readonly observations: FsmObservation[] = [];
  private timer: NodeJS.Timeout | undefined;
  private turn = 0;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: FsmWatchOptions) {}

  start(): void {
    const ids = [...this.o.apis.keys()];
    this.timer = setInterval(() => {
      if (this.inFlight.size >= this.o.inFlightMax) return;
      const id = ids[this.turn++ % ids.length]!;
      const p = this.readOnce(id).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }, this.o.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inFlight]);
  }

  /** Observations that show a generation above `generation`. */
  newer(generation: number): FsmObservation[] {
    return this.observations.filter((x) => x.generation > generation);
  }

  bracket(oldGeneration: number): Bracket | undefined {
    const olds = this.observations.filter((x) => x.generation === oldGeneration);
    const news = this.newer(oldGeneration);
    if (olds.length === 0 || news.length === 0) return undefined;
    return { afterMs: Math.max(...olds.map((x) => x.sentMs)), byMs: Math.min(...news.map((x) => x.recvMs)) };
  }

  private async readOnce(id: string): Promise<void> {
    const sentMs = this.o.clock();
    try {
      const r = await request(`${this.o.apis.get(id)!}/v1/history`, {
        headers: { authorization: `Bearer ${this.o.token}` },
        signal: AbortSignal.timeout(this.o.requestTimeoutMs),
      });
      const text = await r.body.text();
      const recvMs = this.o.clock();
      if (r.statusCode !== 200) return; // no leader to confirm the read: it says nothing
      const last = (JSON.parse(text) as { history: { generation: number; node: string }[] }).history.at(-1);
      this.observations.push({ node: id, sentMs, recvMs, generation: last?.generation ?? 0, primary: last?.node ?? null });
    } catch {
      // Timed out or refused: no observation.
    }
  }
}

export interface RecoveryObservation {
  sentMs: number;
  recvMs: number;
  inRecovery: boolean;
}

/** Polls pg_is_in_recovery() on one Postgres over its unix socket. */
export class RecoveryWatch {
  readonly observations: RecoveryObservation[] = [];
  private client: pg.Client | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly socketDir: string,
    private readonly port: number,
    private readonly intervalMs: number,
    private readonly clock: () => number,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) void c.end().catch(() => {});
  }

  bracket(): Bracket | undefined {
    const out = this.observations.filter((x) => !x.inRecovery);
    const inRec = this.observations.filter((x) => x.inRecovery);
    if (out.length === 0 || inRec.length === 0) return undefined;
    return { afterMs: Math.max(...inRec.map((x) => x.sentMs)), byMs: Math.min(...out.map((x) => x.recvMs)) };
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const sentMs = this.clock();
      try {
        if (this.client === undefined) {
          const c = new pg.Client({
            host: this.socketDir,
            port: this.port,
            user: 'postgres',
            database: 'postgres',
            application_name: 'partition-watch',
            query_timeout: 2_000,
            connectionTimeoutMillis: 1_000,
          });
          c.on('error', () => {});
          await c.connect();
          this.client = c;
        }
        const r = await this.client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        this.observations.push({ sentMs, recvMs: this.clock(), inRecovery: r.rows[0]!.r });
      } catch {
        // A restart or a terminated session: reconnect on the next round.
        const c = this.client;
        this.client = undefined;
        if (c !== undefined) void c.end().catch(() => {});
      }
      await sleep(this.intervalMs);
    }
  }
}
