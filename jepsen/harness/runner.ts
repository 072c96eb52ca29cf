// One Jepsen run, inside the run's private network namespace: start the cluster,
// run the workload's clients while the nemeses follow their seeded plan, heal
// everything, wait (bounded) until the cluster is fully healthy again, do the
// final reads, check the history, write the run folder.
//
// Run folder (<out>/<timestamp>-<workload>-<seed>/):
//   history.jsonl   every operation: invoke, then ok / fail / info (jepsen/history)
//   faults.json     every fault: what, when (the history's clock), its healing
//   results.json    the verdict, anomalies, counts, timings, the options to replay it
//                   (and `archive`: the WAL archive checker's view of the store)
//   report.html     a timeline of operations and faults, and a latency plot
//   logs/<id>.log   each daemon's output (its Postgres's lines included), all restarts
//   logs/harness.log  what the harness did, when

import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { seededRandom } from '../../raft/sim/prng.js';
import { formatLsn } from '../../fsm/index.js';
import { check, mergeValidity, type CheckOptions, type CheckReport } from '../checkers/index.js';
import { HistoryRecorder, writeAvailability } from '../history/index.js';
import type { UnsafeSwitch } from '../../src/postgres/unsafe-switches.js';
import { nemesis, type Nemesis, type NemesisContext, type NemesisName } from '../nemesis/index.js';
import { DEFAULT_SCHEDULE, FaultRunner, planFaults, type FaultRecord, type PlannedFault, type ScheduleOptions } from '../nemesis/scheduler.js';
import { accountFaults, faultsVerdict } from '../nemesis/accounting.js';
import { makeWorkload, type WorkloadName } from '../workloads/index.js';
import { HostCgroups } from './cgroups.js';
import { Clients, dropClient } from './clients.js';
import { findFaketimeLib, HOSTS, IDS, JepsenCluster } from './cluster.js';
import { Firewall } from './firewall.js';
import { assertPrivateNetns, loopbackUp, processesInThisNetns } from './netns.js';
import { SlowLinks } from './relay.js';
import { fsRunStore, s3RunStore, type RunStore } from './store.js';
import { archiveStart, awaitArchive } from './archive-watch.js';
import { clusterPrefix } from '../../src/backup/layout.js';
import { loadConfig } from '../../src/config/index.js';
import type { ArchiveObservation } from '../checkers/archive.js';
import type { History } from '../history/types.js';
import { writeReport } from './report.js';
import { describeGap, gapTimeline, readNodeLog } from './gap-timeline.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunOptions {
  workload: WorkloadName;
  nemeses: NemesisName[];
  timeS: number;
  seed: number;
  concurrency?: number;
  rate?: number;
  opTimeoutMs: number;
  leaseMs: number;
  /** Bound on "fully healthy again" after the final heal. */
  recoveryTimeoutMs: number;
  outDir: string;
  schedule: ScheduleOptions;
  /** Progress lines on stderr. */
  verbose: boolean;
  /** Safety steps turned off in the daemons on purpose (src/postgres/unsafe-switches.ts): the run should then find anomalies. */
  unsafe: UnsafeSwitch[];
  /** Bound on the WAL archive catching up after the recovery (the archive checker). */
  archiveCatchUpMs: number;
}

export const DEFAULT_RUN: Omit<RunOptions, 'workload' | 'nemeses' | 'seed'> = {
  timeS: 60,
  opTimeoutMs: 5_000,
  leaseMs: 1_000,
  recoveryTimeoutMs: 60_000,
  outDir: 'jepsen-runs',
  schedule: DEFAULT_SCHEDULE,
  verbose: true,
  unsafe: [],
  archiveCatchUpMs: 30_000,
};

/** The operations that write, for write_unavailable_ms. */
const WRITE_FS: ReadonlySet<string> = new Set(['write', 'cas', 'add', 'transfer']);

const SETUP_TIMEOUT_MS = 60_000;
const FINAL_OPS_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 2_000;
const CLEANUP_WAIT_MS = 10_000;
/** Bound on the archive's first upload showing in the store before the workload starts. */
const ARCHIVE_START_TIMEOUT_MS = 15_000;

