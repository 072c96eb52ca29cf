// Leadership transfer (Raft dissertation §3.10): the leader brings the target up to
// date, stops accepting proposals, and sends it TimeoutNow; the target campaigns at
// once (no pre-vote), and voters grant that vote even while in lease.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProposalDroppedError } from '../src/core/raft.js';
import { MessageType, NONE, StateRole, type Message } from '../src/core/types.js';
import { Cluster } from './helpers/cluster.js';

const is = (type: MessageType, from?: string, to?: string) => (m: Message) =>
  m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to);

describe('§3.10 leadership transfer', () => {
  it('§3.10 to a caught-up follower: TimeoutNow at once, proposals refused meanwhile, the target wins the next term', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.propose('1', 'a');
    c.stabilize();
    c.raw('1').transferLeader('2');
    assert.equal(c.raft('1').leadTransferee, '2');
    assert.throws(() => c.propose('1', 'refused'), ProposalDroppedError);
    const out = c.process('1');
    assert.deepEqual(
      out.map((m) => [MessageType[m.type], m.to]),
      [['TimeoutNow', '2']],
    );
    c.stabilize();
    assert.equal(c.leader(), '2');
    assert.equal(c.raft('2').term, 3);
    assert.equal(c.raft('1').role, StateRole.Follower);
    assert.equal(c.raft('1').lead, '2');
    assert.equal(c.sent.filter(is(MessageType.PreVote)).length, 1 * 2, 'only the first election used pre-vote');
    c.propose('2', 'b');
    c.stabilize();
    for (const id of c.ids()) assert.deepEqual(c.appliedData(id), ['a', 'b']);
  });

  it('§3.10 to a lagging follower: the leader first brings it up to date, then sends TimeoutNow', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const undrop = c.dropIf(is(MessageType.App, '1', '3'));
    const last = c.propose('1', 'a', 'b', 'c');
    c.stabilize();
    assert.ok(c.raft('3').log.lastIndex() < last);
    c.raw('1').transferLeader('3');
    undrop();
    const mark = c.sent.length;
    c.stabilize();
    const toTarget = c.sentSince(mark, (m) => m.from === '1' && m.to === '3' && (m.type === MessageType.App || m.type === MessageType.TimeoutNow));
    const tn = toTarget.findIndex(is(MessageType.TimeoutNow));
    const catchUp = toTarget.findIndex((m) => m.type === MessageType.App && m.entries.some((e) => e.index === last));
    assert.ok(catchUp >= 0 && tn > catchUp, 'entries first, TimeoutNow after the target acknowledged them');
    assert.equal(c.leader(), '3');
    assert.deepEqual(c.appliedData('3'), ['a', 'b', 'c']);
  });

  it('§3.10 a transfer to an unreachable target is aborted after an election timeout, and proposals are accepted again', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.isolate('3');
    c.raw('1').transferLeader('3');
    c.tickAll(9);
    assert.equal(c.raft('1').leadTransferee, '3', 'still waiting after 9 ticks');
    assert.throws(() => c.propose('1', 'refused'), ProposalDroppedError);
    c.tickAll(1);
    assert.equal(c.raft('1').leadTransferee, NONE, 'aborted after electionTick = 10 ticks');
    assert.equal(c.leader(), '1');
    assert.equal(c.raft('1').term, 2);
    c.propose('1', 'accepted');
    c.stabilize();
    assert.deepEqual(c.appliedData('2'), ['accepted']);
  });

  it('§3.10 transferLeader() without a target picks the most caught-up voter', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const undrop = c.dropIf(is(MessageType.App, '1', '2'));
    c.propose('1', 'a');
    c.stabilize();
    undrop();
    c.raw('1').transferLeader();
    assert.equal(c.raft('1').leadTransferee, '3', 'node 3 has everything, node 2 does not');
    c.stabilize();
    assert.equal(c.leader(), '3');
  });

  it('§3.10 a transfer requested on a follower is forwarded to the leader', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.raw('3').transferLeader('2');
    c.stabilize();
    // (The forwarded request names the target in `from`, etcd's convention, so it is
    // matched here by type and destination only.)
    assert.equal(c.sent.filter(is(MessageType.TransferLeader, undefined, '1')).length, 1);
    assert.equal(c.leader(), '2');
  });

  it('§3.10 a voter in lease ignores an ordinary campaign but grants the vote of a transfer campaign', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.tickAll(1);
    const r3 = c.raft('3');
    const inLease = () => r3.lead === '1' && r3.electionElapsedTicks() < r3.cfg.electionTick;

    // An ordinary campaign by 2: node 3, in lease, does not even answer.
    c.raw('2').campaign();
    c.process('2');
    assert.ok(inLease());
    c.deliverWhere(is(MessageType.PreVote, '2', '3'));
    assert.deepEqual(c.process('3'), []);
    c.take();
    c.tickAll(1); // the leader's heartbeat brings 2 back to follower
    assert.equal(c.raft('2').role, StateRole.Follower);

    // The same node campaigning because of TimeoutNow.
    c.raw('1').transferLeader('2');
    c.process('1');
    c.deliverWhere(is(MessageType.TimeoutNow, '1', '2'));
    c.process('2');
    const votes = c.take(is(MessageType.Vote, '2'));
    assert.equal(votes.length, 2, 'a real vote at once, no pre-vote');
    assert.ok(inLease());
    c.deliver(votes.filter((m) => m.to === '3'));
    const resp = c.process('3');
    assert.deepEqual(
      resp.map((m) => [MessageType[m.type], m.reject]),
      [['VoteResp', false]],
      'granted although node 3 heard from leader 1 within the election timeout',
    );
    c.deliver(votes.filter((m) => m.to === '1'));
    c.stabilize();
    assert.equal(c.leader(), '2');
  });
});
