// A node whose data directory is wiped must not help elect a leader that lacks
// what it acknowledged before (I1). Real daemons, Raft only (no Postgres): "x"
// is committed on {leader, w} while n is down; then the leader and w stop, w's
// data directory is wiped, and n and w start. With the rejoin guard they elect
// no leader until the old leader returns, and "x" survives; without it
// (OGEL_UNSAFE=no-rejoin-guard) they elect one that never had "x".

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DaemonCluster } from './helpers/daemons.js';
import { setTimeout as sleep } from 'node:timers/promises';

const IDS = ['n1', 'n2', 'n3'];
/** No Postgres: these nodes run the control plane only. */
const RAFT_ONLY = 'postgres:\n  binDir: /nonexistent/ogel-raft-only\n';
/** A leaderless window this long is many election timeouts (tickMs 20, electionTicks 10: 200-400 ms each). */
const NO_LEADER_WINDOW_MS = 3_000;

interface LocalStatus {
  leader: string | null;
  rejoining?: boolean;
  maintenance: { reason: string | null };
}

async function localStatus(c: DaemonCluster, id: string): Promise<LocalStatus | undefined> {
  const r = await c.get(id, '/v1/status?stale=true');
  return r.status === 200 ? (r.body as LocalStatus) : undefined;
}

/** Commits "x" on the leader and w only; leaves n and w running on their own, w freshly wiped. */
async function wipeAfterCommit(c: DaemonCluster, env: NodeJS.ProcessEnv): Promise<{ leader: string; w: string; n: string }> {
  await Promise.all(IDS.map((id) => c.start(id, [], env)));
  const leader = await c.waitForLeader(20_000);
  // A new cluster's nodes start rejoining too; they end it at the first election or the first commit after it.
  for (const id of IDS) await c.waitFor(async () => (await localStatus(c, id))?.rejoining === false, `${id} to end rejoining`, 10_000);
  const [w, n] = IDS.filter((id) => id !== leader) as [string, string];
  await c.kill9(n);
  const paused = await c.send(leader, 'POST', '/v1/pause', { reason: 'x' });
  assert.equal(paused.status, 200, JSON.stringify(paused.body));
  await c.waitFor(async () => (await localStatus(c, w))?.maintenance.reason === 'x', `${w} to hold x`, 10_000);
  await c.kill9(leader);
  await c.kill9(w);
  await rm(join(c.dir, 'data', w), { recursive: true, force: true });
  await Promise.all([c.start(n, [], env), c.start(w, [], env)]);
  return { leader, w, n };
}

describe('a wiped node rejoins without a vote (I1)', () => {
  it('n and the wiped w elect no leader without x; once the old leader is back, x is everywhere and w votes again', { timeout: 90_000 }, async () => {
    const c = await DaemonCluster.create(IDS, RAFT_ONLY);
    try {
      const { leader, w, n } = await wipeAfterCommit(c, {});
      assert.ok(
        c.nodes.get(w)!.log.some((l) => l.includes('rejoins without voting or acknowledging') && l.includes('start them, or check the network')),
        'the wiped node says what it does and the fix, in one line',
      );
      assert.equal((await localStatus(c, w))?.rejoining, true);
      assert.ok(existsSync(join(c.dir, 'data', w, 'raft-rejoining')), 'the marker survives a restart while catching up');
      const deadline = Date.now() + NO_LEADER_WINDOW_MS;
      while (Date.now() < deadline) {
        for (const id of [n, w]) assert.equal((await localStatus(c, id))?.leader ?? null, null, `${id} sees no leader: w abstains, n alone is no quorum`);
        await sleep(50);
      }
      await c.start(leader);
      await c.waitForLeader(20_000);
      for (const id of IDS) {
        await c.waitFor(
          async () => {
            const s = await localStatus(c, id);
            return s?.maintenance.reason === 'x' && s.rejoining === false;
          },
          `${id} to hold x and not be rejoining`,
          20_000,
        );
      }
      // The marker goes once the Ready that ended rejoining is on disk, just after status shows it.
      await c.waitFor(async () => !existsSync(join(c.dir, 'data', w, 'raft-rejoining')), 'the marker to be removed once w rejoined', 10_000);
      assert.ok(c.nodes.get(w)!.log.some((l) => l.includes('rejoined the cluster')));
    } finally {
      await c.destroy();
    }
  });

  it('without the guard (OGEL_UNSAFE=no-rejoin-guard), n and the wiped w elect a leader that never had x', { timeout: 90_000 }, async () => {
    const c = await DaemonCluster.create(IDS, RAFT_ONLY);
    try {
      const { n, w } = await wipeAfterCommit(c, { OGEL_UNSAFE: 'no-rejoin-guard' });
      const elected = await c.waitForLeader(20_000);
      assert.ok([n, w].includes(elected));
      const s = await localStatus(c, elected);
      assert.notEqual(s?.maintenance.reason, 'x', "the committed x is not in the new leader's state: lost");
    } finally {
      await c.destroy();
    }
  });
});
