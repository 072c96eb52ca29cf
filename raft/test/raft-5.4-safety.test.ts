// Raft paper §5.4 "Safety": the election restriction (§5.4.1), the commit rule for
// entries of earlier terms (§5.4.2, Figure 8), and persist-before-acknowledge for the
// leader's own log (a leader counts itself towards a quorum only for what is on disk).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { message, MessageType, StateRole, type Message } from '../src/core/types.js';
import { bytes, Cluster, text } from './helpers/cluster.js';

const isAppFrom =
  (from: string, ...to: string[]) =>
  (m: Message) =>
    m.type === MessageType.App && m.from === from && (to.length === 0 || to.includes(m.to));

describe('§5.4.1 election restriction', () => {
  it('§5.4.1 a voter grants its vote only to a candidate whose log is at least as up to date (last term first, then length)', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.propose('1', 'a');
    c.stabilize();
    // Node 2's log: ..., (2, t2), (3, t2). Restart it so it remembers no leader (no lease).
    c.crash('2');
    c.restart('2');
    const cases: { lastTerm: number; lastIndex: number; grant: boolean; why: string }[] = [
      { lastTerm: 1, lastIndex: 10, grant: false, why: 'an older last term loses, however long the log' },
      { lastTerm: 2, lastIndex: 2, grant: false, why: 'same last term, shorter log' },
      { lastTerm: 2, lastIndex: 3, grant: true, why: 'same last term, same length' },
      { lastTerm: 2, lastIndex: 4, grant: true, why: 'same last term, longer log' },
      { lastTerm: 3, lastIndex: 1, grant: true, why: 'a newer last term wins, however short the log' },
    ];
    let term = 10;
    for (const k of cases) {
      term++; // a new term each time: one vote per term
      c.deliver(message({ type: MessageType.Vote, from: '3', to: '2', term, index: k.lastIndex, logTerm: k.lastTerm }));
      c.process('2');
      const resp = c.take((m) => m.from === '2');
      assert.equal(resp.length, 1);
      assert.equal(resp[0]!.type, MessageType.VoteResp);
      assert.equal(!resp[0]!.reject, k.grant, k.why);
    }
  });

  it('§5.4.1 a node missing a committed entry cannot be elected; an up-to-date one can (leader completeness)', () => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    c.campaign('1');
    c.isolate('3');
    c.propose('1', 'committed-without-3');
    c.stabilize();
    assert.deepEqual(c.appliedData('1'), ['committed-without-3']);
    c.crash('1');
    c.recover();
    c.expireLeases('3');
    c.campaign('3');
    assert.notEqual(c.raft('3').role, StateRole.Leader, '2 refused: 3 lacks the committed entry');
    c.elect('2');
    c.stabilize();
    assert.deepEqual(c.appliedData('3'), ['committed-without-3'], 'the entry survived the leader change');
  });
});

// ---------------------------------------------------------------------------
// Figure 8 of the Raft paper, step by step, with five nodes S1..S5 and the messages
// of the interesting steps delivered by hand. Indexes are shifted by one: index 1 is
// the bootstrap snapshot and index 2 the no-op of S1's first term (committed
// everywhere), so the paper's index 1 is our index 2 and its index 2 is our index 3.
//
//  (a) S1 leads term 2 and replicates index 3 ('x', term 2) to S2 only.
//  (b) S1 crashes; S5 is elected in term 3 by S3, S4, S5 and appends index 3 (term 3).
//  (c) S5 crashes; S1 restarts, is elected in term 4 and replicates 'x' to S3 and S4:
//      'x' is now on S1..S4, a majority. It must NOT count as committed: an entry of an
//      earlier term commits only by counting replicas of an entry of the leader's own
//      term (§5.4.2). S1's own term-4 no-op (index 4) is held in the network.
//  (d) S1 crashes; S5 is elected in term 5 by S2, S3, S4 (its last term 3 beats their 2)
//      and overwrites index 3 everywhere.
// ---------------------------------------------------------------------------

const FIG8 = { preVote: false, checkQuorum: false, maxSizePerMsgBytes: 1 } as const;

