// Units of the leader's bookkeeping (Raft paper §5.3 nextIndex/matchIndex, plus
// the flow control and quorum arithmetic the core builds on).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvariantError } from '../src/core/assert.js';
import { Inflights, Progress, ProgressState, quorumMatchIndex, voteResult, VoteResult } from '../src/core/progress.js';

describe('Inflights: the bounded window of unacknowledged App messages', () => {
  it('is full once maxCount messages are outstanding', () => {
    const inf = new Inflights(3, 1 << 20);
    inf.add(5, 10);
    inf.add(7, 10);
    assert.equal(inf.full(), false);
    inf.add(9, 10);
    assert.equal(inf.full(), true);
    assert.equal(inf.count(), 3);
    assert.throws(() => inf.add(10, 1), InvariantError, 'adding to a full window is a bug');
  });

  it('is full once maxBytes are outstanding, whatever the count', () => {
    const inf = new Inflights(100, 100);
    inf.add(1, 60);
    assert.equal(inf.full(), false);
    inf.add(2, 40);
    assert.equal(inf.full(), true, '60 + 40 bytes reach the 100-byte limit');
    inf.freeLE(1);
    assert.equal(inf.full(), false, 'freeing the 60-byte message opens the window');
    inf.add(3, 100);
    assert.equal(inf.full(), true);
  });

  it('freeLE(i) frees exactly the messages whose last index is <= i', () => {
    const inf = new Inflights(10, 1 << 20);
    for (const i of [2, 4, 6, 8]) inf.add(i, 1);
    inf.freeLE(1);
    assert.equal(inf.count(), 4, 'an ack below every message frees nothing');
    inf.freeLE(5);
    assert.equal(inf.count(), 2, 'messages ending at 2 and 4 are acknowledged by an ack of 5');
    inf.freeLE(8);
    assert.equal(inf.count(), 0);
    inf.freeLE(100);
    assert.equal(inf.count(), 0);
  });

  it('freeFirstOne frees only the oldest message (a heartbeat answer unblocks one slot)', () => {
    const inf = new Inflights(2, 1 << 20);
    inf.add(3, 1);
    inf.add(4, 1);
    inf.freeFirstOne();
    assert.equal(inf.count(), 1);
    assert.equal(inf.full(), false);
    inf.freeFirstOne();
    inf.freeFirstOne(); // empty: no-op
    assert.equal(inf.count(), 0);
  });

  it('rejects indexes that do not increase (messages are sent in log order)', () => {
    const inf = new Inflights(10, 1 << 20);
    inf.add(5, 1);
    assert.throws(() => inf.add(5, 1), InvariantError);
    assert.throws(() => inf.add(4, 1), InvariantError);
  });

  it('reset empties the window', () => {
    const inf = new Inflights(1, 1);
    inf.add(1, 1);
    inf.reset();
    assert.equal(inf.count(), 0);
    assert.equal(inf.full(), false);
  });
});

