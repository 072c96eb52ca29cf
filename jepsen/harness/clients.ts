// The workload's clients: `concurrency` workers, each one logical process at a
// time (a Jepsen process: at most one operation outstanding). Workers are spread
// over the three hosts' proxies; a worker that cannot connect to its proxy moves
// to the next host. After an indeterminate (info) operation a worker takes a new
// process id (old + concurrency), as in Jepsen: the old operation may still be
// in flight for all anyone knows, and a process never has two.

import pg from 'pg';
import { Prng } from '../../raft/sim/prng.js';
import { HistoryFullError, type HistoryRecorder } from '../history/index.js';
import type { OpResult, OpSpec, RunContext, Workload } from '../workloads/index.js';
import type { JepsenCluster } from './cluster.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ClientOptions {
  concurrency: number;
  /** Operations per second, all workers together (each paces itself, with jitter). */
  rate: number;
  opTimeoutMs: number;
  connectTimeoutMs: number;
  seed: number;
}

export interface ClientStats {
  connectFailures: number;
  hostMoves: number;
}

/** Drops a session at once: end() would wait for an answer a partitioned or paused server never sends. */
export function dropClient(client: pg.Client): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  stream?.destroy();
  void client.end().catch(() => {});
}

export class Clients {
  readonly stats: ClientStats = { connectFailures: 0, hostMoves: 0 };
  private stopped = false;
  private readonly workers: Promise<void>[] = [];
  private readonly timers = new Set<{ t: NodeJS.Timeout; r: () => void }>();

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly workload: Workload,
    private readonly history: HistoryRecorder,
    private readonly o: ClientOptions,
    private readonly ctx: RunContext,
  ) {}

  start(): void {
    const seeds = new Prng(this.o.seed ^ 0xc11e_9751);
    for (let w = 0; w < this.o.concurrency; w++) this.workers.push(this.worker(w, seeds.fork()));
  }

  /** No new operations; resolves when every worker's operation in flight has completed. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const x of this.timers) {
      clearTimeout(x.t);
      x.r();
    }
    await Promise.all(this.workers);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const x = {
        t: setTimeout(() => {
          this.timers.delete(x);
          r();
        }, ms),
        r,
      };
      this.timers.add(x);
    });
  }

  async connect(host: string): Promise<pg.Client> {
    const client = new pg.Client(
      this.cluster.proxyConfig(host, { connectionTimeoutMillis: this.o.connectTimeoutMs, application_name: 'jepsen', keepAlive: true }),
    );
    client.on('error', () => {}); // a dead session shows up as the next query's error
    try {
      await client.connect();
    } catch (e) {
      dropClient(client);
      throw e;
    }
    return client;
  }

  private async worker(w: number, rng: Prng): Promise<void> {
    const ids = this.cluster.ids;
    let hostIndex = w % ids.length;
    let process = w;
    let client: pg.Client | undefined;
    const intervalMs = (this.o.concurrency / this.o.rate) * 1000;
    while (!this.stopped) {
      const host = ids[hostIndex]!;
      if (client === undefined) {
        try {
          client = await this.connect(host);
        } catch {
          // Nothing was sent: no operation to record. Try the next host's proxy.
          this.stats.connectFailures++;
          this.stats.hostMoves++;
          hostIndex = (hostIndex + 1) % ids.length;
          await this.sleep(100);
          continue;
        }
      }
      const op: OpSpec = this.workload.next(process, rng);
      try {
        this.history.invoke(process, op.f, {
          ...(op.key !== undefined ? { key: op.key } : {}),
          ...(op.value !== undefined ? { value: op.value } : {}),
          node: host,
        });
      } catch (e) {
        if (e instanceof HistoryFullError) break;
        throw e;
      }
      const r: OpResult = await this.workload.run(client, op, this.ctx).catch((e: Error): OpResult => ({ type: 'info', error: `harness: ${e.message}` }));
      this.history.complete(process, r.type, {
        ...(r.value !== undefined ? { value: r.value } : {}),
        ...(r.node !== undefined ? { node: r.node } : {}),
        ...(r.generation !== undefined ? { generation: r.generation } : {}),
        ...(r.generationNode !== undefined ? { generationNode: r.generationNode } : {}),
        ...(r.error !== undefined ? { error: r.error } : {}),
      });
      if (r.dropClient !== false) {
        dropClient(client);
        client = undefined;
      }
      if (r.type === 'info') process += this.o.concurrency;
      await this.sleep(intervalMs * (0.5 + rng.next()));
    }
    if (client !== undefined) dropClient(client);
  }

  /**
   * Runs each final operation until one attempt is ok (recorded like any other,
   * by fresh processes), trying the hosts in turn; gives up after timeoutMs.
   */
  async runFinal(ops: readonly OpSpec[], firstProcess: number, timeoutMs: number): Promise<boolean> {
    let process = firstProcess;
    const deadline = performance.now() + timeoutMs;
    const ids = this.cluster.ids;
    let allOk = true;
    for (const op of ops) {
      let ok = false;
      for (let attempt = 0; !ok && performance.now() < deadline; attempt++) {
        const host = ids[attempt % ids.length]!;
        let client: pg.Client;
        try {
          client = await this.connect(host);
        } catch {
          await sleep(200);
          continue;
        }
        this.history.invoke(process, op.f, { ...(op.key !== undefined ? { key: op.key } : {}), node: host });
        const r: OpResult = await this.workload.run(client, op, this.ctx).catch((e: Error): OpResult => ({ type: 'info', error: `harness: ${e.message}` }));
        this.history.complete(process, r.type, {
          ...(r.value !== undefined ? { value: r.value } : {}),
          ...(r.node !== undefined ? { node: r.node } : {}),
          ...(r.error !== undefined ? { error: r.error } : {}),
        });
        dropClient(client);
        ok = r.type === 'ok';
        if (r.type === 'info') process++;
        if (!ok) await new Promise((r2) => setTimeout(r2, 200));
      }
      allOk &&= ok;
    }
    return allOk;
  }
}
