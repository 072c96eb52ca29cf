// A node that lost its state (a wiped data directory) must not help a quorum
// forget what it acknowledged before (§5.4 Leader Completeness, I1). The daemon
// starts such a node with RaftConfig.rejoining; these are the rules, each with
// the history that loses a committed entry without them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { message, MessageType, StateRole } from '../src/core/types.js';
import { Cluster } from './helpers/cluster.js';

/** Ticks every live node until `cond` or `max` ticks, delivering messages between ticks. */
function run(c: Cluster, ticks: number, until: () => boolean = () => false): void {
  for (let i = 0; i < ticks && !until(); i++) {
    c.tickAll();
    c.stabilize();
  }
}

/**
 * 1 leads; 2 is cut off while "x" commits on {1, 3}; then 1 crashes and 3 loses
 * its disk. Only 1 still holds "x", and 2 never had it.
 */
function committedOnlyOnTheCrashedLeader(rejoining: boolean): Cluster {
  const c = new Cluster({ size: 3 });
  c.campaign('1');
  c.isolate('2');
  c.propose('1', 'x');
  c.stabilize();
  assert.deepEqual(c.appliedData('1'), ['x'], 'x is committed (on 1 and 3)');
  c.crash('1');
  c.wipe('3', { rejoining });
  c.recover();
  return c;
}

