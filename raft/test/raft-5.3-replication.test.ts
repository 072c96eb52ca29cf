// Raft paper §5.3 "Log replication": AppendEntries, the consistency check, nextIndex
// backtracking (with etcd-style fast backtracking by term), truncation of conflicting
// suffixes, and the flow control of the leader's pipeline.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageType, StateRole, type Message } from '../src/core/types.js';
import { Cluster } from './helpers/cluster.js';

const isApp = (from: string, to: string) => (m: Message) => m.type === MessageType.App && m.from === from && m.to === to;

/**
 * Node 1 leads term 2, is cut off and appends `n` entries nobody else gets (term 2,
 * indexes 3..n+2). Node 2 leads term 3 and commits n entries of its own, then hands
 * leadership to 3 (term 4), so the new leader starts probing node 1 at its own last
 * index, far beyond the point where the logs diverge (index 2).
 */
function divergedCluster(n: number): Cluster {
  const c = new Cluster({ size: 3 });
  c.campaign('1');
  c.isolate('1');
  for (let i = 0; i < n; i++) c.propose('1', `old${i}`);
  c.stabilize();
  c.elect('2');
  for (let i = 0; i < n; i++) c.propose('2', `new${i}`);
  c.stabilize();
  c.raw('2').transferLeader('3');
  c.stabilize();
  assert.equal(c.leader(), '3');
  assert.equal(c.raft('3').term, 4);
  assert.equal(c.raft('1').role, StateRole.Leader, 'node 1 still thinks it leads term 2');
  return c;
}

