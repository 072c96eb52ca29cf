// Raft paper §8 "Client interaction" and dissertation §6.4: linearizable reads without
// writing to the log. ReadIndex records the commit index when the read arrives and
// confirms with a heartbeat round that this node is still leader; lease-based reads
// trust check-quorum's lease instead of the round trip.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvariantError } from '../src/core/assert.js';
import { ReadOnlyOption } from '../src/core/read-only.js';
import { ConfChangeType, MessageType, StateRole, type Message } from '../src/core/types.js';
import { bytes, Cluster, text, type NodeConfig } from './helpers/cluster.js';

const is = (type: MessageType, from?: string, to?: string) => (m: Message) =>
  m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to);

describe('§8 client reads (ReadIndex)', () => {
  it('§8 ReadIndex on the leader: answered with the commit index once a majority acknowledged a heartbeat sent after the read arrived', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const idx = c.propose('1', 'a');
    c.stabilize();
    const hold = c.hold(is(MessageType.HeartbeatResp));
    c.raw('1').readIndex(bytes('r1'));
    c.stabilize();
    const hbs = c.sent.filter(is(MessageType.Heartbeat, '1'));
    assert.equal(hbs.length, 2, 'the read triggered a heartbeat round');
    assert.ok(
      hbs.every((m) => text(m.context!) === 'r1'),
      'carrying the read’s context',
    );
    assert.deepEqual(c.node('1').readStates, [], 'no answer before any acknowledgement');
    c.deliverWhere(is(MessageType.HeartbeatResp, '2'));
    c.process('1');
    assert.deepEqual(
      c.node('1').readStates.map((rs) => [rs.index, text(rs.context)]),
      [[idx, 'r1']],
      'leader + node 2 are a majority',
    );
    hold();
  });

  it('§8 ReadIndex on a follower is forwarded to the leader, which answers with its commit index', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    const idx = c.propose('1', 'a');
    c.stabilize();
    c.raw('2').readIndex(bytes('via-2'));
    c.stabilize();
    assert.equal(c.sent.filter(is(MessageType.ReadIndex, '2', '1')).length, 1);
    assert.equal(c.sent.filter(is(MessageType.ReadIndexResp, '1', '2')).length, 1);
    assert.deepEqual(
      c.node('2').readStates.map((rs) => [rs.index, text(rs.context)]),
      [[idx, 'via-2']],
    );
    assert.deepEqual(c.node('1').readStates, [], 'the leader does not serve the follower’s read itself');
  });

  /**
   * Node 1 commits 'X' at idx and crashes before anyone else learns the commit index.
   * Node 2 is elected (term 3) with the acknowledgements of its no-op held back, and a
   * client asks it to read.
   */
  function newLeaderWithStaleCommit(cfg: NodeConfig): { c: Cluster; idx: number; releaseAcks: () => void } {
    const c = new Cluster({ size: 3, config: cfg });
    c.campaign('1');
    const idx = c.propose('1', 'X');
    c.process('1');
    c.deliverWhere(is(MessageType.App, '1'));
    const muzzle = c.dropIf((m) => m.from === '1');
    c.stabilize();
    assert.equal(c.raft('1').log.committed, idx, 'X is committed: node 1 could acknowledge it to its client');
    assert.equal(c.raft('2').log.committed, idx - 1, 'but node 2 does not know that');
    c.crash('1');
    muzzle();
    const releaseAcks = c.hold(is(MessageType.AppResp, undefined, '2'));
    c.elect('2');
    c.raw('2').readIndex(bytes('read-after-X'));
    c.stabilize();
    c.tickAll(3);
    return { c, idx, releaseAcks };
  }

  it('§8 regression: a new leader holds ReadIndex until it has committed an entry of its own term', () => {
    const { c, idx, releaseAcks } = newLeaderWithStaleCommit({});
    assert.deepEqual(c.node('2').readStates, [], 'heartbeats were acknowledged, yet no answer: its commit index may be stale');
    releaseAcks();
    c.stabilize();
    const rs = c.node('2').readStates;
    assert.equal(rs.length, 1);
    assert.ok(rs[0]!.index > idx, `answered at ${rs[0]!.index}, after X (${idx}) and the new leader’s no-op`);
  });

  it('§8 regression (unsafe.readIndexBeforeOwnTermCommit): answering early returns a stale index that misses a committed write', () => {
    const { c, idx } = newLeaderWithStaleCommit({ unsafe: { readIndexBeforeOwnTermCommit: true } });
    const rs = c.node('2').readStates;
    assert.equal(rs.length, 1);
    assert.equal(rs[0]!.index, idx - 1, 'a read served here would not see X, although X was committed before the read began');
  });

  it('§8 regression: a single-voter leader also holds ReadIndex until it has committed an entry of its own term', () => {
    // Voters 1 and 2, 2 leads. It commits X together with its own removal (conf [1]),
    // steps down and hands over to 1 before 1 learns the commit index.
    const c = new Cluster({ size: 2 });
    c.campaign('2');
    c.propose('2', 'w');
    c.stabilize();
    // From here on, messages are delivered by hand: 2's commit index never reaches 1.
    const idx = c.propose('2', 'X');
    c.proposeConfChange('2', { type: ConfChangeType.RemoveNode, node: '2' });
    c.process('2');
    c.deliverWhere(is(MessageType.App, '2', '1'));
    c.process('1');
    c.deliverWhere(is(MessageType.AppResp, '1', '2'));
    assert.ok(c.raft('2').log.committed > idx, "2 committed X (and applied it: a client saw 'X ok')");
    assert.equal(c.raft('2').role, StateRole.Follower, 'and stepped down, removed');
    c.process('2');
    c.deliverWhere(is(MessageType.TimeoutNow, '2', '1'));
    const r1 = c.raft('1');
    assert.equal(r1.role, StateRole.Leader, 'the only voter wins at once');
    assert.ok(r1.log.committed < idx, 'but does not know yet that X is committed');
    c.raw('1').readIndex(bytes('r'));
    c.process('1');
    const rs = c.node('1').readStates;
    assert.equal(rs.length, 1, 'answered once its no-op is persisted and committed');
    assert.ok(rs[0]!.index > idx, `answered at ${rs[0]!.index}: a read served there sees X (${idx})`);
  });

  it('§6.4 lease-based reads require checkQuorum (constructor assertion)', () => {
    assert.throws(() => new Cluster({ size: 3, config: { readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: false } }), InvariantError);
  });

  it('§6.4 lease-based reads are answered at once, without a heartbeat round, on the leader and via a follower', () => {
    const c = new Cluster({ size: 3, config: { readOnlyOption: ReadOnlyOption.LeaseBased } });
    c.campaign('1');
    const idx = c.propose('1', 'a');
    c.stabilize();
    const mark = c.sent.length;
    c.raw('1').readIndex(bytes('lease'));
    c.process('1');
    assert.deepEqual(
      c.node('1').readStates.map((rs) => [rs.index, text(rs.context)]),
      [[idx, 'lease']],
    );
    c.raw('3').readIndex(bytes('lease-3'));
    c.stabilize();
    assert.deepEqual(
      c.node('3').readStates.map((rs) => [rs.index, text(rs.context)]),
      [[idx, 'lease-3']],
    );
    assert.deepEqual(c.sentSince(mark, is(MessageType.Heartbeat)), [], 'no heartbeat was needed');
  });
});
