// Raft commit benchmark: our 3-node kv-server cluster against a 3-member etcd 3.4
// cluster, side by side in one run, plus leader failover time.
//
// Both clusters run as real processes on 127.0.0.1 with ephemeral ports and data
// under one fresh temp dir, and are driven identically: a closed loop of C clients
// (an undici Pool with C keep-alive connections, pipelining 1) putting 256-byte
// values to the leader. Ours: PUT /kv/KEY with the raw value. etcd: POST
// /v3/kv/put on its HTTP gateway with base64 JSON. Only one cluster runs at a time.
//
// Failover (ours only): SIGKILL the leader, then PUT to the survivors (following
// x-raft-leader hints) until one is acknowledged; restart the victim on its data
// dir and wait for it to catch up before the next run.
//
// Progress goes to stderr; the last stdout line is the JSON summary.
//
// Environment:
//   BENCH_RAFT_NODE_ARGS  extra node flags for every kv-server process, split on
//                         spaces (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")
//   BENCH_KEEP_TMP=1      keep the temp dir (data and process logs) afterwards
//   ETCD_BIN              etcd binary (default: etcd on PATH, then /usr/bin/etcd)

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Agent, Pool, request } from 'undici';
import { httpStatus, runClosedLoop, type LoadResult } from './bench/lib/load.js';
import { freePorts } from './bench/lib/ports.js';
import { findExecutable, installCleanup, ProcessGroup, ProcExitedError, type Proc } from './bench/lib/procs.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';

const HOST = '127.0.0.1';
const VALUE_BYTES = 256;
const KEYS_PER_CLIENT = 1000;
const READY_TIMEOUT_MS = 30_000;
const FAILOVER_GIVE_UP_MS = 30_000;
const FAILOVER_REQUEST_TIMEOUT_MS = 500;
const FAILOVER_BACKOFF_MS = 5;
const START_ATTEMPTS = 5;
const STOP_GRACE_MS = 2_000;

const HELP = `Usage: npm run bench:raft -- [options]
       node dist/scripts/bench-raft.js [options]

Benchmarks 3-node Raft commits (256 B puts, closed loop, to the leader) on our
kv-server cluster and, with --vs-etcd, on a 3-member etcd cluster in the same run;
then measures leader failover (SIGKILL the leader until a put is acknowledged).

Options:
  --vs-etcd               also benchmark etcd (needs the etcd binary: apt-get install etcd-server)
  --json                  print only the JSON summary on stdout (no table on stderr)
  --duration-ms N         measurement window per concurrency and system (default 5000)
  --warmup-ms N           warm-up before each window (default 500)
  --clients LIST          comma-separated concurrencies (default 1,16,128)
  --failover-runs N       leader failovers to measure, 0 to skip (default 20)
  --tick-ms N             kv-server Raft tick (default 20)
  -h, --help              this text

Environment: BENCH_RAFT_NODE_ARGS (extra node flags for kv-server processes, e.g.
"--cpu-prof --cpu-prof-dir=/tmp/prof"), BENCH_KEEP_TMP=1 (keep data and logs),
ETCD_BIN (etcd binary).

The JSON summary is printed last on stdout; progress goes to stderr.`;

// ------------------------------------------------------------------ arguments

interface Args {
  vsEtcd: boolean;
  json: boolean;
  durationMs: number;
  warmupMs: number;
  clients: number[];
  failoverRuns: number;
  tickMs: number;
}

class UsageError extends Error {}

function intArg(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`--${name} must be an integer >= ${min}, got '${raw}'`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${raw}'`);
  return n;
}