/** The line printed last (and results.json's head). */
export interface Summary {
  valid: boolean | 'unknown';
  workload: WorkloadName;
  nemesis: NemesisName[];
  seed: number;
  ops: number;
  ok: number;
  fail: number;
  info: number;
  /** Faults injected, and planned (nemesis/accounting.ts: a run is valid only if all planned were injected). */
  faults: number;
  faults_planned: number;
  anomalies: unknown[];
  recovery_ms: number | null;
  /** The longest stretch of the workload with no write acknowledged (history/availability.ts). */
  write_unavailable_ms: number | null;
  /** The WAL archive after the run (checkers/archive.ts); null when it could not be judged. */
  archive: ArchiveSummary | null;
  /** Present when the daemons ran with unsafe switches. */
  unsafe?: UnsafeSwitch[];
  dir: string;
  error?: string;
}

export interface ArchiveSummary {
  valid: boolean;
  store: 'fs' | 's3';
  /** From the flush position read to the archive holding it in one span; null if it never did. */
  caught_up_ms: number | null;
  /** The final primary's timeline (above 1: the archive was followed across failovers). */
  timeline: number;
  /** Archived spans along the final timeline's path (1 when there is no gap). */
  spans: number;
  archived_to: string | null;
  flush_lsn: string;
}

function runDirName(o: RunOptions): string {
  const ts = new Date().toISOString().replace(/[:.]/g, '-');
  return `${ts}-${o.workload}-${o.seed}`;
}

export async function run(o: RunOptions): Promise<Summary> {
  const dir = resolve(o.outDir, runDirName(o));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const harnessLog = createWriteStream(join(dir, 'logs', 'harness.log'));
  const wall0 = performance.now();
  const log = (msg: string) => {
    const line = `[${((performance.now() - wall0) / 1000).toFixed(3)} s] ${msg}`;
    harnessLog.write(`${line}\n`);
    if (o.verbose) process.stderr.write(`jepsen ${line}\n`);
  };
  const summary: Summary = {
    valid: 'unknown',
    workload: o.workload,
    nemesis: o.nemeses,
    seed: o.seed,
    ops: 0,
    ok: 0,
    fail: 0,
    info: 0,
    faults: 0,
    faults_planned: 0,
    anomalies: [],
    recovery_ms: null,
    write_unavailable_ms: null,
    archive: null,
    dir,
    ...(o.unsafe.length > 0 ? { unsafe: o.unsafe } : {}),
  };
  const cleanups: (() => Promise<void>)[] = [];
  try {
    await runIn(o, dir, log, summary, cleanups);
  } catch (e) {
    summary.valid = 'unknown';
    summary.error = (e as Error).message;
    log(`run failed: ${(e as Error).stack ?? (e as Error).message}`);
  } finally {
    for (const c of cleanups.reverse()) {
      await c().catch((e: Error) => {
        log(`cleanup: ${e.message}`);
        summary.error ??= `cleanup: ${e.message}`;
      });
    }
    log('done');
    await new Promise<void>((r) => harnessLog.end(() => r()));
  }
  return summary;
}

