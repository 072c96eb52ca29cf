// Scenario for test/partition-primary.test.ts, run as root inside a private
// network namespace (`unshare --net node dist/test/scenarios/partition-primary.js`).
//
// Three daemons on 127.0.0.11, .12 and .13 supervise three Postgres nodes with a
// 1 s lease. Once the primary takes writes and both standbys stream, iptables cuts
// the primary's address off from the other two. I3 says the old primary must stop
// accepting writes before the new primary is promoted. A client keeps writing to
// the old primary over its unix socket (not cut), watchers bracket the promotion
// in the state machine and in Postgres, all on this process's monotonic clock.
//
// Where the Raft leader is at the cut is pinned by a leadership transfer, so a run
// is repeatable: `--leader=other` (default) puts it on a standby's node, the case
// with the least margin (the observer has seen every renewal until the cut);
// `--leader=primary` cuts the leader together with the primary (an election first).
//
// Prints one JSON line of figures on stdout; exits 1 (with the reason and the
// daemons' last log lines on stderr) when a check fails.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { DaemonCluster, TOKEN } from '../helpers/daemons.js';
import { FsmWatch, RecoveryWatch, type Bracket } from '../helpers/failover-watch.js';
import { assertPrivateNetns, canConnect, establishedTcp, healAll, isolateHost, loopbackUp, processesInThisNetns } from '../helpers/netns.js';
import { accepted, WriteLoop, type WriteAttempt } from '../helpers/pg-writer.js';

const HOSTS: Readonly<Record<string, string>> = { n1: '127.0.0.11', n2: '127.0.0.12', n3: '127.0.0.13' };
const IDS = Object.keys(HOSTS);
const LEASE_MS = 1_000;
const TABLE = 'partition_writes';
/** Ids of writes sent to the new primary start here, so the two writers' rows never collide. */
const NEW_PRIMARY_FIRST_ID = 1_000_000;
const WRITE_INTERVAL_MS = 5;
const STATEMENT_TIMEOUT_MS = 200;
/**
 * A write that waits for unreachable standbys ends only when the fence terminates
 * its session, by the holder's deadline (under a lease). Past this bound its outcome
 * is unknown, and a row it committed would count as written at an unknown time.
 */
const CLIENT_TIMEOUT_MS = 5 * LEASE_MS;
const POLL_MS = 10;
const SETUP_TIMEOUT_MS = 60_000;
const FAILOVER_TIMEOUT_MS = 15_000;
/** Writes acknowledged by the old primary before the cut, so there is something to lose. */
const WRITES_BEFORE_CUT = 20;
/** How long the old primary is watched after the new primary took a write: it must stay read-only. */
const HOLD_AFTER_PROMOTION_MS = LEASE_MS;
/** A SYN to a cut address is dropped: no answer within this means cut. */
const CUT_PROBE_MS = 300;
const CLEANUP_WAIT_MS = 10_000;

const now = (): number => performance.now();
const t0Ms = now();
/** Phase timings on stderr: where the run's time goes, when someone asks. */
function phase(what: string): void {
  process.stderr.write(`[${Math.round(now() - t0Ms)} ms] ${what}\n`);
}

type LeaderPlacement = 'other' | 'primary';

function parseArgs(argv: readonly string[]): { leader: LeaderPlacement } {
  let leader: LeaderPlacement = 'other';
  for (const a of argv) {
    if (a === '--leader=other' || a === '--leader=primary') leader = a.slice('--leader='.length) as LeaderPlacement;
    else throw new Error(`unknown argument ${JSON.stringify(a)} (expected --leader=other or --leader=primary)`);
  }
  return { leader };
}