function parseCli(argv: string[]): Args | 'help' {
  const argSpec = {
    args: argv,
    options: {
      'vs-etcd': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '500' },
      clients: { type: 'string', default: '1,16,128' },
      'failover-runs': { type: 'string', default: '20' },
      'tick-ms': { type: 'string', default: '20' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  } satisfies ParseArgsConfig;
  let parsed: ReturnType<typeof parseArgs<typeof argSpec>>;
  try {
    parsed = parseArgs(argSpec);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const clientsRaw = v.clients ?? '';
  const parts = clientsRaw.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 4096)) {
    throw new UsageError(`--clients must be a comma-separated list of positive integers (at most 4096), got '${clientsRaw}'`);
  }
  return {
    vsEtcd: v['vs-etcd'] ?? false,
    json: v.json ?? false,
    durationMs: intArg('duration-ms', v['duration-ms'] ?? '', 1, 3_600_000),
    warmupMs: intArg('warmup-ms', v['warmup-ms'] ?? '', 0, 600_000),
    clients: parts.map(Number),
    failoverRuns: intArg('failover-runs', v['failover-runs'] ?? '', 0, 10_000),
    tickMs: intArg('tick-ms', v['tick-ms'] ?? '', 1, 10_000),
  };
}

// ------------------------------------------------------------------ small helpers

