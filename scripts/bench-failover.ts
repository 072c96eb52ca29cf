// npm run bench:failover -- [--runs 20] [--lease-ms 1000] [--mode failover|switchover] [--json]
// Failover of real ogel daemons and Postgres 17: a writer inserts sequence numbers
// into the primary and records which were acknowledged; the primary's daemon is
// killed with -9 (its Postgres goes with it: the death guard); the time from the
// kill to the first acknowledged write on the new primary is measured, and every
// acknowledged number must be there. Each failover run uses a fresh cluster, so
// every run starts from the same state.
// --mode switchover: one cluster, `ogel switchover` N times while the writer
// runs; the write pause is the gap between the last write acknowledged by the
// old primary and the first one acknowledged by the new primary.
// The writer talks to Postgres directly (the proxy is not built yet). The JSON
// summary is printed last:
// {"mode":"failover","runs":20,"p50_ms":0,"p99_ms":0,"max_ms":0,"lost_acked_writes":0}

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { adminPassword } from '../src/postgres/agent.js';
import { DaemonCluster } from '../test/helpers/daemons.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';

const HELP = `Usage: npm run bench:failover -- [--runs N] [--lease-ms MS] [--json]

Measures automatic failover: N times (default 20), a fresh 3-node cluster of ogel
daemons with Postgres 17, a writer inserting sequence numbers, kill -9 of the
primary's daemon, and the time until a write is acknowledged by the new primary.
Every acknowledged write must survive. --lease-ms sets postgres.leaseMs (default
1000).

--mode switchover: one cluster, N planned switchovers (ogel switchover) while a
writer inserts continuously, trying each node in turn when its primary refuses
(as a client with a multi-host connection string would). Measures the write
pause: from the last write acknowledged by the old primary to the first one
acknowledged by the new primary. Every acknowledged write must survive.`;

/** A client of node `node`'s Postgres as the admin user (errors after connect fail the next query). */
async function connectTo(c: DaemonCluster, node: string, password: string): Promise<pg.Client> {
  const cl = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(node)!.postgresPort, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 1_000 });
  cl.on('error', () => {});
  await cl.connect();
  return cl;
}

interface Run {
  ms: number;
  acked: number;
  lost: number;
  from: string;
  to: string;
}