describe('§5.3 log replication', () => {
  it('§5.3 the leader replicates entries, commits them once a majority stored them, and every node applies them in order', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.propose('1', 'a', 'b');
    c.propose('1', 'c');
    c.stabilize();
    for (const id of c.ids()) {
      assert.deepEqual(c.appliedData(id), ['a', 'b', 'c'], `node ${id}`);
      assert.equal(c.raft(id).log.committed, 5);
      assert.deepEqual(
        c
          .node(id)
          .storedEntries()
          .map((e) => [e.index, e.term]),
        [
          [2, 2],
          [3, 2],
          [4, 2],
          [5, 2],
        ],
      );
    }

    // Without a majority nothing commits.
    c.isolate('2');
    c.isolate('3');
    c.propose('1', 'd');
    c.tickAll(3);
    assert.equal(c.raft('1').log.committed, 5, 'd is stored by 1 of 3 nodes only');
    c.recover();
    c.tickAll(2);
    for (const id of c.ids()) assert.deepEqual(c.appliedData(id), ['a', 'b', 'c', 'd'], `node ${id}`);
  });

  it('§5.3 a follower learns the new commit index as soon as its acknowledgement is processed, without waiting for a heartbeat', () => {
    // Regression: after a paused follower's ack, the leader must send it the commit
    // index even when it has no new entries for it (etcd: "this node may be missing
    // the latest commit index, so send it").
    const c = new Cluster({ size: 3 });
    c.campaign('1'); // no ticks at all: no heartbeat ever goes out
    for (const id of c.ids()) assert.equal(c.raft(id).log.committed, 2, `node ${id} knows the no-op is committed`);
    c.propose('1', 'x');
    c.stabilize();
    for (const id of c.ids()) assert.deepEqual(c.appliedData(id), ['x'], `node ${id}`);
  });

  it('§5.3 a follower rejects AppendEntries whose previous entry does not match; fast backtracking skips a divergent term in one round trip', () => {
    const n = 50;
    const c = divergedCluster(n);
    c.recover();
    const mark = c.sent.length;
    c.tickUntil(() => c.raft('1').log.lastIndex() === c.raft('3').log.lastIndex() && c.raft('1').log.committed === c.raft('3').log.committed);
    const apps = c.sentSince(mark, isApp('3', '1'));
    const rejects = c.sentSince(mark, (m) => m.type === MessageType.AppResp && m.from === '1' && m.to === '3' && m.reject);
    assert.equal(rejects.length, 1, 'one rejection: of the first probe, at the leader’s last index');
    assert.equal(rejects[0]!.index, n + 3, 'the probe carried the leader’s last index as prev');
    assert.equal(rejects[0]!.hintTerm, 2, 'the follower hints the term of its own conflicting tail');
    const afterReject = c.sent.indexOf(rejects[0]!);
    const nextProbe = c.sentSince(afterReject, isApp('3', '1'))[0]!;
    assert.equal(nextProbe.index, 2, 'the next probe jumps straight to the last index of term 2 the leader shares');
    assert.equal(nextProbe.entries.length, n + 2, 'and carries the whole missing suffix');
    assert.ok(apps.length <= 4, `converged with ${apps.length} App messages (one per entry would be ${n})`);
  });

  it('§5.3 the conflicting uncommitted suffix of a follower is truncated and replaced by the leader’s entries', () => {
    const n = 20;
    const c = divergedCluster(n);
    const before = c.node('1').storedEntries();
    assert.equal(before.length, n + 1);
    assert.ok(
      before.every((e) => e.term === 2),
      'node 1 holds a long tail of term 2',
    );
    c.recover();
    c.tickAll(5);
    const after = c.node('1').storedEntries();
    assert.deepEqual(
      after.map((e) => `${e.index}:${e.term}`),
      c
        .node('3')
        .storedEntries()
        .map((e) => `${e.index}:${e.term}`),
      'node 1’s log is now the leader’s',
    );
    assert.ok(!after.some((e) => e.term === 2 && e.index > 2), 'every uncommitted term-2 entry after index 2 is gone');
    assert.deepEqual(
      c.appliedData('1'),
      Array.from({ length: n }, (_, i) => `new${i}`),
      'and none of them was ever applied',
    );
  });

  it('§5.3 flow control: in Replicate state at most maxInflightMsgs App messages are unacknowledged', () => {
    const c = new Cluster({ size: 3, config: { maxInflightMsgs: 3 } });
    c.campaign('1');
    c.tickAll(1);
    const pr2 = () =>
      c
        .raw('1')
        .status()
        .progress.find((p) => p.id === '2')!;
    assert.equal(pr2().state, 'replicate');
    c.hold((m) => m.to === '2' || m.from === '2');
    for (let i = 0; i < 10; i++) {
      c.propose('1', `e${i}`);
      c.stabilize();
    }
    // Commit-only Apps (no entries) are not tracked by the window, as in etcd.
    const held = c.peek((m) => isApp('1', '2')(m) && m.entries.length > 0);
    assert.equal(held.length, 3, 'three Apps, one entry each, then the window is full');
    assert.deepEqual(
      held.map((m) => m.entries.length),
      [1, 1, 1],
    );
    assert.equal(pr2().inflight, 3);
    assert.deepEqual(c.appliedData('3').length, 10, 'node 3 is not held back by node 2');

    // One acknowledgement frees the window: everything left goes out in one message.
    c.deliver(held[0]!);
    c.take((m) => m === held[0]);
    c.process('2');
    c.deliver(c.take((m) => m.from === '2'));
    c.process('1');
    const next = c.peek((m) => isApp('1', '2')(m) && m.entries.length > 0);
    assert.equal(next.length, 3, 'one slot freed, one more App sent');
    assert.deepEqual(
      next[2]!.entries.map((e) => e.index),
      [6, 7, 8, 9, 10, 11, 12],
      'carrying the remaining 7 entries',
    );
    assert.equal(pr2().inflight, 3);
    c.recover();
    c.stabilize();
    assert.equal(c.appliedData('2').length, 10);
  });

  it('§5.3 heartbeats carry commit = min(match, committed), so a lagging follower never commits what it may not hold', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.dropIf((m) => m.type === MessageType.App && m.to === '3');
    c.propose('1', 'x', 'y');
    c.stabilize();
    assert.equal(c.raft('1').log.committed, 4);
    const mark = c.sent.length;
    c.tick('1');
    c.process('1');
    const hbs = c.sentSince(mark, (m) => m.type === MessageType.Heartbeat);
    assert.equal(hbs.find((m) => m.to === '2')!.commit, 4);
    assert.equal(hbs.find((m) => m.to === '3')!.commit, 2, 'node 3 is only known to hold up to index 2');
    c.stabilize();
    assert.equal(c.raft('3').log.committed, 2);
  });
});