/** Times are in ms after the cut (the first iptables rule), on this process's monotonic clock. */
interface Figures {
  leaseMs: number;
  /** Where the Raft leader was when the primary was cut off. */
  raftLeaderPlacement: LeaderPlacement;
  oldPrimary: string;
  newPrimary: string;
  raftLeaderAtCut: string;
  /**
   * By when the old primary's last write was committed and visible: the end of the
   * last attempt whose row it holds (a write with no outcome would make this unknown).
   */
  lastOldWriteAcceptedMs: number;
  /** The first write the old primary refused after the cut (read-only, or its session terminated). */
  oldFencedMs: number;
  /** The promotion committed in the state machine in (after, by]: see failover-watch.ts. */
  promotionCommittedAfterMs: number;
  promotionCommittedByMs: number;
  /** The new primary's Postgres left recovery in (after, by]. */
  newPostgresPromotedAfterMs: number;
  newPostgresPromotedByMs: number;
  /** Its first write acknowledged by a standby. */
  newPrimaryFirstWriteMs: number;
  /** promotionCommittedAfterMs - lastOldWriteAcceptedMs: positive means no overlap (I3). */
  i3GapMs: number;
  oldWritesAckedBeforeCut: number;
  oldWritesCommittedAfterCut: number;
  oldWritesRefused: number;
}

async function main(): Promise<Figures> {
  const args = parseArgs(process.argv.slice(2));
  assertPrivateNetns();
  await loopbackUp();
  const c = await DaemonCluster.create(IDS, `postgres:\n  leaseMs: ${LEASE_MS}\n`, { hosts: HOSTS });
  const stoppers: (() => Promise<void>)[] = [];
  let failed = true;
  try {
    const figures = await run(c, stoppers, args.leader);
    failed = false;
    return figures;
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => {});
    if (failed) dumpLogs(c);
    await cleanup(c);
  }
}