describe('Progress: nextIndex and matchIndex of one follower (§5.3)', () => {
  const mk = (next: number) => new Progress(next, false, 4, 1 << 20);

  it('maybeUpdate raises match and next, never lowers them', () => {
    const pr = mk(5);
    assert.equal(pr.maybeUpdate(3), true);
    assert.equal(pr.match, 3);
    assert.equal(pr.next, 5, 'next stays ahead of the ack');
    assert.equal(pr.maybeUpdate(2), false, 'an older ack is stale');
    assert.equal(pr.match, 3);
    assert.equal(pr.maybeUpdate(8), true);
    assert.equal(pr.next, 9);
  });

  it('in Probe, only the rejection of the outstanding probe moves next (stale rejections ignored)', () => {
    const pr = mk(10); // probing with prev index 9
    pr.probeSent = true;
    assert.equal(pr.maybeDecrTo(7, 3), false, 'a rejection of an older probe (prev 7) is stale');
    assert.equal(pr.next, 10);
    assert.equal(pr.probeSent, true);
    assert.equal(pr.maybeDecrTo(9, 4), true);
    assert.equal(pr.next, 5, 'the follower hint (4) says 5 is the next index to try');
    assert.equal(pr.probeSent, false, 'the answered probe unpauses the follower');
  });

  it('in Probe, next never drops below match + 1 nor rises above the rejected index', () => {
    const pr = mk(10);
    pr.match = 6;
    assert.equal(pr.maybeDecrTo(9, 2), true);
    assert.equal(pr.next, 7, 'a hint below match is clamped to match + 1');
    const pr2 = mk(10);
    assert.equal(pr2.maybeDecrTo(9, 50), true);
    assert.equal(pr2.next, 9, 'a hint above the rejected index is clamped to it');
    const pr3 = mk(1);
    assert.equal(pr3.maybeDecrTo(0, 0), true);
    assert.equal(pr3.next, 1, 'next is at least 1');
  });

  it('in Replicate, a rejection at or below match is stale; above it, next falls back to match + 1', () => {
    const pr = mk(5);
    pr.maybeUpdate(10);
    pr.becomeReplicate();
    pr.optimisticUpdate(20);
    assert.equal(pr.maybeDecrTo(10, 0), false, 'the follower already acknowledged 10');
    assert.equal(pr.maybeDecrTo(8, 0), false);
    assert.equal(pr.next, 21);
    assert.equal(pr.maybeDecrTo(15, 3), true);
    assert.equal(pr.next, 11, 'Replicate ignores the hint: match is known');
  });

  it('isPaused: a probe waits for its answer, Replicate for window space, Snapshot always', () => {
    const pr = mk(5);
    assert.equal(pr.state, ProgressState.Probe);
    assert.equal(pr.isPaused(), false);
    pr.probeSent = true;
    assert.equal(pr.isPaused(), true);
    pr.becomeReplicate();
    assert.equal(pr.isPaused(), false);
    for (let i = 1; i <= 4; i++) pr.inflights.add(i, 1);
    assert.equal(pr.isPaused(), true);
    pr.becomeSnapshot(50);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.inflights.count(), 0, 'a state change resets the window');
  });

  it('leaving Snapshot state resumes after the snapshot index', () => {
    const pr = mk(5);
    pr.becomeSnapshot(40);
    pr.becomeProbe();
    assert.equal(pr.next, 41);
    assert.equal(pr.pendingSnapshot, 0);
  });
});

describe('quorumMatchIndex: the largest index on a majority of voters', () => {
  const of = (m: Record<string, number>) => (id: string) => m[id] ?? 0;
  it('1 voter: its own match', () => {
    assert.equal(quorumMatchIndex(['a'], of({ a: 7 })), 7);
  });
  it('2 voters: both must have it', () => {
    assert.equal(quorumMatchIndex(['a', 'b'], of({ a: 7, b: 3 })), 3);
  });
  it('3 voters: the median', () => {
    assert.equal(quorumMatchIndex(['a', 'b', 'c'], of({ a: 7, b: 3, c: 5 })), 5);
    assert.equal(quorumMatchIndex(['a', 'b', 'c'], of({ a: 7 })), 0);
  });
  it('4 voters: 3 must have it', () => {
    assert.equal(quorumMatchIndex(['a', 'b', 'c', 'd'], of({ a: 9, b: 8, c: 2, d: 1 })), 2);
    assert.equal(quorumMatchIndex(['a', 'b', 'c', 'd'], of({ a: 9, b: 8, c: 8, d: 1 })), 8);
  });
  it('5 voters: 3 must have it', () => {
    assert.equal(quorumMatchIndex(['a', 'b', 'c', 'd', 'e'], of({ a: 9, b: 8, c: 7, d: 1, e: 0 })), 7);
    assert.equal(quorumMatchIndex(['a', 'b', 'c', 'd', 'e'], of({ a: 9, b: 8 })), 0);
  });
});

describe('voteResult: an election among the voters', () => {
  const votes = (v: Record<string, boolean>) => new Map(Object.entries(v));
  const five = ['a', 'b', 'c', 'd', 'e'];
  it('is pending until a majority granted or enough rejected', () => {
    assert.equal(voteResult(five, votes({ a: true })), VoteResult.Pending);
    assert.equal(voteResult(five, votes({ a: true, b: true, c: false, d: false })), VoteResult.Pending);
  });
  it('is won with a majority of grants', () => {
    assert.equal(voteResult(five, votes({ a: true, b: true, c: true })), VoteResult.Won);
    assert.equal(voteResult(['a'], votes({ a: true })), VoteResult.Won);
  });
  it('is lost once a majority can no longer be reached', () => {
    assert.equal(voteResult(five, votes({ a: true, b: false, c: false, d: false })), VoteResult.Lost);
    assert.equal(voteResult(['a', 'b'], votes({ a: true, b: false })), VoteResult.Lost);
  });
  it('ignores votes of non-voters (learners, removed nodes)', () => {
    assert.equal(voteResult(['a', 'b', 'c'], votes({ a: true, x: true, y: true })), VoteResult.Pending);
  });
});
