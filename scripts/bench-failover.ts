// npm run bench:failover -- [--runs 20] [--lease-ms 1000] [--mode failover|switchover] [--via proxy|direct] [--json]
// Failover of real ogel daemons and Postgres 17: a writer inserts sequence numbers
// into the primary and records which were acknowledged; the primary's daemon is
// killed with -9 (its Postgres goes with it: the death guard); the time from the
// kill to the first acknowledged write on the new primary is measured, and every
// acknowledged number must be there. Each failover run uses a fresh cluster, so
// every run starts from the same state.
// --mode switchover: one cluster, `ogel switchover` N times while the writer
// runs; the write pause is the gap between the last write acknowledged by the
// old primary and the first one acknowledged by the new primary.
// --via proxy (the default): the writer goes through the proxy of a node that
// survives, as users do, and the proxy holds it through the change. --via direct:
// it tries each node's Postgres in turn. The JSON summary is printed last:
// {"mode":"failover","runs":20,"p50_ms":0,"p99_ms":0,"max_ms":0,"lost_acked_writes":0}

import { performance } from 'node:perf_hooks';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from '../test/helpers/daemons.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';
import { adminPassword } from '../src/auth/passwords.js';
import { setTimeout as sleep } from 'node:timers/promises';

const HELP = `Usage: npm run bench:failover -- [--runs N] [--lease-ms MS] [--mode failover|switchover] [--via proxy|direct] [--json]

Measures automatic failover: N times (default 20), a fresh 3-node cluster of ogel
daemons with Postgres 17, a writer inserting sequence numbers, kill -9 of the
primary's daemon, and the time until a write is acknowledged by the new primary.
Every acknowledged write must survive. --lease-ms sets postgres.leaseMs (default
1000).

--mode switchover: one cluster, N planned switchovers (ogel switchover) while the
writer inserts continuously. Measures the write pause: from the last write
acknowledged by the old primary to the first one acknowledged by the new primary.

--via proxy (default): the writer uses one connection to the proxy of a node
that survives, as users do. --via direct: it connects to each node's Postgres
in turn when one refuses, as a client with a multi-host connection string and
target_session_attrs=read-write would.`;

/** How the writer reaches Postgres: each node's Postgres directly, or one node's proxy. */
type Via = 'proxy' | 'direct';

/** An admin client of node `node`'s Postgres, or of its proxy (errors after connect fail the next query). */
async function connectTo(c: DaemonCluster, node: string, password: string, via: Via = 'direct'): Promise<pg.Client> {
  const n = c.nodes.get(node)!;
  const cl = new pg.Client({
    host: '127.0.0.1',
    port: via === 'proxy' ? n.proxyPort : n.postgresPort,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 1_000,
  });
  cl.on('error', () => {});
  await cl.connect();
  return cl;
}

interface Run {
  ms: number;
  acked: number;
  lost: number;
  errors: number;
  from: string;
  to: string;
}

type View = { primary: string | null; generation: number; lease: { renewalSeq: number } | null; nodes: Record<string, { reportedRole: string; role: string }> };

async function viewOf(c: DaemonCluster): Promise<View | undefined> {
  try {
    const leader = await c.waitForLeader(2_000);
    return ((await c.get(leader, '/v1/status')).body as { postgres: View }).postgres;
  } catch {
    return undefined;
  }
}