async function run(c: DaemonCluster, stoppers: (() => Promise<void>)[], placement: LeaderPlacement): Promise<Figures> {
  await c.startAll();
  phase('daemons up');
  const { primary: old, generation: g0 } = await waitForHealthyCluster(c);
  phase('primary and standbys reported');
  const oldNode = c.nodes.get(old)!;
  const socket = (id: string) => ({ dir: c.postgresSocketDir(id), port: c.nodes.get(id)!.postgresPort });
  await waitForWritableStreamingPrimary(socket(old).dir, socket(old).port);
  const others = IDS.filter((id) => id !== old);
  phase('primary writable, standbys streaming');
  const raftLeaderAtCut = await placeLeader(c, placement === 'primary' ? old : others[0]!);
  await checkPeerConnectionsCarryNodeAddresses(c);
  phase(`leader placed on ${raftLeaderAtCut}, peer connections checked`);

  const fsm = new FsmWatch({
    apis: new Map(others.map((id) => [id, c.apiUrl(id)])),
    token: TOKEN,
    intervalMs: POLL_MS,
    requestTimeoutMs: 1_000,
    inFlightMax: 32,
    clock: now,
  });
  fsm.start();
  stoppers.push(() => fsm.stop());
  const recovery = new Map(others.map((id) => [id, new RecoveryWatch(socket(id).dir, socket(id).port, POLL_MS, now)]));
  for (const w of recovery.values()) {
    w.start();
    stoppers.push(() => w.stop());
  }
  const oldWriter = new WriteLoop({
    socketDir: socket(old).dir,
    port: socket(old).port,
    table: TABLE,
    firstId: 1,
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    clientTimeoutMs: CLIENT_TIMEOUT_MS,
    intervalMs: WRITE_INTERVAL_MS,
    clock: now,
  });
  oldWriter.start();
  stoppers.push(() => oldWriter.stop());
  await c.waitFor(
    async () => oldWriter.attempts.filter((a) => a.outcome === 'acked').length >= WRITES_BEFORE_CUT,
    `${WRITES_BEFORE_CUT} writes acknowledged by ${old}`,
    10_000,
  );
  await c.waitFor(async () => fsm.observations.some((x) => x.generation === g0), 'a linearizable read of the generation before the cut', 10_000);

  // ---- the cut
  const cutMs = now();
  await isolateHost(oldNode.host);
  await checkCut(c, old);
  phase(`cut ${old} (${oldNode.host})`);

  // ---- wait for the promotion, then for a write on the new primary
  await c.waitFor(async () => fsm.newer(g0).length > 0, 'the state machine to promote a new primary', FAILOVER_TIMEOUT_MS);
  const newPrimary = fsm.newer(g0)[0]!.primary!;
  assert.notEqual(newPrimary, old, 'the new generation names a new primary');
  const newWriter = new WriteLoop({
    socketDir: socket(newPrimary).dir,
    port: socket(newPrimary).port,
    table: TABLE,
    firstId: NEW_PRIMARY_FIRST_ID,
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    clientTimeoutMs: CLIENT_TIMEOUT_MS,
    intervalMs: WRITE_INTERVAL_MS,
    clock: now,
  });
  newWriter.start();
  stoppers.push(() => newWriter.stop());
  await c.waitFor(
    async () => newWriter.attempts.some((a) => a.outcome === 'acked'),
    `a write acknowledged by the new primary ${newPrimary}`,
    FAILOVER_TIMEOUT_MS,
  );
  phase(`new primary ${newPrimary} took a write`);
  // Not a readiness wait: the window in which the old primary must stay read-only.
  await sleep(HOLD_AFTER_PROMOTION_MS);
  await oldWriter.stop();
  await newWriter.stop();
  await fsm.stop();
  for (const w of recovery.values()) await w.stop();

  // ---- what happened
  const oldRows = await ids(socket(old).dir, socket(old).port);
  const newRows = await ids(socket(newPrimary).dir, socket(newPrimary).port);
  const byId = new Map(oldWriter.attempts.map((a) => [a.id, a]));
  const afterCut = oldWriter.attempts.filter((a) => a.startMs >= cutMs);
  // The old primary's side of the story, for whoever reads a failure (stderr is shown then).
  process.stderr.write(
    `${old} after the cut: ${afterCut
      .slice(0, 8)
      .map((a) => `#${a.id} ${rel(a.startMs, cutMs)}..${rel(a.endMs, cutMs)} ms ${a.outcome} ${a.detail ?? ''}`)
      .join('\n')}\n`,
  );
  // A row on the old primary was committed before its attempt ended. An attempt
  // with an unknown outcome cannot be placed, row or not: a commit waiting for the
  // standbys is not visible yet, and becomes visible whenever the wait ends. It
  // counts as committed at an unknown, late time.
  const committed = oldRows.map((id) => {
    const a = byId.get(id);
    assert.ok(a !== undefined, `row ${id} on ${old} was never written by the test`);
    return { a, byMs: a.endMs };
  });
  const unknown = oldWriter.attempts.filter((a) => a.outcome === 'error').map((a) => ({ a, byMs: Number.POSITIVE_INFINITY }));
  const lastCommit = [...committed, ...unknown].reduce((x, y) => (y.byMs > x.byMs ? y : x));
  const lastOldCommitMs = lastCommit.byMs;
  const culprit = `#${lastCommit.a.id} (${lastCommit.a.outcome} ${lastCommit.a.detail ?? ''}, sent ${rel(lastCommit.a.startMs, cutMs)} ms after the cut)`;
  const promotion = fsm.bracket(g0);
  assert.ok(promotion !== undefined, 'the promotion was bracketed by reads of the old and the new generation');
  const pgPromotion: Bracket | undefined = recovery.get(newPrimary)!.bracket();
  assert.ok(pgPromotion !== undefined, `${newPrimary}'s Postgres was seen in recovery, then out of it`);
  const firstNewWrite = newWriter.attempts.find((a) => a.outcome === 'acked')!;

  // I3: the old primary committed its last write before the promotion committed,
  // and so before the new primary's Postgres left recovery.
  assert.ok(
    lastOldCommitMs < promotion.afterMs,
    `I3: ${old} committed write ${culprit} ${Number.isFinite(lastOldCommitMs) ? `by ${rel(lastOldCommitMs, cutMs)} ms after the cut` : 'at an unknown time (no outcome)'}, not before the promotion (committed after ${rel(promotion.afterMs, cutMs)} ms)`,
  );
  assert.ok(lastOldCommitMs < pgPromotion.afterMs, `I3: ${old} committed write ${culprit} after ${newPrimary}'s Postgres was promoted`);
  const firstRefusal = afterCut.find((a) => a.outcome === 'read-only' || a.outcome === 'terminated');
  assert.ok(firstRefusal !== undefined, `${old} never refused a write after the cut: ${summary(afterCut)}`);
  // Once refusing, the old primary refuses for as long as it is cut off.
  const lateAccepted = oldWriter.attempts.filter((a) => a.startMs > firstRefusal.endMs && accepted(a));
  assert.deepEqual(lateAccepted, [], `${old} accepted writes after it was fenced`);
  await assertReadOnly(socket(old).dir, socket(old).port, old);
  // I4: every write the old primary acknowledged is on the new one.
  const newSet = new Set(newRows);
  const acked = oldWriter.attempts.filter((a) => a.outcome === 'acked');
  const lost = acked.filter((a) => !newSet.has(a.id)).map((a) => a.id);
  assert.deepEqual(lost, [], `acknowledged writes missing on the new primary ${newPrimary}`);
  assert.ok(acked.filter((a) => a.endMs < cutMs).length >= WRITES_BEFORE_CUT);
  const final = fsm.observations.at(-1)!;
  assert.equal(final.generation, g0 + 1, 'one promotion, one generation up');
  assert.equal(final.primary, newPrimary);

  return {
    leaseMs: LEASE_MS,
    oldPrimary: old,
    newPrimary,
    raftLeaderPlacement: placement,
    raftLeaderAtCut,
    lastOldWriteAcceptedMs: rel(lastOldCommitMs, cutMs),
    oldFencedMs: rel(firstRefusal.endMs, cutMs),
    promotionCommittedAfterMs: rel(promotion.afterMs, cutMs),
    promotionCommittedByMs: rel(promotion.byMs, cutMs),
    newPostgresPromotedAfterMs: rel(pgPromotion.afterMs, cutMs),
    newPostgresPromotedByMs: rel(pgPromotion.byMs, cutMs),
    newPrimaryFirstWriteMs: rel(firstNewWrite.endMs, cutMs),
    i3GapMs: Math.round(promotion.afterMs - lastOldCommitMs),
    oldWritesAckedBeforeCut: acked.filter((a) => a.endMs < cutMs).length,
    oldWritesCommittedAfterCut: committed.filter((x) => x.a.startMs >= cutMs).length,
    oldWritesRefused: afterCut.filter((a) => a.outcome === 'read-only' || a.outcome === 'terminated').length,
  };
}

