// The two guards on automatic failover, on three real ogel daemons supervising
// three real Postgres 17 nodes (docs/postgres-failover.md, "Failover" steps 1 and 3):
// - `ogel pause` holds failover back, even with the primary dead well past its
//   lease; `ogel resume` lets it run, and no acknowledged write is lost.
// - I4: with the old primary and a standby both unreachable, the latest
//   acknowledged commit may exist only on that standby, so automatic failover
//   refuses and `ogel status` says why; once the standby is back, failover runs
//   and promotes the most advanced standby, with every acknowledged write.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { adminPassword } from '../src/auth/passwords.js';
import { setTimeout as sleep } from 'node:timers/promises';

const LEASE_MS = 1000;
/** How long the guards must hold with the primary dead: three leases plus a margin. */
const HOLD_MS = LEASE_MS * 3 + 1000;
const POLL_MS = 100;

interface PgView {
  primary: string | null;
  generation: number;
  lease: { holder: string; renewalSeq: number } | null;
  nodes: Record<string, { reportedRole: string; timeline: number }>;
  failoverBlocked: { reason: string; atMs: number } | null;
}

interface StatusBody {
  node: string;
  leader: string | null;
  postgres: PgView;
  maintenance: { paused: boolean; reason: string | null };
}

const live = new Set<DaemonCluster>();
after(async () => {
  // Safety net: a test that threw before its own finally still leaves no process behind.
  for (const c of live) await c.destroy();
  live.clear();
});

async function withCluster(t: TestContext, fn: (c: DaemonCluster, password: string) => Promise<void>): Promise<void> {
  const c = await DaemonCluster.create(['n1', 'n2', 'n3'], `postgres:\n  leaseMs: ${LEASE_MS}\n`);
  live.add(c);
  try {
    const password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
    await waitHealthy(c);
    await fn(c, password);
  } catch (e) {
    // The daemons' last log lines say what the cluster did.
    for (const [id, n] of c.nodes) t.diagnostic(`--- ${id} log tail ---\n${n.log.slice(-40).join('\n')}`);
    throw e;
  } finally {
    live.delete(c);
    await c.destroy();
  }
}

function alive(c: DaemonCluster, id: string): boolean {
  const p = c.nodes.get(id)!.proc;
  return p !== undefined && p.exitCode === null && p.signalCode === null;
}

/** The linearizable view, through whichever live node answers (the API forwards to the leader). */
async function pgView(c: DaemonCluster): Promise<PgView> {
  const leader = await c.waitForLeader();
  const r = await c.get(leader, '/v1/status');
  if (r.status !== 200) throw new Error(`/v1/status on ${leader}: HTTP ${r.status}`);
  return (r.body as StatusBody).postgres;
}

/** Each live node's own state (works without a quorum); null for a node that did not answer. */
async function localViews(c: DaemonCluster): Promise<Map<string, StatusBody | null>> {
  const out = new Map<string, StatusBody | null>();
  await Promise.all(
    [...c.nodes.keys()]
      .filter((id) => alive(c, id))
      .map(async (id) => {
        const r = await c.get(id, '/v1/status?stale=true');
        out.set(id, r.status === 200 ? (r.body as StatusBody) : null);
      }),
  );
  return out;
}

/** As in postgres-cluster.test.ts: a primary and two standbys reported, the primary writable, both standbys streaming in quorum. */
async function waitHealthy(c: DaemonCluster): Promise<void> {
  await c.waitFor(
    async () => {
      try {
        const v = await pgView(c);
        const roles = Object.values(v.nodes)
          .map((n) => n.reportedRole)
          .sort();
        return v.primary !== null && v.lease?.holder === v.primary && roles.join(',') === 'primary,standby,standby';
      } catch {
        return false;
      }
    },
    'a primary and two standbys reported',
    60_000,
  );
  const { primary } = await pgView(c);
  await c.waitFor(async () => (await c.get(primary!, '/primary', null)).status === 200, '/primary on the primary', 15_000);
  await c.waitFor(
    async () => {
      const client = await connect(c, primary!, adminPassword(loadConfig(c.configPath)));
      try {
        const r = await client.query(
          "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive' AND sync_state = 'quorum'",
        );
        return r.rows[0].n === 2;
      } finally {
        await client.end();
      }
    },
    'both standbys streaming in quorum',
    15_000,
  );
}