/** Healthy: a primary with a renewed lease and both others streaming from it. */
async function healthy(c: DaemonCluster, password: string): Promise<View> {
  const streaming = async (primary: string): Promise<number> => {
    let cl: pg.Client | undefined;
    try {
      cl = await connectTo(c, primary, password);
      return (await cl.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'")).rows[0].n as number;
    } catch {
      return 0;
    } finally {
      await cl?.end().catch(() => {});
    }
  };
  let v: View | undefined;
  await c.waitFor(
    async () => {
      v = await viewOf(c);
      return (
        v !== undefined &&
        v.primary !== null &&
        (v.lease?.renewalSeq ?? 0) >= 1 &&
        Object.values(v.nodes).every((n) => n.role !== 'recloning' && n.role !== 'fenced') &&
        (await streaming(v.primary)) === 2
      );
    },
    'a primary with two streaming standbys',
    120_000,
  );
  return v!;
}

async function oneRun(leaseMs: number, via: Via, log: (s: string) => void): Promise<Run> {
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `postgres:\n  leaseMs: ${leaseMs}\n`);
  try {
    const password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
    const v = await healthy(c, password);
    const old = v.primary!;
    const w = await connectTo(c, old, password);
    await w.query('CREATE TABLE seq (n bigint primary key)');
    await w.end();
    // Through the proxy: the proxy of a node that survives the kill.
    const writer = new SeqWriter(c, password, via, [...c.nodes.keys()].find((id) => id !== old)!);
    writer.start();
    // Write for a moment so the kill lands in the middle of a stream of commits.
    await c.waitFor(async () => writer.acks.length >= 50, '50 acknowledged writes before the kill', 30_000);
    const t0 = performance.now();
    await c.kill9(old);
    await c
      .waitFor(async () => writer.acks.some((x) => x.at > t0 && x.node !== old), 'a write acknowledged by a new primary', 60_000)
      .catch(async (e: Error) => {
        // Evidence: what the surviving servers' sessions wait on, and who streams.
        const seen: string[] = [];
        for (const id of c.nodes.keys()) {
          if (id === old) continue;
          try {
            const cl = await connectTo(c, id, password);
            const a = await cl.query(
              "SELECT pid, state, wait_event_type, wait_event, left(query, 60) AS q FROM pg_stat_activity WHERE backend_type IN ('client backend', 'walsender')",
            );
            const r = await cl.query('SELECT application_name, state, sync_state FROM pg_stat_replication');
            const w = await cl.query('SELECT status, sender_port FROM pg_stat_wal_receiver');
            seen.push(`${id}: activity ${JSON.stringify(a.rows)} replication ${JSON.stringify(r.rows)} receiver ${JSON.stringify(w.rows)}`);
            await cl.end();
          } catch (err) {
            seen.push(`${id}: ${(err as Error).message}`);
          }
        }
        throw new Error(`${e.message}; t0 ${Math.round(t0)}; the writer's last errors:\n${writer.lastErrors.join('\n')}\n${seen.join('\n')}`);
      });
    const first = writer.acks.find((x) => x.at > t0 && x.node !== old)!;
    await writer.stop();
    const ms = first.at - t0;
    const check = await connectTo(c, first.node, password);
    const present = new Set((await check.query('SELECT n FROM seq')).rows.map((r: { n: string }) => Number(r.n)));
    await check.end();
    const lost = writer.acks.filter((x) => !present.has(x.n)).length;
    log(`${old} -> ${first.node} in ${ms.toFixed(0)} ms; ${writer.acks.length} acknowledged writes, ${lost} lost; ${writer.errors} errors seen by the writer`);
    return { ms, acked: writer.acks.length, lost, errors: writer.errors, from: old, to: first.node };
  } catch (e) {
    // Evidence before the cluster is removed: the Postgres view and each node's last log lines.
    for (const [id, node] of c.nodes) {
      const st = await c.get(id, '/v1/status?stale=true').catch(() => undefined);
      process.stderr.write(`--- ${id}: ${JSON.stringify((st?.body as { postgres?: unknown } | undefined)?.postgres ?? null).slice(0, 1500)}\n`);
      process.stderr.write(
        node.log
          .slice(-25)
          .map((l) => `    ${l.slice(0, 400)}`)
          .join('\n') + '\n',
      );
    }
    throw e;
  } finally {
    await c.destroy();
  }
}

/**
 * A writer that keeps inserting sequence numbers and records which were
 * acknowledged, and by which node (the server's port names it). Direct: it
 * tries each node's Postgres in turn when one refuses, as a client with a
 * multi-host connection string and target_session_attrs=read-write would.
 * Proxy: one connection to one node's proxy, which routes every transaction.
 */