async function runIn(o: RunOptions, dir: string, log: (m: string) => void, summary: Summary, cleanups: (() => Promise<void>)[]): Promise<void> {
  const workload = makeWorkload(o.workload);
  const nemeses = new Map<NemesisName, Nemesis>(o.nemeses.map((n) => [n, nemesis(n)]));
  const needs = (k: 'fakeClock' | 'relays' | 'store') => [...nemeses.values()].some((n) => n.needs?.[k] === true);
  const concurrency = o.concurrency ?? workload.defaultConcurrency;
  const rate = o.rate ?? workload.defaultRate;
  const plan = planFaults(o.seed, o.nemeses, o.timeS * 1000, o.schedule);
  const options = { ...o, concurrency, rate, plan };
  writeFileSync(join(dir, 'options.json'), `${JSON.stringify(options, null, 2)}\n`);

  assertPrivateNetns();
  await loopbackUp();
  const cg = HostCgroups.create(IDS);
  const cgroups = typeof cg === 'string' ? undefined : cg;
  if (typeof cg === 'string') log(`no per-host cgroups (${cg}): partitions cut by address only; see jepsen/harness/firewall.ts`);
  if (cgroups !== undefined) {
    cleanups.push(async () => {
      const left = cgroups.destroy();
      if (left.length > 0) throw new Error(`cgroups left: ${left.join('; ')}`);
    });
  }
  let faketimeLib: string | undefined;
  if (needs('fakeClock')) {
    faketimeLib = findFaketimeLib();
    if (faketimeLib === undefined) throw new Error('clock-skew needs libfaketime (apt-get install -y faketime)');
  }
  if (needs('relays') && cgroups === undefined)
    throw new Error('slow-link needs per-host cgroups (a writable cgroup2 hierarchy) to know whose connection to relay');

  // Connection marks before any daemon runs (see firewall.ts); the addresses are known before the cluster is made.
  const firewall = new Firewall(new Map(IDS.map((id) => [id, { id, host: HOSTS[id]!, postgresPort: 0 }])), cgroups);
  await firewall.markConnections();
  const store: RunStore = needs('store') ? await s3RunStore() : fsRunStore();
  cleanups.push(() => store.close());
  const cluster = await JepsenCluster.create({
    logDir: join(dir, 'logs'),
    leaseMs: o.leaseMs,
    unsafe: o.unsafe,
    cgroups,
    storageYaml: store.configYaml,
    log,
    ...(faketimeLib !== undefined ? { faketimeLib } : {}),
  });
  cleanups.push(async () => {
    log('stopping the cluster');
    await cluster.destroy();
    await store.close(); // s3rver is a process of this namespace too
    await waitNoProcessesLeft(log);
  });
  firewall.setPostgresPorts(new Map(IDS.map((id) => [id, cluster.node(id).postgresPort])));
  cleanups.push(async () => void (await firewall.healAll()));
  let slowLinks: SlowLinks | undefined;
  if (needs('relays')) {
    slowLinks = await SlowLinks.create(
      IDS.map((id) => {
        const n = cluster.node(id);
        return { id, host: n.host, ports: [n.raftPort, n.apiPort, n.postgresPort] };
      }),
      cgroups!,
      seededRandom(o.seed ^ 0x51_0e),
    );
    cleanups.push(() => slowLinks!.close());
  }
  log(
    `run folder ${dir}; partitions by ${firewall.mode}; object store ${store.description}; workload ${o.workload} (${concurrency} clients, ${rate} ops/s); nemeses ${o.nemeses.join(',') || 'none'}; ${plan.length} faults planned`,
  );

  // ---- a healthy cluster, the workload's tables
  await cluster.startAll();
  log('daemons up');
  await cluster.createProbeTable(SETUP_TIMEOUT_MS);
  const setupMs = await cluster.waitHealthy(SETUP_TIMEOUT_MS);
  log(`cluster healthy (${Math.round(setupMs)} ms after the probe table)`);
  await setupWorkload(cluster, workload, log);
  const archiveStore = store.reader(cluster.c.dir);
  const prefix = clusterPrefix(loadConfig(cluster.c.configPath));
  const archiveFrom = await archiveStart(archiveStore, prefix, ARCHIVE_START_TIMEOUT_MS);
  log(archiveFrom === null ? 'the WAL archive shows nothing yet' : `the WAL archive begins at ${formatLsn(archiveFrom)}`);

  // ---- the run
  const t0 = performance.now();
  const wallAtZeroMs = Date.now();
  const clock = () => performance.now() - t0;
  const history = new HistoryRecorder({ clockMs: clock });
  const byAddress = new Map(IDS.map((id) => [HOSTS[id]!, id]));
  const notes = new Map<string, number>();
  const runCtx = {
    nodeOfAddress: (a: string) => byAddress.get(a),
    opTimeoutMs: o.opTimeoutMs,
    note: (m: string) => {
      const n = (notes.get(m) ?? 0) + 1;
      notes.set(m, n);
      if (n === 1) log(`note: ${m}`);
    },
  };
  const clients = new Clients(
    cluster,
    workload,
    history,
    { concurrency, rate, opTimeoutMs: o.opTimeoutMs, connectTimeoutMs: CONNECT_TIMEOUT_MS, seed: o.seed },
    runCtx,
  );
  const nctx: NemesisContext = { cluster, firewall, slowLinks, storeLink: store.link, log };
  const faults = new FaultRunner(plan, nemeses, nctx, clock);
  clients.start();
  faults.start();
  log(`workload running for ${o.timeS} s`);
  await sleep(o.timeS * 1000);

  // ---- heal everything, then judge recovery
  await faults.stop();
  await healEverything(cluster, firewall, slowLinks, store, log);
  const healedMs = clock();
  log('healed; stopping clients');
  await clients.stop();
  let recoveryMs: number | null = null;
  const harnessAnomalies: unknown[] = [];
  try {
    await cluster.waitHealthy(o.recoveryTimeoutMs);
    recoveryMs = Math.round(clock() - healedMs);
    log(`fully healthy ${recoveryMs} ms after the final heal`);
  } catch (e) {
    harnessAnomalies.push({
      type: 'not-recovered',
      message: `the cluster did not become fully healthy within ${o.recoveryTimeoutMs} ms of the final heal: ${(e as Error).message}`,
      boundMs: o.recoveryTimeoutMs,
    });
    log((e as Error).message);
  }
  const finalOk = await clients.runFinal(workload.finalOps(), 1_000_000, FINAL_OPS_TIMEOUT_MS);
  if (!finalOk) harnessAnomalies.push({ type: 'final-read-failed', message: `a final read did not succeed within ${FINAL_OPS_TIMEOUT_MS} ms` });
  const events = history.snapshot();
  await history.writeJsonl(join(dir, 'history.jsonl'));

  // ---- the WAL archive: caught up with no gap (checkers/archive.ts), bounded
  const archive = await awaitArchive(cluster, {
    store: archiveStore,
    prefix,
    storeLabel: store.kind,
    startLsn: archiveFrom,
    boundMs: o.archiveCatchUpMs,
    log,
  });
  if (typeof archive === 'string') log(`archive: not judged: ${archive}`);

  // ---- the verdict
  judge({
    o,
    dir,
    log,
    summary,
    workload: workload.name,
    checkOptions: workload.checkOptions(),
    events,
    records: faults.faults,
    plan,
    harnessAnomalies,
    recoveryMs,
    archive,
    storeKind: store.kind,
    wallAtZeroMs,
    runMs: clock(),
    concurrency,
    extra: { clients: clients.stats, notes: Object.fromEntries(notes), partitionsBy: firewall.mode, objectStore: store.description, options },
  });
}