const startedAt = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[bench-raft ${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

/** Polls `probe` every intervalMs until it returns a value; throws after timeoutMs. */
async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof ProcExitedError || e instanceof FatalBenchError) throw e;
      lastError = e;
    }
    if (performance.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new FatalBenchError(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

class FatalBenchError extends Error {}

async function getJson(url: string, init: { method?: 'GET' | 'POST'; body?: string; timeoutMs?: number } = {}): Promise<unknown> {
  const { statusCode, body } = await request(url, {
    method: init.method ?? 'GET',
    ...(init.body !== undefined ? { body: init.body, headers: { 'content-type': 'application/json' } } : {}),
    signal: AbortSignal.timeout(init.timeoutMs ?? 1_000),
  });
  const text = await body.text();
  if (statusCode !== 200) throw new Error(`${url}: HTTP ${statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}

function rounded(r: LoadResult): Record<string, number | Record<string, number>> {
  return {
    ops_s: round(r.opsPerSec, 1),
    p50_ms: round(r.latency.p50_ms, 3),
    p99_ms: round(r.latency.p99_ms, 3),
    mean_ms: round(r.latency.mean_ms, 3),
    p999_ms: round(r.latency.p999_ms, 3),
    max_ms: round(r.latency.max_ms, 3),
    ops: r.ops,
    errors: r.errors,
    ...(Object.keys(r.errorKinds).length > 0 ? { error_kinds: r.errorKinds } : {}),
  };
}

function describe(r: LoadResult): string {
  const errs = r.errors > 0 || Object.keys(r.errorKinds).length > 0 ? ` errors=${r.errors} ${JSON.stringify(r.errorKinds)}` : ' errors=0';
  return `${r.opsPerSec.toFixed(0)} ops/s p50 ${r.latency.p50_ms.toFixed(2)} ms p99 ${r.latency.p99_ms.toFixed(2)} ms max ${r.latency.max_ms.toFixed(1)} ms${errs}`;
}

/** Every spawned process group shares this: a death we did not cause aborts the run. */
let unexpectedDeath: string | undefined;
function checkNoDeaths(): void {
  if (unexpectedDeath !== undefined) throw new FatalBenchError(unexpectedDeath);
}

// ------------------------------------------------------------------ our cluster

interface KvStatus {
  id: string;
  role: string;
  leader: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  leaderChanges?: number;
}

interface KvNode {
  id: string;
  httpPort: number;
  peerPort: number;
  dataDir: string;
  proc: Proc | undefined;
}

class OgelCluster {
  private constructor(
    private readonly group: ProcessGroup,
    private readonly serverJs: string,
    private readonly logDir: string,
    private readonly tickMs: number,
    private readonly secret: string,
    private readonly nodeArgs: string[],
    readonly nodes: KvNode[],
  ) {}

  /** Starts three nodes; on a port race (EADDRINUSE) starts over with new ports and dirs. */
  static async start(group: ProcessGroup, serverJs: string, baseDir: string, tickMs: number, nodeArgs: string[]): Promise<OgelCluster> {
    for (let attempt = 1; ; attempt++) {
      const dir = path.join(baseDir, `ogel-${attempt}`);
      const ports = await freePorts(6, HOST);
      const nodes: KvNode[] = [1, 2, 3].map((i) => ({
        id: `n${i}`,
        httpPort: ports[i - 1]!,
        peerPort: ports[i + 2]!,
        dataDir: path.join(dir, `n${i}`),
        proc: undefined,
      }));
      const c = new OgelCluster(group, serverJs, path.join(dir, 'logs'), tickMs, randomBytes(16).toString('hex'), nodeArgs, nodes);
      try {
        for (const n of nodes) c.spawn(n);
        await Promise.all(nodes.map((n) => n.proc!.waitForLine(/^ready /, READY_TIMEOUT_MS)));
        await c.waitAllAgree();
        return c;
      } catch (e) {
        const portRace = nodes.some((n) => n.proc && !n.proc.alive && n.proc.addrInUse());
        await Promise.all(nodes.map((n) => n.proc?.stop(STOP_GRACE_MS)));
        if (!portRace || attempt >= START_ATTEMPTS) throw e;
        progress(`ogel: a port was taken before a node could bind it; retrying with new ports (attempt ${attempt + 1})`);
      }
    }
  }

  private spawn(n: KvNode): Proc {
    const peers = this.nodes.map((m) => `${m.id}=${HOST}:${m.peerPort}`).join(',');
    n.proc = this.group.spawn({
      name: `ogel-${n.id}`,
      cmd: process.execPath,
      args: [
        ...this.nodeArgs,
        this.serverJs,
        '--id',
        n.id,
        '--data',
        n.dataDir,
        '--http',
        `${HOST}:${n.httpPort}`,
        '--peers',
        peers,
        '--secret',
        this.secret,
        '--tick-ms',
        String(this.tickMs),
      ],
      logDir: this.logDir,
    });
    return n.proc;
  }

  origin(n: KvNode): string {
    return `http://${HOST}:${n.httpPort}`;
  }

  async status(n: KvNode, timeoutMs = 1_000): Promise<KvStatus> {
    return (await getJson(`${this.origin(n)}/status`, { timeoutMs })) as KvStatus;
  }

  /** Statuses of the live nodes (a node that does not answer is left out). */
  async statuses(): Promise<Map<string, KvStatus>> {
    const out = new Map<string, KvStatus>();
    await Promise.all(
      this.nodes
        .filter((n) => n.proc?.alive)
        .map(async (n) => {
          try {
            out.set(n.id, await this.status(n));
          } catch {
            // not answering right now
          }
        }),
    );
    return out;
  }

  /** Until every node is up and all report the same leader, which reports itself leader, with commitIndex >= 2. */
  waitAllAgree(timeoutMs = READY_TIMEOUT_MS): Promise<KvNode> {
    return pollUntil('all three kv-server nodes to agree on a leader with commitIndex >= 2', timeoutMs, async () => {
      for (const n of this.nodes) if (n.proc && !n.proc.alive) throw new ProcExitedError(n.proc, n.proc.exitInfo!);
      const st = await this.statuses();
      if (st.size !== this.nodes.length) return undefined;
      const leaders = new Set([...st.values()].map((s) => s.leader));
      const [leader] = [...leaders];
      if (leaders.size !== 1 || !leader) return undefined;
      if (st.get(leader)?.role !== 'leader') return undefined;
      if ([...st.values()].some((s) => s.commitIndex < 2)) return undefined;
      return this.nodes.find((n) => n.id === leader);
    });
  }

  byId(id: string): KvNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  /** Restarts a dead node on the same id, ports and data dir; retries if its ports are briefly taken. */
  async restart(n: KvNode): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const p = this.spawn(n);
      try {
        await p.waitForLine(/^ready /, READY_TIMEOUT_MS);
        return;
      } catch (e) {
        if (!(e instanceof ProcExitedError && p.addrInUse()) || attempt >= 20) throw e;
        await sleep(100);
      }
    }
  }

  maxTerm(st: Map<string, KvStatus>): number {
    return Math.max(0, ...[...st.values()].map((s) => s.term));
  }
}