class SeqWriter {
  readonly acks: { n: number; node: string; at: number }[] = [];
  errors = 0;
  /** The newest errors (for the evidence when a run fails). */
  readonly lastErrors: string[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;
  private next = 0;
  private readonly byPort: Map<number, string>;

  constructor(
    private readonly c: DaemonCluster,
    private readonly password: string,
    private readonly via: Via,
    private readonly proxyNode: string,
  ) {
    this.byPort = new Map([...c.nodes.values()].map((n) => [n.postgresPort, n.id]));
  }

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    const ids = [...this.c.nodes.keys()];
    let i = 0;
    let client: pg.Client | undefined;
    while (!this.stopped) {
      try {
        client ??= await connectTo(this.c, this.via === 'proxy' ? this.proxyNode : ids[i++ % ids.length]!, this.password, this.via);
        // Each attempt its own value: a failed attempt may still have committed.
        const n = ++this.next;
        const r = await client.query<{ port: number }>('INSERT INTO seq VALUES ($1) RETURNING inet_server_port() AS port', [n]);
        this.acks.push({ n, node: this.byPort.get(r.rows[0]!.port) ?? '?', at: performance.now() });
      } catch (err) {
        this.errors++;
        this.lastErrors.push(`${Math.round(performance.now())} ${(err as { code?: string }).code ?? '-'} ${(err as Error).message}`);
        if (this.lastErrors.length > 20) this.lastErrors.shift();
        // Direct: another node may be the primary. Proxy: the session carries on
        // after an SQL error; a lost connection (no SQLSTATE, or class 08/57P) is
        // opened again, as an application's pool would.
        const code = (err as { code?: unknown }).code;
        const connectionLost = typeof code !== 'string' || code.startsWith('08') || code.startsWith('57P');
        if (this.via === 'direct' || connectionLost) {
          await client?.end().catch(() => {});
          client = undefined;
        }
        await sleep(2);
      }
    }
    await client?.end().catch(() => {});
  }
}