interface Judge {
  o: RunOptions;
  dir: string;
  log: (m: string) => void;
  summary: Summary;
  workload: WorkloadName;
  checkOptions: CheckOptions;
  events: History;
  records: FaultRecord[];
  plan: PlannedFault[];
  harnessAnomalies: unknown[];
  recoveryMs: number | null;
  archive: ArchiveObservation | string;
  storeKind: RunStore['kind'];
  wallAtZeroMs: number;
  runMs: number;
  concurrency: number;
  /** More of results.json. */
  extra: Record<string, unknown>;
}

/** Checks the history and the archive, compares faults with the plan, fills the summary, writes faults.json, results.json and report.html. */
function judge(j: Judge): void {
  const { o, dir, log, summary, events, records, harnessAnomalies } = j;
  const archive = typeof j.archive === 'string' ? undefined : j.archive;
  let report: CheckReport;
  try {
    report = check(j.workload, events, { ...j.checkOptions, ...(archive !== undefined ? { archive } : {}) });
  } catch (e) {
    throw new Error(`the checker failed: ${(e as Error).stack ?? (e as Error).message}`);
  }
  writeFileSync(join(dir, 'faults.json'), `${JSON.stringify(records, null, 2)}\n`);
  // not-recovered and final-read-failed are proven failures of the cluster: false.
  const harnessFailed = harnessAnomalies.length > 0;
  // Planned vs injected: a run that did not inject its planned faults did not test
  // what it claims; nothing was proven wrong, so 'unknown' (nemesis/accounting.ts).
  const faultAccount = accountFaults(o.nemeses, j.plan, records);
  const faultCheck = faultsVerdict(faultAccount);
  if (faultCheck.anomaly !== undefined) {
    harnessAnomalies.push(faultCheck.anomaly);
    log(faultCheck.anomaly.message);
  }
  // An archive that could not be looked at was not shown to be fine: 'unknown'.
  if (typeof j.archive === 'string') harnessAnomalies.push({ type: 'archive-not-judged', message: `the WAL archive was not judged: ${j.archive}` });
  summary.valid = mergeValidity([report.valid, faultCheck.valid, !harnessFailed, typeof j.archive === 'string' ? 'unknown' : true]);
  summary.ops = report.stats.history.ops;
  summary.ok = report.stats.history.ok;
  summary.fail = report.stats.history.fail;
  summary.info = report.stats.history.info;
  summary.faults = faultAccount.injected;
  summary.faults_planned = faultAccount.planned;
  summary.anomalies = [...report.anomalies, ...harnessAnomalies];
  summary.recovery_ms = j.recoveryMs;
  const a = report.stats.archive;
  summary.archive =
    a === undefined
      ? null
      : {
          valid: a.caughtUp && !report.anomalies.some((x) => x.type === 'archive-gap'),
          store: j.storeKind,
          caught_up_ms: a.caughtUp ? a.waitedMs : null,
          timeline: a.timeline,
          spans: a.spans.length,
          archived_to: a.archivedToLsn,
          flush_lsn: a.flushLsn,
        };
  const gap = writeAvailability(events, WRITE_FS);
  summary.write_unavailable_ms = gap.longestGapMs;
  // Where that time went (gap-timeline.ts): faults, the daemons' failover steps, what clients got.
  const writeGap =
    gap.fromMs === null || gap.toMs === null
      ? null
      : gapTimeline({
          fromMs: gap.fromMs,
          toMs: gap.toMs,
          history: events,
          writeFs: WRITE_FS,
          faults: records,
          logs: IDS.flatMap((id) => readNodeLog(join(dir, 'logs', `${id}.log`), id)),
          wallAtZeroMs: j.wallAtZeroMs,
        });
  if (writeGap !== null) for (const line of describeGap(writeGap)) log(line);
  const results = {
    ...summary,
    recoveryBoundMs: o.recoveryTimeoutMs,
    checker: report.stats,
    faultsByNemesis: faultAccount.byNemesis,
    faultsDetail: records,
    writeGap,
    ...j.extra,
  };
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeReport(join(dir, 'report.html'), { summary, events, faults: records, runMs: j.runMs, concurrency: j.concurrency });
  log(
    `checked: valid ${String(summary.valid)}, ${summary.anomalies.length} anomalies, ${summary.ops} ops (${summary.ok} ok, ${summary.fail} fail, ${summary.info} info), ${summary.faults}/${summary.faults_planned} faults injected/planned`,
  );
}

