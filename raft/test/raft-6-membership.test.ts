// Raft paper §6 "Cluster membership changes", in the dissertation's single-server form
// (§4.1): one add, promote or remove at a time, effective on each node as soon as the
// entry is in its log (committed or not), so a node's configuration is a function of
// its log.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeConfChange } from '../src/core/conf-change.js';
import { ProposalDroppedError } from '../src/core/raft.js';
import { ConfChangeType, EntryType, MessageType, StateRole } from '../src/core/types.js';
import { Cluster } from './helpers/cluster.js';

const addLearner = (node: string) => ({ type: ConfChangeType.AddLearner, node });
const promote = (node: string) => ({ type: ConfChangeType.PromoteLearner, node });
const remove = (node: string) => ({ type: ConfChangeType.RemoveNode, node });

/** A 3-voter cluster led by 1 with learner 4 (fresh storage) caught up. */
function withLearner(): Cluster {
  const c = new Cluster({ size: 3 });
  c.campaign('1');
  c.propose('1', 'a');
  c.stabilize();
  c.addNode('4');
  c.proposeConfChange('1', addLearner('4'));
  c.stabilize();
  return c;
}

describe('§6 cluster membership changes', () => {
  it('§6 a learner added to the cluster receives the whole log (bootstrap snapshot, then entries)', () => {
    const c = withLearner();
    assert.deepEqual(c.raft('1').conf(), { voters: ['1', '2', '3'], learners: ['4'] });
    assert.deepEqual(c.raft('4').conf(), { voters: ['1', '2', '3'], learners: ['4'] }, 'the learner knows the configuration too');
    assert.equal(c.node('4').restoredSnapshots.length, 1, 'it started from the bootstrap snapshot');
    assert.deepEqual(c.appliedData('4'), ['a']);
    assert.equal(c.raft('4').log.lastIndex(), c.raft('1').log.lastIndex());
  });

  it('§6 a learner neither counts towards commit nor is asked for votes, and never campaigns', () => {
    const c = withLearner();
    c.isolate('2');
    c.isolate('3');
    const idx = c.propose('1', 'b');
    c.stabilize();
    assert.equal(c.raft('4').log.lastIndex(), idx, 'the learner stored it');
    assert.ok(c.raft('1').log.committed < idx, 'leader + learner is not a majority of 3 voters');
    c.recover();
    c.tickAll(2);
    assert.deepEqual(c.appliedData('4'), ['a', 'b']);

    // Cut off from the leader, the learner never starts an election.
    c.isolate('1');
    const mark = c.sent.length;
    c.tickAll(60);
    assert.deepEqual(
      c.sentSince(mark, (m) => m.from === '4' && (m.type === MessageType.PreVote || m.type === MessageType.Vote)),
      [],
    );
    assert.deepEqual(
      c.sentSince(mark, (m) => m.to === '4' && (m.type === MessageType.PreVote || m.type === MessageType.Vote)),
      [],
      'nobody asks it',
    );
    assert.equal(c.raft('4').role, StateRole.Follower);
    assert.ok(['2', '3'].includes(c.leader()!), 'the voters elected a leader among themselves');
  });

  it('§6 promoting a learner makes it a voter: it counts towards commit and may campaign', () => {
    const c = withLearner();
    c.proposeConfChange('1', promote('4'));
    c.stabilize();
    for (const id of c.ids()) assert.deepEqual(c.raft(id).conf(), { voters: ['1', '2', '3', '4'], learners: [] }, `node ${id}`);
    c.isolate('2');
    c.isolate('3');
    const idx = c.propose('1', 'b');
    c.stabilize();
    assert.ok(c.raft('1').log.committed < idx, '2 of 4 voters is not a majority');
    c.recover();
    c.isolate('3');
    c.tickAll(2);
    assert.ok(c.raft('1').log.committed >= idx, '1, 2, 4: 3 of 4');
    c.recover();
    c.elect('4');
    assert.equal(c.leader(), '4');
  });

  it('§6 removing a follower: the rest commit without it, and it cannot disrupt them (pre-vote + lease)', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.proposeConfChange('1', remove('3'));
    c.stabilize();
    assert.deepEqual(c.raft('1').conf(), { voters: ['1', '2'], learners: [] });
    c.isolate('3');
    c.propose('1', 'after');
    c.stabilize();
    assert.deepEqual(c.appliedData('2'), ['after']);
    c.recover();
    const term = c.raft('1').term;
    c.tickAll(100);
    assert.equal(c.leader(), '1');
    assert.equal(c.raft('1').term, term, 'the removed node, timing out, never bumped the term');
    assert.equal(c.raft('2').term, term);
  });

  it('§6 removing the leader: it replicates the change without counting itself, steps down once it commits, and sends TimeoutNow to the most caught-up voter', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.propose('1', 'a');
    c.stabilize();
    const idx = c.proposeConfChange('1', remove('1'));
    assert.deepEqual(c.raft('1').conf().voters, ['2', '3'], 'effective as soon as appended');
    assert.equal(c.raft('1').role, StateRole.Leader, 'the leader keeps leading until the change commits');
    assert.throws(() => c.propose('1', 'refused'), ProposalDroppedError);

    const releaseAcksOf3 = c.hold((m) => m.type === MessageType.AppResp && m.from === '3');
    c.stabilize();
    assert.equal(c.raft('2').log.lastIndex(), idx);
    assert.equal(c.raft('1').role, StateRole.Leader);
    assert.ok(c.raft('1').log.committed < idx, 'leader + 2 would be 2 of the old 3 voters, but the leader no longer counts: only 1 of the new 2');

    const mark = c.sent.length;
    releaseAcksOf3();
    c.stabilize();
    const timeoutNow = c.sentSince(mark, (m) => m.type === MessageType.TimeoutNow);
    assert.equal(timeoutNow.length, 1);
    assert.equal(timeoutNow[0]!.from, '1');
    assert.equal(timeoutNow[0]!.to, '2', 'both voters are caught up; the first one wins the tie');
    assert.equal(c.raft('1').role, StateRole.Follower);
    assert.equal(c.raft('1').log.committed, idx);
    assert.equal(c.leader(), '2');
    assert.equal(c.raft('2').term, 3, 'elected at once in the next term, without waiting for a timeout');
    c.propose('2', 'b');
    c.stabilize();
    assert.deepEqual(c.appliedData('3'), ['a', 'b'], 'the two remaining voters commit on their own');
    c.tickAll(50);
    assert.equal(c.leader(), '2', 'the removed node never campaigns');
    assert.equal(c.raft('1').role, StateRole.Follower);
  });

  it('§6 one change at a time: a second change is refused with ProposalDroppedError while the first is uncommitted', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.addNode('4');
    c.addNode('5');
    const releaseAcks = c.hold((m) => m.type === MessageType.AppResp);
    c.proposeConfChange('1', addLearner('4'));
    c.stabilize();
    assert.throws(() => c.proposeConfChange('1', addLearner('5')), ProposalDroppedError);
    releaseAcks();
    c.stabilize();
    assert.throws(
      () =>
        c.raft('1').propose([
          { type: EntryType.ConfChange, data: encodeConfChange(addLearner('5')) },
          { type: EntryType.ConfChange, data: encodeConfChange(promote('4')) },
        ]),
      ProposalDroppedError,
      'two changes in one proposal',
    );
    c.proposeConfChange('1', addLearner('5'));
    c.stabilize();
    assert.deepEqual(c.raft('2').conf().learners, ['4', '5']);
  });

  it('§6 a new leader refuses membership changes until it has committed an entry of its own term', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const releaseAcks = c.hold((m) => m.type === MessageType.AppResp && m.to === '2');
    c.elect('2');
    assert.equal(c.raft('2').committedEntryInCurrentTerm(), false);
    assert.throws(
      () => c.proposeConfChange('2', addLearner('4')),
      (e: unknown) => e instanceof ProposalDroppedError && /its term/.test(e.message),
    );
    c.propose('2', 'ordinary entries are fine');
    releaseAcks();
    c.stabilize();
    c.addNode('4');
    c.proposeConfChange('2', addLearner('4'));
    c.stabilize();
    assert.deepEqual(c.raft('4').conf().learners, ['4']);
  });

  it('§6 a configuration follows the log: truncating an uncommitted conf entry reverts the follower’s configuration', () => {
    const c = new Cluster({ size: 5 });
    c.campaign('1');
    c.dropIf((m) => m.from === '1' && ['3', '4', '5'].includes(m.to));
    const idx = c.proposeConfChange('1', addLearner('6'));
    c.stabilize();
    assert.deepEqual(c.raft('2').conf().learners, ['6'], 'in effect on node 2 as soon as appended');
    assert.ok(c.raft('2').log.committed < idx);
    c.crash('1');
    c.isolate('2');
    c.elect('3');
    c.propose('3', 'y');
    c.stabilize();
    c.recover();
    c.tickAll(3);
    assert.deepEqual(c.raft('2').conf(), { voters: ['1', '2', '3', '4', '5'], learners: [] }, 'the change went with its entry');
    assert.deepEqual(c.logTerms('2'), c.logTerms('3'));
    assert.deepEqual(c.appliedData('2'), ['y']);
    c.restart('1');
    c.tickAll(3);
    assert.deepEqual(c.raft('1').conf().learners, [], 'so did the old leader’s');
  });
});