async function oneRun(leaseMs: number, log: (s: string) => void): Promise<Run> {
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `postgres:\n  leaseMs: ${leaseMs}\n`);
  try {
    const password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
    type View = { primary: string | null; generation: number; nodes: Record<string, { reportedRole: string }> };
    const view = async (): Promise<View | undefined> => {
      try {
        const leader = await c.waitForLeader(2_000);
        return ((await c.get(leader, '/v1/status')).body as { postgres: View }).postgres;
      } catch {
        return undefined;
      }
    };
    let v: View | undefined;
    await c.waitFor(async () => {
      v = await view();
      return v !== undefined && v.primary !== null && Object.values(v.nodes).filter((n) => n.reportedRole === 'standby').length === 2;
    }, 'a primary and two standbys', 60_000);
    const old = v!.primary!;
    const connect = (node: string) => connectTo(c, node, password);
    const w = await connect(old);
    await w.query('CREATE TABLE seq (n bigint primary key)');
    const acked: number[] = [];
    let n = 0;
    // Write for a moment so the kill lands in the middle of a stream of commits.
    const writing = (async () => {
      for (;;) {
        const next = ++n;
        try {
          await w.query('INSERT INTO seq VALUES ($1)', [next]);
          acked.push(next);
        } catch {
          return; // the primary died: that insert's outcome is unknown (not counted)
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await c.kill9(old);
    await writing;
    // Find the new primary and keep trying a write until one is acknowledged.
    let to = '';
    // Each attempt writes its own value: an attempt can commit and still fail on the
    // client (its session ended), and retrying the same key would then never succeed.
    let attempt = 0;
    for (;;) {
      if (performance.now() - t0 > 60_000) throw new Error('no new primary accepted a write within 60 s');
      const cur = await view();
      if (cur?.primary && cur.primary !== old && cur.generation > v!.generation) {
        try {
          const cl = await connect(cur.primary);
          try {
            await cl.query('INSERT INTO seq VALUES ($1)', [-++attempt]);
            to = cur.primary;
            break;
          } finally {
            await cl.end().catch(() => {});
          }
        } catch {
          /* not writable yet (read-only until its first lease renewal commits) */
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = performance.now() - t0;
    const check = await connect(to);
    const present = new Set((await check.query('SELECT n FROM seq')).rows.map((r: { n: string }) => Number(r.n)));
    await check.end();
    const lost = acked.filter((x) => !present.has(x)).length;
    log(`${old} -> ${to} in ${ms.toFixed(0)} ms; ${acked.length} acknowledged writes, ${lost} lost`);
    return { ms, acked: acked.length, lost, from: old, to };
  } catch (e) {
    // Evidence before the cluster is removed: the Postgres view and each node's last log lines.
    for (const [id, node] of c.nodes) {
      const st = await c.get(id, '/v1/status?stale=true').catch(() => undefined);
      process.stderr.write(`--- ${id}: ${JSON.stringify((st?.body as { postgres?: unknown } | undefined)?.postgres ?? null).slice(0, 1500)}\n`);
      process.stderr.write(node.log.slice(-25).map((l) => `    ${l.slice(0, 400)}`).join('\n') + '\n');
    }
    throw e;
  } finally {
    await c.destroy();
  }
}

async function main(): Promise<number> {
  let a;
  try {
    a = parseArgs({
      options: {
        runs: { type: 'string', default: '20' },
        'lease-ms': { type: 'string', default: '1000' },
        mode: { type: 'string', default: 'failover' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
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
  if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > 600_000) return usage(`--lease-ms must be an integer from 100 to 600000, got '${a['lease-ms']}'`);
  if (a.mode === 'switchover') return switchoverBench(runs, leaseMs);
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    results.push(await oneRun(leaseMs, (s) => process.stderr.write(`[bench:failover] run ${i + 1}/${runs}: ${s}\n`)));
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
    lease_ms: leaseMs,
    goal: { p50_ms: 1000, p99_ms: 2500 },
    patroni_default_ttl_s: 30,
    samples_ms: results.map((r) => round(r.ms, 0)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.lost_acked_writes === 0 ? 0 : 1;
}

/**
 * A writer that keeps inserting sequence numbers into whichever node takes them:
 * on an error it tries every node in turn, as a client with a multi-host
 * connection string and target_session_attrs=read-write would.
 */
class SeqWriter {
  readonly acks: { n: number; node: string; at: number }[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;
  private next = 0;

  constructor(private readonly c: DaemonCluster, private readonly password: string) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private connect(node: string): Promise<pg.Client> {
    return connectTo(this.c, node, this.password);
  }

  private async loop(): Promise<void> {
    const ids = [...this.c.nodes.keys()];
    let i = 0;
    let client: { node: string; cl: pg.Client } | undefined;
    while (!this.stopped) {
      try {
        if (!client) {
          const node = ids[i++ % ids.length]!;
          client = { node, cl: await this.connect(node) };
        }
        // Each attempt its own value: a failed attempt may still have committed.
        const n = ++this.next;
        await client.cl.query('INSERT INTO seq VALUES ($1)', [n]);
        this.acks.push({ n, node: client.node, at: performance.now() });
      } catch {
        await client?.cl.end().catch(() => {});
        client = undefined;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    await client?.cl.end().catch(() => {});
  }
}

async function switchoverBench(runs: number, leaseMs: number): Promise<number> {
  const log = (s: string) => process.stderr.write(`[bench:failover] ${s}\n`);
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `postgres:\n  leaseMs: ${leaseMs}\n`);
  const pauses: number[] = [];
  const reported: number[] = [];
  let lost = 0;
  let acked = 0;
  try {
    const password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
    type View = { primary: string | null; generation: number; lease: { renewalSeq: number } | null; nodes: Record<string, { reportedRole: string; role: string }> };
    const view = async (): Promise<View | undefined> => {
      try {
        const leader = await c.waitForLeader(2_000);
        return ((await c.get(leader, '/v1/status')).body as { postgres: View }).postgres;
      } catch {
        return undefined;
      }
    };
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
    // Healthy: a primary with a renewed lease and both others streaming from it.
    const healthy = async (): Promise<View> => {
      let v: View | undefined;
      await c.waitFor(async () => {
        v = await view();
        return v !== undefined && v.primary !== null && (v.lease?.renewalSeq ?? 0) >= 1 && Object.values(v.nodes).every((n) => n.role !== 'recloning' && n.role !== 'fenced') && (await streaming(v.primary)) === 2;
      }, 'a primary with two streaming standbys', 120_000);
      return v!;
    };
    const v0 = await healthy();
    {
      const cl = await connectTo(c, v0.primary!, password);
      await cl.query('CREATE TABLE seq (n bigint primary key)');
      await cl.end();
    }
    const writer = new SeqWriter(c, password);
    writer.start();
    for (let i = 0; i < runs; i++) {
      const v = await healthy();
      const from = v.primary!;
      await new Promise((r) => setTimeout(r, 300)); // a stream of commits before the switchover
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
      log(`run ${i + 1}/${runs}: ${res.from} -> ${res.to}: client-seen write pause ${pause.toFixed(0)} ms (leader-measured ${res.pauseMs} ms; old primary: ${['readOnlyMs', 'catchUpMs', 'shutdownMs', 'releaseMs'].map((k) => `${k} ${String(res.stepDown?.[k])}`).join(', ')})`);
    }
    await writer.stop();
    const v = await healthy();
    const cl = await connectTo(c, v.primary!, password);
    const present = new Set((await cl.query('SELECT n FROM seq')).rows.map((r: { n: string }) => Number(r.n)));
    await cl.end();
    acked = writer.acks.length;
    lost = writer.acks.filter((x) => !present.has(x.n)).length;
  } catch (e) {
    for (const [id, node] of c.nodes) {
      process.stderr.write(`--- ${id}\n` + node.log.slice(-25).map((l) => `    ${l.slice(0, 400)}`).join('\n') + '\n');
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
    lease_ms: leaseMs,
    goal: { p50_ms: 300 },
    leader_measured_p50_ms: round(percentile(sortNumbers(reported), 50), 0),
    samples_ms: pauses.map((x) => round(x, 0)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return lost === 0 ? 0 : 1;
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