function rel(tMs: number, cutMs: number): number {
  return Math.round(tMs - cutMs);
}

function summary(attempts: readonly WriteAttempt[]): string {
  const counts = new Map<string, number>();
  for (const a of attempts) counts.set(a.outcome, (counts.get(a.outcome) ?? 0) + 1);
  return JSON.stringify(Object.fromEntries(counts));
}

interface PgView {
  primary: string | null;
  generation: number;
  nodes: Record<string, { reportedRole: string }>;
}

/** A primary and two standbys reported, read linearizably from any node. */
async function waitForHealthyCluster(c: DaemonCluster): Promise<{ primary: string; generation: number; leader: string }> {
  let found: { primary: string; generation: number; leader: string } | undefined;
  await c.waitFor(
    async () => {
      for (const id of IDS) {
        const r = await c.get(id, '/v1/status');
        const body = r.body as { stale?: boolean; leader?: string; postgres?: PgView } | undefined;
        if (r.status !== 200 || body?.stale !== false || !body.postgres || !body.leader) continue;
        const v = body.postgres;
        const roles = Object.values(v.nodes)
          .map((n) => n.reportedRole)
          .sort()
          .join(',');
        if (v.primary === null || roles !== 'primary,standby,standby') return false;
        found = { primary: v.primary, generation: v.generation, leader: body.leader };
        return true;
      }
      return false;
    },
    'a primary and two standbys',
    SETUP_TIMEOUT_MS,
  );
  return found!;
}