async function connect(c: DaemonCluster, id: string, password: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: c.nodes.get(id)!.postgresPort,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
  });
  await client.connect();
  return client;
}

/** Inserts ids from..to, one commit each; every one returned is acknowledged (on a standby too, ANY 1). */
async function writeAcked(c: DaemonCluster, id: string, password: string, from: number, to: number, acked: number[]): Promise<void> {
  const client = await connect(c, id, password);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS acked (n int primary key)');
    for (let n = from; n <= to; n++) {
      await client.query('INSERT INTO acked VALUES ($1)', [n]);
      acked.push(n);
    }
  } finally {
    await client.end();
  }
}

/**
 * Polls every surviving node's own state for HOLD_MS from `since` and asserts at
 * every poll that the guard holds: the generation is unchanged, the dead node is
 * still the one named primary, and no survivor's Postgres reports itself primary.
 * Returns the number of answered polls and the last views.
 */
async function assertNoFailoverFor(
  c: DaemonCluster,
  since: number,
  old: { primary: string; generation: number },
  onPoll?: (views: Map<string, StatusBody | null>, elapsedMs: number) => void,
): Promise<{ answered: number; last: Map<string, StatusBody | null> }> {
  let answered = 0;
  let last = new Map<string, StatusBody | null>();
  while (performance.now() - since < HOLD_MS) {
    const views = await localViews(c);
    for (const [id, s] of views) {
      if (s === null) continue; // a slow answer (an election): the next poll checks again
      answered++;
      assert.equal(s.postgres.generation, old.generation, `${id} at +${Math.round(performance.now() - since)} ms: the generation changed`);
      assert.equal(s.postgres.primary, old.primary, `${id} at +${Math.round(performance.now() - since)} ms: another node was named primary`);
      for (const [nid, n] of Object.entries(s.postgres.nodes)) {
        if (nid !== old.primary) assert.notEqual(n.reportedRole, 'primary', `${id} sees ${nid} reporting itself primary`);
      }
    }
    last = views;
    onPoll?.(views, performance.now() - since);
    await sleep(POLL_MS);
  }
  return { answered, last };
}

/** Waits for a primary of generation `generation` other than `old` that accepts writes; returns it. */
async function waitNewPrimary(c: DaemonCluster, old: string, generation: number, timeoutMs: number): Promise<string> {
  let view: PgView | undefined;
  await c.waitFor(
    async () => {
      try {
        view = await pgView(c);
      } catch {
        return false;
      }
      return view.generation === generation && view.primary !== old && view.primary !== null && view.nodes[view.primary]?.reportedRole === 'primary';
    },
    `a new primary of generation ${generation}`,
    timeoutMs,
  );
  const next = view!.primary!;
  await c.waitFor(async () => (await c.get(next, '/primary', null)).status === 200, '/primary on the new primary', timeoutMs);
  return next;
}

/** Every acknowledged write is on the new primary, which accepts a new one and holds the new generation. */
async function assertAckedPresent(c: DaemonCluster, next: string, password: string, acked: number[], generation: number): Promise<void> {
  const client = await connect(c, next, password);
  try {
    const r = await client.query('SELECT n FROM acked ORDER BY n');
    assert.deepEqual(
      r.rows.map((x: { n: number }) => x.n),
      acked,
      'every acknowledged write survived',
    );
    await client.query('INSERT INTO acked VALUES ($1)', [acked.length + 1_000]);
    const gen = await client.query('SELECT generation FROM ogel.generation');
    assert.equal(Number(gen.rows[0].generation), generation);
  } finally {
    await client.end();
  }
}

