// Raft paper §7 "Log compaction": a leader that compacted its log sends a follower
// that is too far behind its snapshot instead (InstallSnapshot), here streamed in
// chunks with acknowledgements, and the follower replaces its log and configuration
// with the snapshot's.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfChangeType, MessageType, type Message } from '../src/core/types.js';
import { bytes, Cluster, text } from './helpers/cluster.js';

/** The application snapshots its state at its applied index and compacts the log there. */
function compact(c: Cluster, id: string, data: Uint8Array): number {
  const raw = c.raw(id);
  const index = raw.raft.log.applied;
  const term = raw.raft.log.term(index)!;
  c.node(id).storage.compactSync({ meta: { index, term, conf: raw.confAt(index) }, data });
  raw.compacted(index);
  return index;
}

const SNAP_DATA = bytes('0123456789'.repeat(10)); // 100 bytes: 7 chunks of at most 16
const isSnapTo = (to: string) => (m: Message) => m.type === MessageType.Snap && m.to === to;

/** 3 nodes, 3 cut off while 10 entries commit, then the leader compacts. */
function laggingFollower(): { c: Cluster; snapIndex: number } {
  const c = new Cluster({ size: 3, config: { snapshotChunkBytes: 16 } });
  c.campaign('1');
  c.isolate('3');
  for (let i = 0; i < 10; i++) c.propose('1', `e${i}`);
  c.stabilize();
  const snapIndex = compact(c, '1', SNAP_DATA);
  c.propose('1', 'after-snapshot');
  c.stabilize();
  assert.ok(c.raft('1').log.firstIndex() > c.raft('3').log.lastIndex() + 1, 'what node 3 needs is compacted away');
  return { c, snapIndex };
}

describe('§7 log compaction', () => {
  it('§7 a follower that is too far behind receives the leader’s snapshot in chunks, restores it, then gets the entries after it', () => {
    const { c, snapIndex } = laggingFollower();
    c.recover();
    const mark = c.sent.length;
    c.tickAll(2);
    const chunks = c.sentSince(mark, isSnapTo('3'));
    assert.deepEqual(
      chunks.map((m) => m.snapshot!.offset),
      [0, 16, 32, 48, 64, 80, 96],
      'seven chunks, each sent when the previous one is acknowledged',
    );
    assert.ok(chunks.every((m) => m.snapshot!.totalBytes === 100 && m.snapshot!.meta.index === snapIndex));
    const restored = c.node('3').restoredSnapshots;
    assert.equal(restored.length, 1);
    assert.deepEqual(restored[0]!.data, SNAP_DATA, 'reassembled byte for byte');
    assert.equal(restored[0]!.meta.index, snapIndex);
    assert.equal(c.node('3').storage.snapshot().meta.index, snapIndex, 'persisted');
    assert.equal(c.node('3').storage.firstIndex(), snapIndex + 1);
    assert.deepEqual(c.appliedData('3'), ['after-snapshot'], 'entries up to the snapshot come inside it; later ones are applied');
    assert.equal(c.raft('3').log.committed, c.raft('1').log.committed);
  });

  it('§7 a lost snapshot chunk is retransmitted once a heartbeat interval passes without progress', () => {
    const { c, snapIndex } = laggingFollower();
    c.recover();
    c.dropOnce((m) => isSnapTo('3')(m) && m.snapshot!.offset === 32);
    const mark = c.sent.length;
    c.tickAll(1);
    assert.deepEqual(
      c.sentSince(mark, isSnapTo('3')).map((m) => m.snapshot!.offset),
      [0, 16, 32],
      'the stream stalls at the lost chunk',
    );
    assert.equal(c.node('3').restoredSnapshots.length, 0);
    // The first heartbeat answer after the loss still sees progress (chunks 0 and 16
    // were acknowledged since the stream began), so nothing is resent yet...
    c.tickAll(1);
    assert.deepEqual(
      c.sentSince(mark, isSnapTo('3')).map((m) => m.snapshot!.offset),
      [0, 16, 32],
      'no duplicate while progress was seen',
    );
    // ...the next one sees none, and the leader resends the chunk the follower waits for.
    c.tickAll(1);
    assert.deepEqual(
      c.sentSince(mark, isSnapTo('3')).map((m) => m.snapshot!.offset),
      [0, 16, 32, 32, 48, 64, 80, 96],
      'a stalled stream is resent from the acknowledged offset',
    );
    assert.equal(c.node('3').restoredSnapshots[0]!.meta.index, snapIndex);
    assert.deepEqual(c.node('3').restoredSnapshots[0]!.data, SNAP_DATA);
  });

  it('§7 snapshot racing a membership change: the follower ends with the snapshot’s configuration plus the changes after it, not its own log’s', () => {
    const c = new Cluster({ size: 3, config: { snapshotChunkBytes: 64 } });
    c.campaign('3');
    // Node 3 leads term 2, is cut off, and appends a change nobody else sees.
    c.isolate('3');
    c.proposeConfChange('3', { type: ConfChangeType.AddLearner, node: '5' });
    c.stabilize();
    assert.deepEqual(c.raft('3').conf().learners, ['5']);
    // Meanwhile the others elect 1, add node 4 and make it a voter...
    c.elect('1');
    c.addNode('4');
    c.proposeConfChange('1', { type: ConfChangeType.AddLearner, node: '4' });
    c.stabilize();
    c.proposeConfChange('1', { type: ConfChangeType.PromoteLearner, node: '4' });
    c.propose('1', 'w1');
    c.stabilize();
    // ...compact (the snapshot's configuration has 4 voters)...
    const snapIndex = compact(c, '1', bytes('state with w1'));
    assert.deepEqual(c.node('1').storage.snapshot().meta.conf, { voters: ['1', '2', '3', '4'], learners: [] });
    // ...and remove node 2 after the snapshot.
    c.proposeConfChange('1', { type: ConfChangeType.RemoveNode, node: '2' });
    c.propose('1', 'w2');
    c.stabilize();
    assert.deepEqual(c.raft('1').conf(), { voters: ['1', '3', '4'], learners: [] });

    c.recover();
    c.tickUntil(() => c.raft('3').log.lastIndex() === c.raft('1').log.lastIndex() && c.raft('3').log.committed === c.raft('1').log.committed);
    const restored = c.node('3').restoredSnapshots;
    assert.equal(restored.length, 1);
    assert.equal(restored[0]!.meta.index, snapIndex);
    assert.equal(text(restored[0]!.data), 'state with w1');
    assert.deepEqual(c.raft('3').confAt(snapIndex), { voters: ['1', '2', '3', '4'], learners: [] }, 'the snapshot’s configuration...');
    assert.deepEqual(c.raft('3').conf(), { voters: ['1', '3', '4'], learners: [] }, '...plus the removal after it; its own learner 5 is gone');
    assert.deepEqual(c.appliedData('3'), ['w2']);
    assert.equal(c.leader(), '1');
    // A restart rebuilds the same configuration from storage (snapshot + log).
    c.crash('3');
    c.restart('3');
    assert.deepEqual(c.raft('3').conf(), { voters: ['1', '3', '4'], learners: [] });
  });
});