function kvServerPath(): string {
  // dist/scripts/bench-raft.js -> dist/raft/examples/kv-server.js
  const p = fileURLToPath(new URL('../raft/examples/kv-server.js', import.meta.url));
  if (!fs.existsSync(p)) throw new FatalBenchError(`kv-server not built: ${p} is missing (run npm run build)`);
  return p;
}

async function benchOgelLoad(cluster: OgelCluster, args: Args, value: Buffer): Promise<Map<number, { r: LoadResult; extra: Record<string, unknown> }>> {
  const out = new Map<number, { r: LoadResult; extra: Record<string, unknown> }>();
  for (const clients of args.clients) {
    checkNoDeaths();
    const leader = await cluster.waitAllAgree();
    const before = await cluster.statuses();
    progress(`ogel: ${clients} client(s) against leader ${leader.id}: warm-up ${args.warmupMs} ms, measure ${args.durationMs} ms`);
    const pool = new Pool(cluster.origin(leader), { connections: clients, pipelining: 1, keepAliveTimeout: 60_000 });
    let r: LoadResult;
    try {
      r = await runClosedLoop({
        clients,
        warmupMs: args.warmupMs,
        durationMs: args.durationMs,
        op: (c, seq) =>
          httpStatus(pool, {
            method: 'PUT',
            path: `/kv/key-${c}-${seq % KEYS_PER_CLIENT}`,
            body: value,
            headers: { 'content-type': 'application/octet-stream' },
          }),
      });
    } finally {
      await pool.close();
    }
    checkNoDeaths();
    const after = await cluster.statuses();
    const termChanges = cluster.maxTerm(after) - cluster.maxTerm(before);
    const leaderAfter = [...after.values()].find((s) => s.role === 'leader')?.id ?? '';
    progress(
      `ogel: ${clients} client(s): ${describe(r)}${termChanges > 0 ? `  !! term advanced by ${termChanges} during the run (leader now ${leaderAfter || 'unknown'})` : ''}`,
    );
    out.set(clients, { r, extra: { term_changes: termChanges, leader: leader.id } });
  }
  return out;
}

async function benchFailover(cluster: OgelCluster, runs: number, value: Buffer): Promise<number[]> {
  const samples: number[] = [];
  for (let run = 1; run <= runs; run++) {
    checkNoDeaths();
    const leader = await cluster.waitAllAgree();
    const survivors = cluster.nodes.filter((n) => n !== leader);
    const victim = leader.proc!;
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
    let okAt: number;
    let attempts = 0;
    let okNode = '';
    const t0 = performance.now();
    victim.signal('SIGKILL');
    try {
      let target = 0;
      for (;;) {
        if (performance.now() - t0 > FAILOVER_GIVE_UP_MS) {
          throw new FatalBenchError(
            `failover run ${run}: no put acknowledged by ${survivors.map((n) => n.id).join('/')} within ${FAILOVER_GIVE_UP_MS} ms of killing ${leader.id}`,
          );
        }
        const node = survivors[target]!;
        attempts++;
        let next = 1 - target;
        try {
          const { statusCode, headers, body } = await request(`${cluster.origin(node)}/kv/failover-${run}`, {
            method: 'PUT',
            body: value,
            dispatcher: agent,
            signal: AbortSignal.timeout(FAILOVER_REQUEST_TIMEOUT_MS),
          });
          await body.dump();
          if (statusCode >= 200 && statusCode <= 299) {
            okAt = performance.now();
            okNode = node.id;
            break;
          }
          const hint = headers['x-raft-leader'];
          const hinted = survivors.findIndex((n) => n.id === hint);
          if (statusCode === 421 && hinted >= 0 && hinted !== target) {
            target = hinted;
            continue; // a fresh hint to a live node: follow it at once
          }
          if (hinted === target) next = target;
        } catch {
          // timeout or connection error: try the other survivor
        }
        target = next;
        await sleep(FAILOVER_BACKOFF_MS);
      }
    } finally {
      await agent.close();
    }
    const ms = okAt - t0;
    samples.push(ms);
    progress(
      `failover ${run}/${runs}: killed leader ${leader.id} (pid ${victim.pid}); put acknowledged by ${okNode} after ${ms.toFixed(1)} ms (${attempts} attempts)`,
    );

    // Bring the victim back and let it catch up before the next run.
    await victim.exited;
    const t1 = performance.now();
    await cluster.restart(leader);
    const newLeader = cluster.byId(okNode)!;
    const target = (await cluster.status(newLeader)).commitIndex;
    await pollUntil(`${leader.id} to rejoin and apply up to ${target}`, READY_TIMEOUT_MS, async () => {
      if (!leader.proc!.alive) throw new ProcExitedError(leader.proc!, leader.proc!.exitInfo!);
      const s = await cluster.status(leader);
      return s.leader !== '' && s.leader !== leader.id && s.appliedIndex >= target ? s : undefined;
    });
    progress(`failover ${run}/${runs}: ${leader.id} restarted and caught up (applied >= ${target}) in ${(performance.now() - t1).toFixed(0)} ms`);
  }
  return samples;
}