/** Moves Raft leadership to `to` (if it is not there) and waits until every node agrees. */
async function placeLeader(c: DaemonCluster, to: string): Promise<string> {
  const current = await c.waitForLeader(SETUP_TIMEOUT_MS);
  if (current !== to) {
    const r = await c.send(current, 'POST', '/v1/leadership/transfer', { to });
    assert.equal(r.status, 200, `leadership transfer to ${to}: ${JSON.stringify(r.body)}`);
  }
  await c.waitFor(async () => (await c.waitForLeader(SETUP_TIMEOUT_MS)) === to, `${to} to lead`, 10_000);
  return to;
}

/** Both standbys stream with quorum sync, and the primary takes a write (its lease has committed). */
async function waitForWritableStreamingPrimary(socketDir: string, port: number): Promise<void> {
  const deadline = now() + SETUP_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres', query_timeout: 5_000, connectionTimeoutMillis: 1_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const r = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive' AND sync_state IN ('quorum', 'sync')",
      );
      if (r.rows[0]!.n === 2) {
        await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY)`);
        return;
      }
      last = `${r.rows[0]!.n} standbys streaming`;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    if (now() > deadline) throw new Error(`timed out after ${SETUP_TIMEOUT_MS} ms waiting for a writable primary with two streaming standbys (last: ${last})`);
    await sleep(50);
  }
}

/**
 * The daemons' own connections to each other carry their own addresses (what the
 * iptables rules match on): every Raft connection comes from a node's address, never
 * from 127.0.0.1, and agents reach the leader's admin API from their addresses too.
 */
async function checkPeerConnectionsCarryNodeAddresses(c: DaemonCluster): Promise<void> {
  const hosts = new Set(Object.values(HOSTS));
  const raft = new Set([...c.nodes.values()].map((n) => `${n.host}:${n.raftPort}`));
  const api = new Set([...c.nodes.values()].map((n) => `${n.host}:${n.apiPort}`));
  let last = '';
  await c
    .waitFor(
      async () => {
        const conns = establishedTcp();
        const toRaft = conns.filter((x) => raft.has(`${x.remote.ip}:${x.remote.port}`));
        const strays = toRaft.filter((x) => !hosts.has(x.local.ip) || x.local.ip === x.remote.ip);
        assert.deepEqual(strays, [], "Raft connections from an address that is not the dialling node's");
        const pairs = new Set(toRaft.map((x) => `${x.local.ip}>${x.remote.ip}`));
        // Followers talk only to the leader, so not every pair has a link; but every
        // node has dialled, and every node has been dialled.
        const dialled = (end: 'local' | 'remote') => new Set(toRaft.map((x) => x[end].ip)).size === hosts.size;
        // 127.0.0.1 is this process (the test's own API calls); a daemon would use its address.
        const toApi = conns.filter((x) => api.has(`${x.remote.ip}:${x.remote.port}`) && x.local.ip !== '127.0.0.1');
        assert.deepEqual(
          toApi.filter((x) => !hosts.has(x.local.ip)),
          [],
          'admin API connections from an unexpected address',
        );
        last = `raft pairs ${[...pairs].sort().join(' ')}; api from ${toApi.map((x) => x.local.ip).join(' ')}`;
        return dialled('local') && dialled('remote') && toApi.length > 0;
      },
      'Raft links from and to every node, from node addresses, and agent calls to the leader from node addresses',
      5_000,
    )
    .catch((e: Error) => {
      throw new Error(`${e.message} (${last})`);
    });
}

/** The rules cut what they should, and only that. */
async function checkCut(c: DaemonCluster, old: string): Promise<void> {
  const oldNode = c.nodes.get(old)!;
  const [a, b] = IDS.filter((id) => id !== old).map((id) => c.nodes.get(id)!) as [typeof oldNode, typeof oldNode];
  const [inRaft, outApi, outPg, majority] = await Promise.all([
    canConnect(a.host, { ip: oldNode.host, port: oldNode.raftPort }, CUT_PROBE_MS),
    canConnect(oldNode.host, { ip: a.host, port: a.apiPort }, CUT_PROBE_MS),
    canConnect('127.0.0.1', { ip: oldNode.host, port: oldNode.postgresPort }, CUT_PROBE_MS),
    canConnect(a.host, { ip: b.host, port: b.raftPort }, CUT_PROBE_MS),
  ]);
  assert.equal(inRaft, false, `${a.id} still reaches ${old}'s Raft port`);
  assert.equal(outApi, false, `${old} still reaches ${a.id}'s admin API`);
  assert.equal(outPg, false, `standbys (from 127.0.0.1) still reach ${old}'s Postgres`);
  assert.equal(majority, true, `${a.id} no longer reaches ${b.id}: the rules cut too much`);
}