/** Runs (a)..(c). On return S1 leads term 4 and its term-4 Apps to S3, S4 are still queued (held). */
function figure8Through_c(unsafe: boolean): { c: Cluster; releaseHold: () => void } {
  const c = new Cluster({ size: 5, config: { ...FIG8, ...(unsafe ? { unsafe: { commitByCountingAnyTerm: true } } : {}) } });
  // (a)
  c.campaign('1');
  for (const id of c.ids()) assert.equal(c.raft(id).log.committed, 2);
  const onlyTo2 = c.dropIf((m) => isAppFrom('1')(m) && m.to !== '2');
  c.propose('1', 'x');
  c.stabilize();
  onlyTo2();
  assert.equal(c.raft('1').term, 2);
  assert.equal(c.raft('1').log.committed, 2, "(a) 2 of 5 have 'x': it does not commit");
  assert.deepEqual(c.logTerms('2'), ['2:2', '3:2']);
  // (b)
  c.crash('1');
  const s5Silent = c.dropIf(isAppFrom('5'));
  c.campaign('5');
  assert.equal(c.raft('5').role, StateRole.Leader, '(b) S5 elected by S3, S4');
  assert.equal(c.raft('5').term, 3);
  assert.deepEqual(c.logTerms('5'), ['2:2', '3:3']);
  c.crash('5');
  s5Silent();
  // (c)
  c.restart('1');
  const releaseHold = c.hold(isAppFrom('1'));
  c.campaign('1');
  assert.equal(c.raft('1').role, StateRole.Candidate, 'term 3: S3 and S4 already voted for S5');
  c.campaign('1');
  assert.equal(c.raft('1').role, StateRole.Leader);
  assert.equal(c.raft('1').term, 4);
  c.take(isAppFrom('1', '2', '5')); // lost: S2 keeps exactly its term-2 entries
  c.deliverWhere(isAppFrom('1', '3', '4')); // probes at prev index 3: rejected
  c.stabilize();
  c.deliverWhere((m) => isAppFrom('1', '3', '4')(m) && m.entries.length > 0 && m.entries.every((e) => e.term === 2)); // 'x'
  c.stabilize();
  for (const id of ['2', '3', '4']) assert.deepEqual(c.logTerms(id), ['2:2', '3:2'], `(c) S${id}`);
  assert.deepEqual(c.logTerms('1'), ['2:2', '3:2', '4:4']);
  const pr = c.raw('1').status().progress;
  assert.deepEqual(
    ['3', '4'].map((id) => pr.find((p) => p.id === id)!.match),
    [3, 3],
    "S1 knows that S1, S3, S4 store 'x': a majority",
  );
  return { c, releaseHold };
}

/** (d): S1 crashes, S5 restarts and wins term 5, overwriting index 3. */
function figure8_d(c: Cluster, releaseHold: () => void): void {
  c.take(isAppFrom('1'));
  releaseHold();
  c.crash('1');
  c.restart('5');
  c.campaign('5');
  assert.notEqual(c.raft('5').role, StateRole.Leader, 'term 4: S2..S4 voted for S1');
  c.campaign('5');
  assert.equal(c.raft('5').role, StateRole.Leader, '(d) S5 elected in term 5 by S2, S3, S4');
  c.stabilize();
  for (const id of ['2', '3', '4', '5']) assert.deepEqual(c.logTerms(id), ['2:2', '3:3', '4:5'], `(d) S${id}`);
}