// ------------------------------------------------------------------ etcd

interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc: Proc | undefined;
}

interface EtcdStatus {
  header?: { member_id?: string };
  leader?: string;
  version?: string;
}

class EtcdCluster {
  private constructor(readonly members: EtcdMember[]) {}

  static async start(group: ProcessGroup, etcdBin: string, baseDir: string): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      const dir = path.join(baseDir, `etcd-${attempt}`);
      const ports = await freePorts(6, HOST);
      const members: EtcdMember[] = [1, 2, 3].map((i) => ({
        name: `e${i}`,
        clientPort: ports[i - 1]!,
        peerPort: ports[i + 2]!,
        dataDir: path.join(dir, `e${i}`),
        proc: undefined,
      }));
      const initialCluster = members.map((m) => `${m.name}=http://${HOST}:${m.peerPort}`).join(',');
      const token = `ogel-bench-${randomBytes(6).toString('hex')}`;
      for (const m of members) {
        m.proc = group.spawn({
          name: `etcd-${m.name}`,
          cmd: etcdBin,
          args: [
            '--name',
            m.name,
            '--data-dir',
            m.dataDir,
            '--listen-client-urls',
            `http://${HOST}:${m.clientPort}`,
            '--advertise-client-urls',
            `http://${HOST}:${m.clientPort}`,
            '--listen-peer-urls',
            `http://${HOST}:${m.peerPort}`,
            '--initial-advertise-peer-urls',
            `http://${HOST}:${m.peerPort}`,
            '--initial-cluster',
            initialCluster,
            '--initial-cluster-token',
            token,
            '--initial-cluster-state',
            'new',
            '--logger',
            'zap',
            '--log-level',
            'error',
            '--log-outputs',
            'stderr',
          ],
          logDir: path.join(dir, 'logs'),
        });
      }
      const c = new EtcdCluster(members);
      try {
        await c.waitLeader();
        return c;
      } catch (e) {
        const portRace = members.some((m) => m.proc && !m.proc.alive && m.proc.addrInUse());
        await Promise.all(members.map((m) => m.proc?.stop(STOP_GRACE_MS)));
        if (!portRace || attempt >= START_ATTEMPTS) throw e;
        progress(`etcd: a port was taken before a member could bind it; retrying with new ports (attempt ${attempt + 1})`);
      }
    }
  }

  origin(m: EtcdMember): string {
    return `http://${HOST}:${m.clientPort}`;
  }

  status(m: EtcdMember): Promise<EtcdStatus> {
    return getJson(`${this.origin(m)}/v3/maintenance/status`, { method: 'POST', body: '{}' }) as Promise<EtcdStatus>;
  }

  /** Until all three members answer and agree on a leader; returns the leader's member. */
  waitLeader(timeoutMs = READY_TIMEOUT_MS): Promise<EtcdMember> {
    return pollUntil('all three etcd members to agree on a leader', timeoutMs, async () => {
      for (const m of this.members) if (m.proc && !m.proc.alive) throw new ProcExitedError(m.proc, m.proc.exitInfo!);
      const st = await Promise.all(this.members.map((m) => this.status(m).catch(() => undefined)));
      if (st.some((s) => s === undefined)) return undefined;
      const leaders = new Set(st.map((s) => s!.leader));
      const [leader] = [...leaders];
      if (leaders.size !== 1 || !leader || leader === '0') return undefined;
      const i = st.findIndex((s) => s!.header?.member_id === leader);
      return i >= 0 ? this.members[i] : undefined;
    });
  }
}