async function switchoverBench(runs: number, leaseMs: number, via: Via): Promise<number> {
  const log = (s: string) => process.stderr.write(`[bench:failover] ${s}\n`);
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `postgres:\n  leaseMs: ${leaseMs}\n`);
  const pauses: number[] = [];
  const reported: number[] = [];
  let lost = 0;
  let acked = 0;
  let errors = 0;
  try {
    const password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
    const v0 = await healthy(c, password);
    {
      const cl = await connectTo(c, v0.primary!, password);
      await cl.query('CREATE TABLE seq (n bigint primary key)');
      await cl.end();
    }
    // Through the proxy: any node's works, every proxy routes to the primary.
    const writer = new SeqWriter(c, password, via, 'n3');
    writer.start();
    for (let i = 0; i < runs; i++) {
      const v = await healthy(c, password);
      const from = v.primary!;
      await sleep(300); // a stream of commits before the switchover
      const mark = writer.acks.length;
      const r = await c.send(from, 'POST', '/v1/switchover', {});
      if (r.status !== 200) throw new Error(`switchover ${i + 1} failed: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      const res = r.body as { from: string; to: string; pauseMs: number; stepDown: Record<string, unknown> | null };
      // The first write acknowledged by the new primary.
      await c.waitFor(async () => writer.acks.slice(mark).some((x) => x.node === res.to), `a write acknowledged by ${res.to}`, 30_000);
      const after = writer.acks.slice(mark);
      const firstNew = after.findIndex((x) => x.node === res.to);
      const lastOld = [...writer.acks.slice(0, mark), ...after.slice(0, firstNew)].reverse().find((x) => x.node === from);
      const pause = after[firstNew]!.at - (lastOld?.at ?? after[firstNew]!.at);
      pauses.push(pause);
      reported.push(res.pauseMs);
      log(
        `run ${i + 1}/${runs}: ${res.from} -> ${res.to}: client-seen write pause ${pause.toFixed(0)} ms (leader-measured ${res.pauseMs} ms; old primary: ${['readOnlyMs', 'drainMs', 'catchUpMs', 'shutdownMs', 'releaseMs'].map((k) => `${k} ${String(res.stepDown?.[k])}`).join(', ')}); writer errors so far ${writer.errors}`,
      );
    }
    await writer.stop();
    const v = await healthy(c, password);
    const cl = await connectTo(c, v.primary!, password);
    const present = new Set((await cl.query('SELECT n FROM seq')).rows.map((r: { n: string }) => Number(r.n)));
    await cl.end();
    acked = writer.acks.length;
    errors = writer.errors;
    lost = writer.acks.filter((x) => !present.has(x.n)).length;
  } catch (e) {
    for (const [id, node] of c.nodes) {
      process.stderr.write(
        `--- ${id}\n` +
          node.log
            .slice(-25)
            .map((l) => `    ${l.slice(0, 400)}`)
            .join('\n') +
          '\n',
      );
    }
    throw e;
  } finally {
    await c.destroy();
  }
  const s = sortNumbers(pauses);
  const summary = {
    mode: 'switchover',
    runs,
    p50_ms: round(percentile(s, 50), 0),
    p99_ms: round(percentile(s, 99), 0),
    max_ms: round(s[s.length - 1]!, 0),
    lost_acked_writes: lost,
    acked_writes: acked,
    writer_errors: errors,
    via,
    lease_ms: leaseMs,
    goal: { p50_ms: 300 },
    leader_measured_p50_ms: round(percentile(sortNumbers(reported), 50), 0),
    samples_ms: pauses.map((x) => round(x, 0)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return lost === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const argSpec = {
    options: {
      runs: { type: 'string', default: '20' },
      'lease-ms': { type: 'string', default: '1000' },
      mode: { type: 'string', default: 'failover' },
      via: { type: 'string', default: 'proxy' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  } satisfies ParseArgsConfig;
  let a: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    a = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`bench:failover: ${(e as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (a.mode !== 'failover' && a.mode !== 'switchover') return usage(`--mode must be failover or switchover, got '${a.mode}'`);
  const runs = Number(a.runs);
  const leaseMs = Number(a['lease-ms']);
  if (!Number.isInteger(runs) || runs < 1 || runs > 200) return usage(`--runs must be an integer from 1 to 200, got '${a.runs}'`);
  if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > 600_000)
    return usage(`--lease-ms must be an integer from 100 to 600000, got '${a['lease-ms']}'`);
  if (a.via !== 'proxy' && a.via !== 'direct') return usage(`--via must be proxy or direct, got '${a.via}'`);
  const via: Via = a.via;
  if (a.mode === 'switchover') return switchoverBench(runs, leaseMs, via);
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    results.push(await oneRun(leaseMs, via, (s) => process.stderr.write(`[bench:failover] run ${i + 1}/${runs}: ${s}\n`)));
  }
  const s = sortNumbers(results.map((r) => r.ms));
  const summary = {
    mode: 'failover',
    runs,
    p50_ms: round(percentile(s, 50), 0),
    p99_ms: round(percentile(s, 99), 0),
    max_ms: round(s[s.length - 1]!, 0),
    lost_acked_writes: results.reduce((x, r) => x + r.lost, 0),
    acked_writes: results.reduce((x, r) => x + r.acked, 0),
    writer_errors: results.reduce((x, r) => x + r.errors, 0),
    via,
    lease_ms: leaseMs,
    goal: { p50_ms: 1000, p99_ms: 2500 },
    patroni_default_ttl_s: 30,
    samples_ms: results.map((r) => round(r.ms, 0)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.lost_acked_writes === 0 ? 0 : 1;
}

function usage(msg: string): number {
  process.stderr.write(`bench:failover: ${msg}\n`);
  return 2;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench:failover: ${e.message}\n`);
    process.exit(1);
  },
);
