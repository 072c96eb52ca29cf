// Raft paper §5.2 "Leader election", with the dissertation's pre-vote (§9.6) and
// check-quorum / leader lease (§6.2, §4.2.3) extensions that the core enables by default.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvariantError } from '../src/core/assert.js';
import { message, MessageType, NONE, StateRole, type Message } from '../src/core/types.js';
import { Cluster } from './helpers/cluster.js';

const types = (ms: Message[]) => ms.map((m) => MessageType[m.type]);

describe('§5.2 leader election', () => {
  it('§5.2 an election timeout starts a pre-vote (no term change), and a won pre-vote starts the vote in the next term', () => {
    const c = new Cluster({ size: 3 });
    const r1 = c.raft('1');
    assert.equal(r1.term, 1, 'a bootstrapped member starts in term 1');
    let ticks = 0;
    while (r1.role === StateRole.Follower) {
      c.tick('1');
      ticks++;
      assert.ok(ticks <= 20, 'node 1 never timed out');
    }
    assert.equal(ticks, 11, 'random() = 0.15 gives a timeout of 10 + floor(1.5) ticks');
    assert.equal(r1.role, StateRole.PreCandidate);
    assert.equal(r1.term, 1, 'pre-vote does not bump the term');

    c.process('1');
    const preVotes = c.take();
    assert.deepEqual(types(preVotes), ['PreVote', 'PreVote']);
    assert.ok(
      preVotes.every((m) => m.term === 2),
      'a pre-vote asks for the next term',
    );
    c.deliver(preVotes);
    c.process('2');
    c.process('3');
    assert.equal(c.raft('2').term, 1, 'granting a pre-vote changes neither term...');
    assert.equal(c.raft('2').vote, NONE, '...nor vote');
    const preResps = c.take();
    assert.deepEqual(types(preResps), ['PreVoteResp', 'PreVoteResp']);
    assert.ok(preResps.every((m) => !m.reject));

    c.deliver(preResps);
    assert.equal(r1.role, StateRole.Candidate);
    assert.equal(r1.term, 2, 'the real campaign increments the term');
    assert.equal(r1.vote, '1', 'and votes for itself');
    c.process('1');
    const votes = c.take();
    assert.deepEqual(types(votes), ['Vote', 'Vote']);
    c.deliver(votes);
    c.process('2');
    c.process('3');
    assert.equal(c.raft('2').vote, '1');
    c.deliver(c.take());
    assert.equal(r1.role, StateRole.Leader);
    c.stabilize();
    for (const id of ['2', '3']) assert.equal(c.raft(id).lead, '1');
    assert.equal(r1.log.committed, 2, "the new leader's no-op commits");
  });

  it('§5.2 a candidate that receives votes from a majority becomes leader; one rejected by a majority returns to follower', () => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    c.raw('1').campaign();
    c.raw('2').campaign(); // a split vote: both candidates in term 2
    c.process('1');
    c.process('2');
    // 3 hears from 1 first, then from 2.
    c.deliver(c.take((m) => m.from === '1' && m.to === '3'));
    c.deliver(c.take((m) => m.from === '2' && m.to === '3'));
    c.deliver(c.take((m) => m.type === MessageType.Vote)); // 1 <-> 2: each already voted for itself
    c.stabilize();
    assert.equal(c.raft('1').role, StateRole.Leader);
    assert.equal(c.raft('2').role, StateRole.Follower);
    assert.equal(c.raft('2').term, 2);
    assert.equal(c.raft('2').lead, '1');
  });

  it('§5.2 each server votes for at most one candidate per term, also after a crash (the vote is persisted)', () => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    c.raw('1').campaign();
    c.process('1');
    const voteFrom1 = c.take((m) => m.to === '3')[0]!;
    c.deliver(voteFrom1);
    c.process('3');
    const grant = c.take((m) => m.from === '3');
    assert.equal(grant.length, 1);
    assert.equal(grant[0]!.reject, false);
    assert.deepEqual(c.node('3').storage.hardState(), { term: 2, vote: '1', commit: 1 }, 'the vote is on disk');

    c.raw('2').campaign();
    c.process('2');
    const voteFrom2 = c.take((m) => m.to === '3')[0]!;
    assert.equal(voteFrom2.term, 2, 'a rival candidate in the same term');
    c.deliver(voteFrom2);
    c.process('3');
    assert.deepEqual(
      c.take((m) => m.from === '3').map((m) => m.reject),
      [true],
      'rejected: already voted for 1 in term 2',
    );

    c.crash('3');
    c.restart('3');
    assert.equal(c.raft('3').vote, '1', 'the vote comes back from storage');
    c.deliver(voteFrom2);
    c.process('3');
    assert.deepEqual(
      c.take((m) => m.from === '3').map((m) => m.reject),
      [true],
      'still rejected after the restart',
    );
    c.deliver(voteFrom1);
    c.process('3');
    assert.deepEqual(
      c.take((m) => m.from === '3').map((m) => m.reject),
      [false],
      'a retransmitted request of the candidate it voted for is granted again',
    );
  });

  it('§5.2 election timeouts are randomized in [electionTick, 2*electionTick)', () => {
    const cases: [number, number][] = [
      [0, 10],
      [0.05, 10],
      [0.1, 11],
      [0.5, 15],
      [0.95, 19],
      [0.999999, 19],
    ];
    for (const [r, expected] of cases) {
      const c = new Cluster({ size: 3, random: { '1': r } });
      const r1 = c.raft('1');
      let ticks = 0;
      while (r1.role === StateRole.Follower) {
        c.tick('1');
        ticks++;
      }
      assert.equal(ticks, expected, `random() = ${r}`);
      assert.ok(ticks >= r1.cfg.electionTick && ticks < 2 * r1.cfg.electionTick);
    }
    assert.throws(() => new Cluster({ size: 3, random: { '1': 1 } }), InvariantError, 'random() must return [0, 1)');
  });

  it('§5.1 a leader that receives a request with a higher term steps down to follower', () => {
    const c = new Cluster({ size: 3, config: { preVote: false, checkQuorum: false } });
    c.campaign('1');
    assert.equal(c.raft('1').role, StateRole.Leader);
    c.isolate('3');
    c.raw('3').campaign(); // term 3, lost in the partition
    c.stabilize();
    c.recover();
    c.raw('3').campaign(); // term 4
    c.process('3');
    c.deliver(c.take((m) => m.to === '1'));
    assert.equal(c.raft('1').role, StateRole.Follower);
    assert.equal(c.raft('1').term, 4);
    c.stabilize();
    assert.equal(c.leader(), '3', "3's log is as up to date as anyone's, so it wins term 4");
  });

  it('§9.6 pre-vote: a partitioned follower does not raise its term, and on rejoining does not disrupt the leader', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.isolate('3');
    const mark = c.sent.length;
    c.tickAll(100); // ten election timeouts
    assert.ok(c.sentSince(mark, (m) => m.from === '3' && m.type === MessageType.PreVote).length >= 6, '3 kept trying');
    assert.equal(c.raft('3').term, 2, 'but its term stayed');
    assert.equal(c.raft('3').role, StateRole.PreCandidate);
    c.recover();
    c.tickAll(50);
    for (const id of c.ids()) {
      assert.equal(c.raft(id).term, 2, `node ${id}: no election happened`);
      assert.equal(c.raft(id).lead, '1');
    }
    assert.equal(c.raft('3').role, StateRole.Follower);
  });

  it('§9.6 (contrast) without pre-vote the same partition makes the rejoining node depose the leader', () => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    c.campaign('1');
    c.isolate('3');
    c.tickAll(100);
    assert.ok(c.raft('3').term > 5, 'every timeout bumped the isolated node’s term');
    c.recover();
    c.tickAll(50);
    assert.ok(c.raft('1').term > 2, 'the leader of term 2 was deposed');
    assert.equal(c.leaders().length, 1);
  });

  it('§6.2 check-quorum: a leader that hears from no majority for an election timeout steps down', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.isolate('1');
    const r1 = c.raft('1');
    let ticks = 0;
    while (r1.role === StateRole.Leader) {
      c.tick('1');
      c.process('1');
      ticks++;
      assert.ok(ticks <= 2 * r1.cfg.electionTick, 'still leader after two election timeouts');
    }
    assert.equal(r1.role, StateRole.Follower);
    assert.equal(r1.term, 2, 'stepping down does not change the term');
    assert.equal(r1.lead, NONE);
    c.tickUntil(() => c.leader() !== undefined && c.leader() !== '1');
    assert.notEqual(c.leader(), '1');
  });

  it('§4.2.3 a follower in lease (it heard from a leader within the election timeout) ignores (pre-)votes of a higher term', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.tickAll(1);
    const r2 = c.raft('2');
    const vote = message({ type: MessageType.Vote, from: '3', to: '2', term: 9, index: 100, logTerm: 8 });
    const preVote = { ...vote, type: MessageType.PreVote };
    c.deliver([vote, preVote]);
    c.process('2');
    assert.deepEqual(
      c.take((m) => m.from === '2'),
      [],
      'no answer at all',
    );
    assert.equal(r2.term, 2);
    assert.equal(r2.vote, '1', 'its vote of term 2 stands');
    assert.equal(r2.lead, '1');

    // Once the leader has been silent for an election timeout, the same request is granted.
    c.isolate('1');
    c.tick('2', r2.cfg.electionTick);
    c.deliver(vote);
    c.process('2');
    const resp = c.take((m) => m.from === '2');
    assert.deepEqual(types(resp), ['VoteResp']);
    assert.equal(resp[0]!.reject, false);
    assert.equal(r2.term, 9);
    assert.equal(r2.vote, '3');
  });
});