describe('automatic failover guards on real Postgres nodes', () => {
  it('ogel pause blocks failover past the lease; ogel resume lets it run with every acknowledged write', async (t: TestContext) => {
    await withCluster(t, async (c, password) => {
      const before = await pgView(c);
      const old = before.primary!;
      const acked: number[] = [];
      await writeAcked(c, old, password, 1, 50, acked);

      const paused = await c.cli(['pause', '--reason', 'test', '--wait']);
      assert.equal(paused.code, 0, paused.stderr);
      assert.match(paused.stdout, /Maintenance mode: on \(test\)/i);

      const t0 = performance.now();
      await c.kill9(old); // its death guard stops its Postgres too
      const held = await assertNoFailoverFor(c, t0, { primary: old, generation: before.generation }, (views) => {
        for (const [id, s] of views) if (s) assert.equal(s.maintenance.paused, true, `${id} lost the maintenance flag`);
      });
      assert.ok(held.answered >= 10, `only ${held.answered} status answers from the survivors in ${HOLD_MS} ms`);
      t.diagnostic(
        `paused: no failover for ${Math.round(performance.now() - t0)} ms after kill -9 (lease ${LEASE_MS} ms), ${held.answered} status answers checked`,
      );

      const json = await c.cli(['status', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const s = JSON.parse(json.stdout) as StatusBody;
      assert.deepEqual(s.maintenance, { paused: true, reason: 'test' });
      assert.equal(s.postgres.primary, old);
      assert.equal(s.postgres.generation, before.generation);
      const table = await c.cli(['status']);
      assert.equal(table.code, 0, table.stderr);
      // The human view (its layout is still changing): paused, with the reason.
      assert.match(table.stdout, /(maintenance mode: on|paused)\b.*\(test\)/i, table.stdout);

      const resumed = await c.cli(['resume']);
      assert.equal(resumed.code, 0, resumed.stderr);
      const t1 = performance.now();
      const next = await waitNewPrimary(c, old, before.generation + 1, 15_000);
      const failoverMs = performance.now() - t1;
      await assertAckedPresent(c, next, password, acked, before.generation + 1);
      const history = (await c.get(next, '/v1/history')).body as { history: { generation: number; node: string; reason: string }[] };
      assert.match(history.history.at(-1)!.reason, /failover/);
      t.diagnostic(`resume to a writable new primary (${next}, generation ${before.generation + 1}): ${Math.round(failoverMs)} ms`);
    });
  });

  it('I4: the old primary and a standby both unreachable blocks automatic failover; it runs once the standby is back', async (t: TestContext) => {
    // Why not kill two daemons: with three Raft voters, killing the primary's
    // daemon and a standby's daemon also kills the Raft majority, and nothing can
    // be decided or recorded. SIGSTOPping the standby's daemon is the same thing.
    // So the double failure is the primary's node (daemon and, through its death
    // guard, its Postgres) plus only the *Postgres* of one standby, whose daemon
    // stays up for Raft: two daemons remain, a majority.
    // The standby's agent restarts a crashed Postgres within ~100 ms, so killing
    // the postmaster alone would not last. We first move its data dir's PG_VERSION
    // aside: the agent then refuses to start (or re-clone) a non-empty directory
    // without PG_VERSION, and its fence endpoint answers 409 "postgres is not
    // running", which the controller counts as unreachable. Moving the file back
    // undoes it, and the agent's retry loop starts Postgres again.
    await withCluster(t, async (c, password) => {
      const before = await pgView(c);
      const old = before.primary!;
      const standbys = Object.keys(before.nodes)
        .filter((id) => id !== old)
        .sort();
      const leader = await c.waitForLeader();
      // Break the standby that is not the Raft leader if we can: the leader's
      // controller then fences it over the network, as in a real outage.
      const broken = standbys.find((id) => id !== leader) ?? standbys[0]!;
      const survivor = standbys.find((id) => id !== broken)!;
      const acked: number[] = [];
      await writeAcked(c, old, password, 1, 50, acked);

      const pgDir = join(resolve(loadConfig(c.configPath).cluster.dataDir, broken), 'pg');
      const versionFile = join(pgDir, 'PG_VERSION');
      const hidden = join(pgDir, 'PG_VERSION.test-hidden');
      let restored = false;
      const restore = () => {
        if (!restored && existsSync(hidden)) renameSync(hidden, versionFile);
        restored = true;
      };
      try {
        const postmasterPid = Number(readFileSync(join(pgDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        assert.ok(Number.isInteger(postmasterPid) && postmasterPid > 0, 'postmaster.pid of the standby');
        renameSync(versionFile, hidden); // a running server never reads it again
        process.kill(postmasterPid, 'SIGKILL');

        // Readiness: the primary sees one streaming standby (the survivor), and the
        // broken one's Postgres stays down (its agent cannot restart it).
        await c.waitFor(
          async () => {
            const client = await connect(c, old, password);
            try {
              const r = await client.query(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive'",
              );
              return r.rows.length === 1 && r.rows[0].application_name === survivor;
            } finally {
              await client.end();
            }
          },
          `${broken} to stop streaming`,
          10_000,
        );
        await c.waitFor(
          async () => {
            const st = await c.send(broken, 'POST', '/v1/internal/pg/stop-receiver', { generation: before.generation });
            return st.status === 409 && /not running/.test(JSON.stringify(st.body));
          },
          `${broken}'s fence endpoint to answer that its Postgres is not running`,
          5_000,
        );
        // Acknowledged now means on the primary and the survivor only (ANY 1).
        await writeAcked(c, old, password, 51, 100, acked);

        // A block recorded during bootstrap (the first primary's lease lapsing while
        // it runs initdb) is not cleared once the cluster is healthy: time the block
        // by the record changing, not by it being there.
        const pre = (await pgView(c)).failoverBlocked;
        if (pre) t.diagnostic(`a stale block was recorded before the kill (healthy cluster): ${JSON.stringify(pre)}`);
        const t0 = performance.now();
        await c.kill9(old);
        let blockedMs: number | undefined;
        const held = await assertNoFailoverFor(c, t0, { primary: old, generation: before.generation }, (views, elapsedMs) => {
          const fresh = [...views.values()].some((s) => {
            const b = s?.postgres.failoverBlocked;
            return b && (pre === null || b.atMs !== pre.atMs || b.reason !== pre.reason);
          });
          if (blockedMs === undefined && fresh) blockedMs = elapsedMs;
        });
        assert.ok(held.answered >= 10, `only ${held.answered} status answers from the survivors in ${HOLD_MS} ms`);
        t.diagnostic(
          `blocked ${blockedMs === undefined ? '(no new record: the same reason was already recorded)' : `${Math.round(blockedMs)} ms`} after kill -9 of ${old}'s daemon; ` +
            `no failover for ${Math.round(performance.now() - t0)} ms (lease ${LEASE_MS} ms)`,
        );

        const v = await pgView(c);
        const reason = v.failoverBlocked?.reason ?? '';
        assert.match(reason, new RegExp(`standby ${broken}\\b`), reason);
        assert.ok(!reason.includes(survivor), `the reachable standby ${survivor} is named: ${reason}`);
        assert.match(reason, new RegExp(`primary ${old}\\b`), reason);
        assert.match(reason, /acknowledged/, reason);
        const json = await c.cli(['status', '--json']);
        assert.equal(json.code, 0, json.stderr);
        assert.equal((JSON.parse(json.stdout) as StatusBody).postgres.failoverBlocked?.reason, reason);
        const table = await c.cli(['status']);
        assert.equal(table.code, 0, table.stderr);
        assert.match(table.stdout, /failover blocked:.*acknowledged/i, table.stdout);
        assert.ok(table.stdout.includes(`standby ${broken}`), table.stdout);
        t.diagnostic(`ogel status: ${table.stdout.split('\n').find((l) => /failover blocked/i.test(l))}`);

        // Undo the standby's failure: the controller re-probes unreachable standbys
        // every 500 ms, finds both reachable, and promotes the most advanced one:
        // the survivor, which holds writes 51-100 that the broken one never got.
        restore();
        const t1 = performance.now();
        const next = await waitNewPrimary(c, old, before.generation + 1, 20_000);
        const failoverMs = performance.now() - t1;
        assert.equal(next, survivor, `promoted ${next}, but only ${survivor} holds every acknowledged write`);
        await assertAckedPresent(c, next, password, acked, before.generation + 1);
        assert.equal((await pgView(c)).failoverBlocked, null, 'the block is cleared by the promotion');
        t.diagnostic(`restore to a writable new primary (${next}, generation ${before.generation + 1}): ${Math.round(failoverMs)} ms`);
      } finally {
        restore();
      }
    });
  });
});
