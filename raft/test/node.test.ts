// Integration tests of RaftNode: real LevelDB storage, real TCP transport, three
// nodes in one process on loopback.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NotLeaderError } from '../src/node/raft-node.js';
import { NodeCluster, put } from './helpers/node-cluster.js';

describe('RaftNode on a 3-node loopback cluster', () => {
  let c: NodeCluster;
  before(async () => {
    c = await NodeCluster.start(['n1', 'n2', 'n3'], { snapshotEveryEntries: 50, compactTrailingEntries: 10 });
  });
  after(async () => c.close());

  it('elects a leader and applies proposals on every node', async () => {
    const leader = await c.waitForLeader();
    const r = await leader.node.propose(put('a', '1'));
    assert.ok(r.index > 1);
    assert.deepEqual(r.result, { ok: true });
    await c.waitFor(() => [...c.members.values()].every((m) => m.fsm.get('a') === '1'), 'every node to apply a=1');
  });

  it('refuses a proposal on a follower, naming the leader', async () => {
    const leader = await c.waitForLeader();
    const follower = [...c.members.values()].find((m) => m.id !== leader.id)!;
    await assert.rejects(follower.node.propose(put('b', '1')), (e: unknown) => e instanceof NotLeaderError && e.leader === leader.id);
  });

  it('serves a linearizable read on a follower after a write on the leader', async () => {
    const leader = await c.waitForLeader();
    const follower = [...c.members.values()].find((m) => m.id !== leader.id)!;
    await leader.node.propose(put('r', 'fresh'));
    const index = await follower.node.read();
    assert.ok(index >= leader.node.status().commitIndex - 1);
    assert.equal(follower.fsm.get('r'), 'fresh');
  });

  it('transfers leadership to a chosen node', async () => {
    const leader = await c.waitForLeader();
    const target = [...c.members.keys()].find((id) => id !== leader.id)!;
    const started = performance.now();
    const newLeader = await leader.node.transferLeadership(target);
    assert.equal(newLeader, target);
    assert.ok(performance.now() - started < 2_000);
    const l2 = await c.waitForLeader();
    assert.equal(l2.id, target);
    await l2.node.propose(put('after-transfer', '1'));
  });

  it('transfers leadership when asked on a follower (forwarded over the transport)', async () => {
    const leader = await c.waitForLeader();
    const follower = [...c.members.values()].find((m) => m.id !== leader.id)!;
    const newLeader = await follower.node.transferLeadership();
    assert.notEqual(newLeader, leader.id);
    const target = [...c.members.keys()].find((id) => id !== newLeader)!;
    assert.equal(await follower.node.transferLeadership(target), target);
    await (await c.waitForLeader()).node.propose(put('after-forwarded-transfer', '1'));
  });

  it('elects a new leader when the leader stops, and the old one catches up after a restart', async () => {
    const leader = await c.waitForLeader();
    await c.stopMember(leader.id);
    const next = await c.waitForLeader(5_000, leader.id);
    for (let i = 0; i < 120; i++) await next.node.propose(put(`k${i % 7}`, `v${i}`));
    const restarted = await c.startMember(leader.id);
    c.publishAddresses();
    const commit = next.node.status().commitIndex;
    await c.waitFor(() => restarted.node.status().appliedIndex >= commit, `${leader.id} to catch up to ${commit}`);
    assert.equal(restarted.fsm.get('k0'), next.fsm.get('k0'));
  });

  it('adds a learner that catches up (through a snapshot), promotes it, then removes a voter', async () => {
    const leader = await c.waitForLeader();
    const n4 = await c.startMember('n4');
    c.publishAddresses();
    await leader.node.addLearner('n4');
    await c.waitFor(() => n4.node.status().appliedIndex >= leader.node.status().commitIndex, 'n4 to catch up');
    assert.equal(n4.fsm.get('k0'), leader.fsm.get('k0'));
    assert.ok(n4.storage.snapshot().meta.index > 1, 'the leader had compacted its log, so n4 must have installed a snapshot');
    await leader.node.promoteLearner('n4');
    assert.deepEqual([...leader.node.status().voters].sort(), ['n1', 'n2', 'n3', 'n4']);
    const victim = [...c.members.keys()].find((id) => id !== leader.id && id !== 'n4')!;
    await leader.node.removeNode(victim);
    await c.stopMember(victim);
    const l = await c.waitForLeader();
    await l.node.propose(put('after-removal', '1'));
    assert.equal(l.node.status().voters.length, 3);
  });
});