describe('§5.4.2 committing entries from previous terms (Figure 8)', () => {
  it('§5.4.2 Figure 8: an entry of an earlier term stored on a majority is not committed by counting replicas, so S5 may safely overwrite it', () => {
    const { c, releaseHold } = figure8Through_c(false);
    assert.equal(c.raft('1').log.committed, 2, "(c) 'x' is on a majority but not committed");
    assert.deepEqual(c.appliedData('1'), []);
    figure8_d(c, releaseHold);
    c.restart('1');
    c.tickAll(3);
    for (const id of c.ids()) {
      assert.deepEqual(c.logTerms(id), ['2:2', '3:3', '4:5'], `S${id} converged on S5's log`);
      assert.ok(!c.appliedData(id).includes('x'), `S${id} never applied the overwritten 'x'`);
    }
  });

  it('§5.4.2 Figure 8 with unsafe.commitByCountingAnyTerm: S1 commits and applies x, then S5 erases it (the bug the rule prevents)', () => {
    const { c, releaseHold } = figure8Through_c(true);
    assert.equal(c.raft('1').log.committed, 3, "the broken rule commits 'x' by counting S1, S3, S4");
    const applied = c.node('1').appliedAt(3);
    assert.equal(applied.length, 1);
    assert.equal(text(applied[0]!.data), 'x');
    assert.equal(applied[0]!.term, 2);
    figure8_d(c, releaseHold);
    const s5 = c.node('5').appliedAt(3)[0]!;
    assert.equal(s5.term, 3, 'S5 committed and applied a different entry at index 3: state-machine safety is violated');
    assert.ok(
      ['2', '3', '4', '5'].every(
        (id) =>
          !c
            .node(id)
            .storedEntries()
            .some((e) => text(e.data) === 'x'),
      ),
      "'x', committed and applied by S1, is gone from every other log",
    );
  });

  it('§5.4.2 Figure 8 (e): once an entry of the current term is on a majority, it and the earlier entries commit, and S5 can no longer win', () => {
    const { c, releaseHold } = figure8Through_c(false);
    releaseHold();
    c.stabilize(); // S1's term-4 no-op reaches S3 and S4
    assert.equal(c.raft('1').log.committed, 4, "committing index 4 (term 4) commits 'x' (term 2) with it");
    assert.deepEqual(c.appliedData('1'), ['x']);
    c.restart('5');
    c.campaign('5');
    c.campaign('5');
    assert.notEqual(c.raft('5').role, StateRole.Leader, 'S3 and S4 refuse: their last term (4) beats S5’s (3)');
    c.tickUntil(() => c.leader() !== undefined && c.ids().every((id) => c.appliedData(id).includes('x')));
    for (const id of c.ids()) assert.deepEqual(c.appliedData(id), ['x'], `S${id}`);
  });
});

describe('persist before acknowledge: the leader’s own log', () => {
  it('§5.4 a 1-node leader commits nothing until its entries are persisted (advance), because it counts only what is on disk', () => {
    const c = new Cluster({ size: 1 });
    const raw = c.raw('1');
    const storage = c.node('1').storage;
    raw.campaign();
    assert.equal(raw.raft.role, StateRole.Leader, 'a single voter wins at once');
    let rd = raw.ready();
    assert.deepEqual(
      rd.entries.map((e) => e.index),
      [2],
      'the no-op, not yet on disk',
    );
    assert.deepEqual(rd.committedEntries, []);
    assert.equal(raw.status().commit, 1, 'not committed before it is persisted');
    storage.applyUpdate({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}) });
    raw.advance(rd);
    assert.equal(raw.status().commit, 2, 'committed once advance() reports it persisted');

    rd = raw.ready();
    raw.advance(rd);
    const idx = raw.propose([bytes('y')]);
    rd = raw.ready();
    assert.deepEqual(
      rd.entries.map((e) => e.index),
      [idx],
    );
    assert.equal(rd.hardState?.commit ?? raw.status().commit, 2);
    assert.ok(!rd.committedEntries.some((e) => e.index === idx));
    assert.equal(raw.status().commit, 2);
    storage.applyUpdate({ entries: rd.entries });
    raw.advance(rd);
    assert.equal(raw.status().commit, idx);
    rd = raw.ready();
    assert.deepEqual(
      rd.committedEntries.map((e) => text(e.data)),
      ['y'],
    );
  });

  it('§5.4 a leader whose Ready is not yet advanced does not count itself: one follower ack of three is not a quorum', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const raw = c.raw('1');
    const idx = raw.propose([bytes('y')]);
    const rd = raw.ready(); // the leader's disk write is "in progress"
    c.deliver(rd.messages.filter((m) => m.to === '2'));
    c.process('2');
    c.deliver(c.take((m) => m.from === '2'));
    assert.equal(raw.raft.prs.get('2')!.match, idx, 'node 2 stored it');
    assert.equal(raw.status().commit, idx - 1, 'but the leader has not: 1 of 3');
    c.node('1').storage.applyUpdate({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}) });
    raw.advance(rd);
    assert.equal(raw.status().commit, idx, 'leader + node 2 = 2 of 3');
  });
});