async function benchEtcd(group: ProcessGroup, etcdBin: string, baseDir: string, args: Args, value: Buffer): Promise<Map<number, LoadResult>> {
  progress(`etcd: starting a 3-member cluster (${etcdBin})`);
  const cluster = await EtcdCluster.start(group, etcdBin, baseDir);
  const valueB64 = value.toString('base64');
  const out = new Map<number, LoadResult>();
  try {
    // Readiness: one acknowledged put through the leader's gateway.
    await pollUntil('a first put to the etcd leader', READY_TIMEOUT_MS, async () => {
      const leader = await cluster.waitLeader();
      const body = JSON.stringify({ key: Buffer.from('ready').toString('base64'), value: valueB64 });
      await getJson(`${cluster.origin(leader)}/v3/kv/put`, { method: 'POST', body });
      return true;
    });
    progress('etcd: cluster ready');
    for (const clients of args.clients) {
      checkNoDeaths();
      const leader = await cluster.waitLeader();
      progress(`etcd: ${clients} client(s) against leader ${leader.name}: warm-up ${args.warmupMs} ms, measure ${args.durationMs} ms`);
      const pool = new Pool(cluster.origin(leader), { connections: clients, pipelining: 1, keepAliveTimeout: 60_000 });
      let r: LoadResult;
      try {
        r = await runClosedLoop({
          clients,
          warmupMs: args.warmupMs,
          durationMs: args.durationMs,
          op: (c, seq) =>
            httpStatus(pool, {
              method: 'POST',
              path: '/v3/kv/put',
              body: `{"key":"${Buffer.from(`key-${c}-${seq % KEYS_PER_CLIENT}`).toString('base64')}","value":"${valueB64}"}`,
              headers: { 'content-type': 'application/json' },
            }),
        });
      } finally {
        await pool.close();
      }
      checkNoDeaths();
      progress(`etcd: ${clients} client(s): ${describe(r)}`);
      out.set(clients, r);
    }
  } finally {
    progress('etcd: stopping the cluster');
    await Promise.all(cluster.members.map((m) => m.proc?.stop(STOP_GRACE_MS)));
  }
  return out;
}

/** Share of CPU time not idle over `sampleMs`, from /proc/stat (Linux); undefined elsewhere. */
async function cpuBusyPct(sampleMs: number): Promise<number | undefined> {
  const read = (): { idle: number; total: number } | undefined => {
    try {
      const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return undefined;
      return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
    } catch {
      return undefined;
    }
  };
  const a = read();
  if (!a) return undefined;
  await sleep(sampleMs);
  const b = read();
  if (!b || b.total === a.total) return undefined;
  return 100 * (1 - (b.idle - a.idle) / (b.total - a.total));
}