async function setupWorkload(cluster: JepsenCluster, workload: ReturnType<typeof makeWorkload>, log: (m: string) => void): Promise<void> {
  const deadline = performance.now() + SETUP_TIMEOUT_MS;
  for (let i = 0; ; i++) {
    const id = IDS[i % IDS.length]!;
    const client = new pg.Client(cluster.proxyConfig(id, { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: 10_000 }));
    client.on('error', () => {});
    try {
      await client.connect();
      await workload.setup(client);
      log(`workload ${workload.name}: tables ready`);
      return;
    } catch (e) {
      if (performance.now() > deadline) throw new Error(`workload setup failed: ${(e as Error).message}`);
    } finally {
      dropClient(client);
    }
    await sleep(200);
  }
}

/** Undoes every fault whatever the nemeses did or failed to do: the store link, rules, delays, clocks, paused and dead daemons. */
async function healEverything(
  cluster: JepsenCluster,
  firewall: Firewall,
  slowLinks: SlowLinks | undefined,
  store: RunStore,
  log: (m: string) => void,
): Promise<void> {
  store.link?.open();
  const r = await firewall.healAll();
  if (r.droppedPackets > 0) log(`final heal removed rules that had dropped ${r.droppedPackets} packets`);
  slowLinks?.clearDelays();
  for (const id of IDS) {
    if (cluster.hasFakeClock) cluster.setClockOffset(id, 0);
    if (cluster.isRunning(id)) cluster.resumeDaemon(id);
    else {
      log(`restarting ${id}`);
      await cluster.start(id);
    }
  }
}

async function waitNoProcessesLeft(log: (m: string) => void): Promise<void> {
  const deadline = performance.now() + CLEANUP_WAIT_MS;
  let left = processesInThisNetns();
  while (left.length > 0 && performance.now() < deadline) {
    await sleep(50);
    left = processesInThisNetns();
  }
  if (left.length === 0) return;
  log(`processes left behind, killed: ${left.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`);
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  throw new Error(`processes left behind: ${left.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`);
}