describe('rejoining after lost state', () => {
  it('without the rule, the wiped node elects a leader that never had a committed entry, and the entry is lost', () => {
    const c = committedOnlyOnTheCrashedLeader(false);
    run(c, 200, () => c.leader() !== undefined);
    assert.equal(c.leader(), '2', 'the empty log of 3 found 2 up to date');
    c.propose('2', 'y');
    c.stabilize();
    // State machine safety is broken: index 3 is committed as "x" on 1 and as something else on 2.
    const i = 3;
    assert.deepEqual(c.appliedData('1'), ['x'], '1 applied x, at index 3');
    assert.equal(c.node('1').storage.term(i), 2, '1 holds x (term 2) at index 3');
    assert.ok(c.raft('2').log.committed >= i, '2 committed index 3 too');
    assert.notEqual(c.raft('2').log.term(i), 2, 'as another entry');
  });

  it('a rejoining node refuses its vote to a candidate of an existing cluster, so no leader without the entry is elected', () => {
    const c = committedOnlyOnTheCrashedLeader(true);
    run(c, 300, () => c.leader() !== undefined);
    assert.equal(c.leader(), undefined, '2 cannot win without 3, and 3 abstains');
    assert.equal(c.raft('3').isRejoining(), true);
    // The old leader comes back: it holds x, so 2 votes for it, and 3 catches up from it.
    c.restart('1');
    run(c, 300, () => c.leader() !== undefined && !c.raft('3').isRejoining());
    assert.equal(c.leader(), '1', 'only 1 holds every committed entry');
    run(c, 20);
    assert.equal(c.raft('3').isRejoining(), false, 'caught up: it votes and acknowledges again');
    for (const id of ['1', '2', '3']) assert.deepEqual(c.appliedData(id), ['x'], `x survived on ${id}`);
  });

  it("a rejoining follower's acknowledgements commit nothing and keep no leader in office", () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.crash('2');
    c.wipe('3', { rejoining: true });
    const wipedAt = c.sent.length;
    run(c, 5);
    assert.equal(c.raft('1').role, StateRole.Leader);
    const before = c.raft('1').log.committed;
    c.propose('1', 'needs-two');
    c.stabilize();
    assert.equal(c.raft('3').log.lastIndex(), c.raft('1').log.lastIndex(), '3 holds the entry: it was replicated to');
    assert.equal(c.raft('1').log.committed, before, 'but its acknowledgement does not make a quorum');
    const acks = c.sentSince(wipedAt).filter((m) => m.from === '3' && (m.type === MessageType.AppResp || m.type === MessageType.HeartbeatResp));
    assert.ok(acks.length > 0 && acks.every((m) => m.rejoining === true), 'every acknowledgement says so');
    run(c, 40, () => c.raft('1').role !== StateRole.Leader);
    assert.notEqual(c.raft('1').role, StateRole.Leader, 'check-quorum: contact with a rejoining node alone does not keep a leader');
    c.restart('2');
    run(c, 300, () => c.leader() !== undefined && !c.raft('3').isRejoining());
    run(c, 20);
    assert.equal(c.raft('3').isRejoining(), false);
    for (const id of ['1', '2', '3']) assert.deepEqual(c.appliedData(id), ['needs-two']);
  });

  it('a rejoining node with part of the log does not campaign, even when told to (leadership transfer)', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.propose('1', 'a');
    c.stabilize();
    c.wipe('3', { rejoining: true });
    // It gets the log but not yet a commit of the leader's term without it: hold 2's acknowledgements.
    c.crash('2');
    run(c, 3);
    assert.equal(c.raft('3').isRejoining(), true);
    c.deliver(message({ type: MessageType.TimeoutNow, from: '1', to: '3', term: c.raft('1').term }));
    c.process('3');
    assert.equal(c.raft('3').role, StateRole.Follower, 'it stays a follower');
  });

  it('a new cluster whose nodes all start rejoining elects a leader, commits, and every node ends rejoining', () => {
    const c = new Cluster({ size: 3, config: { rejoining: true } });
    run(c, 300, () => c.leader() !== undefined);
    const leader = c.leader();
    assert.ok(leader !== undefined, 'fresh candidates get the votes of fresh nodes');
    c.propose(leader, 'first');
    c.stabilize();
    run(c, 5);
    for (const id of ['1', '2', '3']) {
      assert.equal(c.raft(id).isRejoining(), false, `${id} ended rejoining`);
      assert.deepEqual(c.appliedData(id), ['first']);
    }
  });

  it('a node that joins an existing cluster late (an empty store) catches up and then votes', () => {
    const c = new Cluster({ size: 3 });
    c.isolate('3');
    c.campaign('1');
    c.propose('1', 'before-3');
    c.stabilize();
    c.wipe('3', { rejoining: true }); // never took part: same as a wipe from its point of view
    const committedBefore = c.raft('1').log.committed;
    c.recover();
    run(c, 20, () => !c.raft('3').isRejoining());
    assert.deepEqual(c.appliedData('3'), ['before-3'], 'it caught up');
    assert.equal(c.raft('3').isRejoining(), false, 'a commit made without it ends rejoining');
    const last = c.raft('1').log.lastIndex();
    assert.ok(
      last > committedBefore && c.raft('1').log.term(last) === c.raft('1').term,
      'the leader made that commit itself, an empty entry, since the cluster was quiet',
    );
  });

  it('a deposed leader that only the rejoining node still answers commits nothing with it, and cannot overwrite what its successor committed', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.isolate('1'); // 1 still thinks it leads (term 2)
    c.elect('2'); // term 3, with 3's vote
    c.propose('2', 'z');
    c.stabilize();
    assert.deepEqual(c.appliedData('2'), ['z'], 'z committed on {2, 3}');
    c.crash('2');
    c.wipe('3', { rejoining: true }); // the other copy of z is gone
    c.recover();
    assert.equal(c.raft('1').role, StateRole.Leader, 'the deposed leader, at term 2');
    c.propose('1', 'w');
    c.stabilize();
    assert.equal(c.raft('3').log.lastIndex(), c.raft('1').log.lastIndex(), '3 follows it and holds w');
    assert.ok(!c.appliedData('1').includes('w'), 'w is not committed: its only other acknowledgement is a rejoining one');
    assert.equal(c.raft('3').isRejoining(), true, 'no commit without 3 happened, so 3 is still rejoining');
    c.restart('2');
    run(c, 300, () => c.leader() === '2' && !c.raft('3').isRejoining());
    run(c, 10);
    for (const id of ['1', '2', '3']) assert.ok(c.appliedData(id).includes('z'), `z survived on ${id}`);
  });
});