function etcdVersion(bin: string): string | undefined {
  try {
    const text = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    return /etcd Version:\s*(\S+)/.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ main

function table(results: Record<string, unknown>[], failover: Record<string, unknown>): string {
  const pad = (s: string, n: number): string => s.padStart(n);
  const cell = (x: unknown): string => {
    const o = x as { ops_s: number; p50_ms: number; p99_ms: number; errors: number } | undefined;
    return o ? `${pad(o.ops_s.toFixed(0), 8)} ${pad(o.p50_ms.toFixed(2), 8)} ${pad(o.p99_ms.toFixed(2), 8)} ${pad(String(o.errors), 5)}` : pad('-', 32);
  };
  const lines = [
    `${pad('clients', 7)} | ${pad('ogel ops/s', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('err', 5)} | ${pad('etcd ops/s', 8)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('err', 5)} | ratio`,
  ];
  for (const r of results) {
    lines.push(`${pad(String(r['clients']), 7)} | ${cell(r['ogel'])} | ${cell(r['etcd'])} | ${r['ratio_ops'] === undefined ? '-' : String(r['ratio_ops'])}`);
  }
  const f = failover as { runs: number; p50_ms: number | null; p99_ms: number | null; max_ms: number | null };
  lines.push(f.runs > 0 ? `leader failover: ${f.runs} runs, p50 ${f.p50_ms} ms, p99 ${f.p99_ms} ms, max ${f.max_ms} ms` : 'leader failover: skipped');
  return lines.join('\n');
}

async function main(): Promise<number> {
  let args: Args | 'help';
  try {
    args = parseCli(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench-raft: ${e.message}\nRun with --help for usage.\n`);
      return 2;
    }
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }

  let etcdBin: string | undefined;
  if (args.vsEtcd) {
    // An explicit ETCD_BIN is the only candidate: silently using another etcd would mislead.
    const wanted = process.env['ETCD_BIN'];
    etcdBin = wanted ? findExecutable(wanted) : (findExecutable('etcd') ?? findExecutable('/usr/bin/etcd'));
    if (!etcdBin) {
      process.stderr.write(
        `bench-raft: --vs-etcd needs etcd, but ${process.env['ETCD_BIN'] ? `ETCD_BIN=${process.env['ETCD_BIN']} is not executable` : 'no etcd binary is on PATH or at /usr/bin/etcd'}. ` +
          `Install it with: apt-get install etcd-server\n`,
      );
      return 1;
    }
  }
  const serverJs = kvServerPath();
  const nodeArgs = (process.env['BENCH_RAFT_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);
  const keepTmp = process.env['BENCH_KEEP_TMP'] === '1';

  // Other work on the machine skews every number here; say so up front.
  const loadStart = os.loadavg();
  const busyStart = await cpuBusyPct(1_000);
  if (busyStart !== undefined && busyStart > 20) {
    progress(`warning: the CPUs were ${busyStart.toFixed(0)}% busy before the benchmark started; other processes will skew the results`);
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ogel-bench-raft-'));
  let shuttingDown = false;
  const group = new ProcessGroup((p, info) => {
    if (shuttingDown) return; // e.g. a terminal's Ctrl-C reached the children too
    unexpectedDeath = `${p.name} (pid ${p.pid}) died unexpectedly (code ${info.code}, signal ${info.signal})`;
    process.stderr.write(`\n!! ${unexpectedDeath}\n${p.tail(40)}\n\n`);
  });
  const cleanup = installCleanup(
    async () => {
      shuttingDown = true;
      await group.stopAll(STOP_GRACE_MS);
      if (keepTmp) progress(`kept ${tmp} (BENCH_KEEP_TMP=1)`);
      else fs.rmSync(tmp, { recursive: true, force: true });
    },
    () => {
      group.killAllSync();
      if (!keepTmp) fs.rmSync(tmp, { recursive: true, force: true });
    },
  );

  try {
    const value = randomBytes(VALUE_BYTES);
    progress(
      `temp dir ${tmp}; clients ${args.clients.join(',')}; ${args.durationMs} ms per run after ${args.warmupMs} ms warm-up; ` +
        `${args.failoverRuns} failover runs${args.vsEtcd ? '; vs etcd' : ''}${nodeArgs.length ? `; node args ${nodeArgs.join(' ')}` : ''}`,
    );

    progress('ogel: starting a 3-node kv-server cluster');
    const ogel = await OgelCluster.start(group, serverJs, tmp, args.tickMs, nodeArgs);
    const leader0 = await ogel.waitAllAgree();
    progress(`ogel: cluster ready, leader ${leader0.id}`);
    const ogelResults = await benchOgelLoad(ogel, args, value);

    // Sanity: the last write of client 0 reads back with the right length.
    const check = await request(`${ogel.origin(await ogel.waitAllAgree())}/kv/key-0-0`, { signal: AbortSignal.timeout(2_000) });
    const got = Buffer.from(await check.body.arrayBuffer());
    if (check.statusCode !== 200 || got.length !== VALUE_BYTES) {
      progress(`!! read-back of key-0-0 gave HTTP ${check.statusCode} with ${got.length} bytes (expected 200 with ${VALUE_BYTES})`);
    }

    let failoverSamples: number[] = [];
    if (args.failoverRuns > 0) {
      progress(`ogel: leader failover, ${args.failoverRuns} runs`);
      failoverSamples = await benchFailover(ogel, args.failoverRuns, value);
    }
    const finalStatus = await ogel.statuses();
    progress('ogel: stopping the cluster');
    await Promise.all(ogel.nodes.map((n) => n.proc?.stop(STOP_GRACE_MS)));

    let etcdResults: Map<number, LoadResult> | undefined;
    if (etcdBin) etcdResults = await benchEtcd(group, etcdBin, tmp, args, value);

    const results = args.clients.map((clients) => {
      const o = ogelResults.get(clients)!;
      const e = etcdResults?.get(clients);
      return {
        clients,
        ogel: { ...rounded(o.r), ...o.extra },
        ...(e ? { etcd: rounded(e), ratio_ops: round(o.r.opsPerSec / e.opsPerSec, 2) } : {}),
      };
    });
    const sorted = sortNumbers(failoverSamples);
    const leader_failover = {
      runs: failoverSamples.length,
      p50_ms: sorted.length ? round(percentile(sorted, 50), 1) : null,
      p99_ms: sorted.length ? round(percentile(sorted, 99), 1) : null,
      max_ms: sorted.length ? round(sorted[sorted.length - 1]!, 1) : null,
      min_ms: sorted.length ? round(sorted[0]!, 1) : null,
      samples_ms: failoverSamples.map((x) => round(x, 1)),
    };
    const summary = {
      results,
      leader_failover,
      config: {
        duration_ms: args.durationMs,
        warmup_ms: args.warmupMs,
        value_bytes: VALUE_BYTES,
        keys_per_client: KEYS_PER_CLIENT,
        tick_ms: args.tickMs,
        node_args: nodeArgs,
      },
      machine: {
        cpus: os.cpus().length,
        cpu_model: os.cpus()[0]?.model ?? 'unknown',
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        ...(etcdBin ? { etcd_version: etcdVersion(etcdBin) ?? 'unknown' } : {}),
        ...(busyStart !== undefined ? { cpu_busy_pct_before: round(busyStart, 1) } : {}),
        loadavg_start: loadStart.map((x) => round(x, 2)),
        loadavg_end: os.loadavg().map((x) => round(x, 2)),
      },
      ogel_final_status: Object.fromEntries(
        [...finalStatus].map(([id, s]) => [id, { term: s.term, commitIndex: s.commitIndex, leaderChanges: s.leaderChanges }]),
      ),
      unexpected_exits: group.unexpected,
      run_time_s: round((performance.now() - startedAt) / 1000, 1),
    };
    if (!args.json) process.stderr.write(`\n${table(results, leader_failover)}\n\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`bench-raft: ${e instanceof Error ? e.message : String(e)}\n`);
    if (!(e instanceof FatalBenchError || e instanceof ProcExitedError) && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench-raft: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