async function ids(socketDir: string, port: number): Promise<number[]> {
  const client = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres', query_timeout: 5_000, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{ id: string }>(`SELECT id FROM ${TABLE} ORDER BY id`);
    return r.rows.map((x) => Number(x.id));
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A fresh session on the old primary is read-only and a write is refused with
 * 25006, and no commit is left waiting for the standbys: such a commit is in the
 * WAL but not yet visible, and becomes visible when its wait ends.
 */
async function assertReadOnly(socketDir: string, port: number, id: string): Promise<void> {
  const client = new pg.Client({
    host: socketDir,
    port,
    user: 'postgres',
    database: 'postgres',
    query_timeout: 5_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{ default_transaction_read_only: string }>('SHOW default_transaction_read_only');
    assert.equal(r.rows[0]?.default_transaction_read_only, 'on', `${id} is not fenced`);
    const waiting = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
    assert.equal(waiting.rows[0]?.n, 0, `${id} has commits waiting for unreachable standbys`);
    await assert.rejects(
      client.query(`INSERT INTO ${TABLE} (id) VALUES (-1)`),
      (e: Error & { code?: string }) => e.code === '25006',
      `${id} took a write while cut off`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

function dumpLogs(c: DaemonCluster): void {
  for (const n of c.nodes.values()) {
    process.stderr.write(`---- ${n.id} (${n.host}) last log lines\n${n.log.slice(-40).join('\n')}\n`);
  }
}

/**
 * Heals the network, stops every daemon by PID (their Postgres stops with them),
 * removes the data, and checks that nothing this scenario started is left.
 */
async function cleanup(c: DaemonCluster): Promise<void> {
  const problems: string[] = [];
  phase('cleanup');
  await healAll().catch((e: Error) => problems.push(e.message));
  await Promise.all(IDS.map((id) => c.terminate(id, CLEANUP_WAIT_MS)));
  phase('daemons stopped');
  await c.destroy();
  const deadline = now() + CLEANUP_WAIT_MS;
  let left = processesInThisNetns();
  while (left.length > 0 && now() < deadline) {
    await sleep(50);
    left = processesInThisNetns();
  }
  if (left.length > 0) {
    problems.push(`processes left behind: ${left.map((p) => `${p.pid} ${p.cmd}`).join('; ')}`);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  phase('clean');
}

main().then(
  (figures) => {
    process.stdout.write(`${JSON.stringify({ partitionPrimary: figures })}\n`);
    process.exit(0);
  },
  (e: Error) => {
    process.stderr.write(`partition-primary scenario failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
