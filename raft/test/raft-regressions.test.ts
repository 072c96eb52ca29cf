// Regressions: scenarios that broke real Raft implementations (or this one), pinned
// down one by one. Related regressions live with their section:
//   - Figure 8 (commit by counting replicas of an earlier term): raft-5.4-safety.test.ts
//   - removing the leader: raft-6-membership.test.ts
//   - snapshot install racing a membership change: raft-7-compaction.test.ts
//   - ReadIndex before the new leader's own-term commit (also for a single voter): raft-8-client-reads.test.ts
//   - a paused follower not told the new commit index: raft-5.3-replication.test.ts

import assert from 'node:assert/strict';
import { seededRandom } from '../sim/prng.js';
import { describe, it } from 'node:test';
import { EntryType, message, MessageType, StateRole, type Entry, type Message } from '../src/core/types.js';
import { bytes, Cluster, type TestNode } from './helpers/cluster.js';
import type { Ready } from '../src/core/raw-node.js';

const is = (type: MessageType, from?: string, to?: string) => (m: Message) =>
  m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to);

/** One leader at most per term, every node on the leader's term, and the cluster commits again. */
function assertHealthy(c: Cluster): void {
  const leaders = c.leaders();
  assert.equal(leaders.length, 1, `leaders: ${leaders.join(',')}`);
  const l = leaders[0]!;
  for (const n of c.alive()) {
    assert.equal(n.raw!.raft.term, c.raft(l).term, `node ${n.id} on the leader's term`);
    assert.equal(n.raw!.raft.lead, l, `node ${n.id} follows ${l}`);
  }
  c.propose(l, 'health-check');
  c.stabilize();
  for (const n of c.alive()) assert.ok(c.appliedData(n.id).includes('health-check'), `node ${n.id} applies new entries`);
}

describe('regressions', () => {
  it('etcd #8501: pre-vote + check-quorum, a node whose term rose while cut off (restart with a higher term) does not stall the cluster', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.isolate('3');
    c.propose('1', 'a', 'b'); // node 3 also misses these: it cannot win an election
    c.stabilize();
    c.crash('3');
    c.setHardState('3', { ...c.node('3').storage.hardState(), term: 7, vote: '' });
    c.restart('3');
    c.recover();
    // Node 3 ignores the term-2 leader's heartbeats... but answers them with its term,
    // which makes the leader step down; the cluster re-elects above term 7.
    const mark = c.sent.length;
    c.tickUntil(() => c.leader() !== undefined && c.raft(c.leader()!).term > 7, 100);
    const bump = c.sentSince(mark, (m) => is(MessageType.AppResp, '3', '1')(m) && m.term === 7);
    assert.ok(bump.length >= 1, 'node 3 answered the lower-term leader with an AppResp of its term');
    assert.notEqual(c.leader(), '3', 'node 3 lacks committed entries');
    c.tickAll(5);
    assertHealthy(c);
    assert.deepEqual(c.appliedData('3').slice(0, 2), ['a', 'b']);
  });

  it('etcd #8501: the same with the higher term reached by campaigning without pre-vote while partitioned', () => {
    const c = new Cluster({ size: 3, nodeConfig: { '3': { preVote: false } } });
    c.campaign('1');
    c.isolate('3');
    c.tickAll(60);
    const stuckTerm = c.raft('3').term;
    assert.ok(stuckTerm > 4, `node 3 campaigned its term up to ${stuckTerm}`);
    c.recover();
    c.tickUntil(() => c.leader() !== undefined && c.raft(c.leader()!).term >= stuckTerm && c.leaders().length === 1, 100);
    c.tickAll(5);
    assertHealthy(c);
  });

  it('a stale, reordered AppendEntries (fewer entries, same prev) does not truncate entries a newer one appended', () => {
    const c = new Cluster({ size: 3 });
    c.campaign('1');
    c.raw('1').reportUnreachable('2'); // back to Probe: one App at a time, retransmitted on heartbeat answers
    const release = c.hold(is(MessageType.App, '1', '2'));
    c.propose('1', 'a');
    c.stabilize();
    c.propose('1', 'b', 'c');
    c.stabilize();
    c.tick('1'); // heartbeat; node 2's answer makes the leader probe again, with everything
    c.stabilize();
    const apps = c.take(is(MessageType.App, '1', '2')).filter((m) => m.entries.length > 0);
    assert.equal(apps.length, 2);
    const [older, newer] = apps as [Message, Message];
    assert.equal(older.index, newer.index, 'same previous entry');
    assert.deepEqual(
      older.entries.map((e) => e.index),
      [3],
    );
    assert.deepEqual(
      newer.entries.map((e) => e.index),
      [3, 4, 5],
    );
    release();
    c.deliver(newer);
    c.deliver(older); // arrives late
    c.stabilize();
    assert.deepEqual(c.logTerms('2'), ['2:2', '3:2', '4:2', '5:2'], 'entries 4 and 5 survive the stale message');
    assert.deepEqual(
      c
        .node('2')
        .storedEntries()
        .map((e) => e.index),
      [2, 3, 4, 5],
    );
    assert.equal(
      c
        .raw('1')
        .status()
        .progress.find((p) => p.id === '2')!.match,
      5,
      'the stale ack of 3 did not lower match',
    );
    c.tickAll(1);
    assert.deepEqual(c.appliedData('2'), ['a', 'b', 'c']);
  });

  it('a follower commits only up to the last entry the AppendEntries proved, never its own stale suffix', () => {
    const c = new Cluster({ size: 3 });
    const ent = (index: number, term: number, d: string): Entry => ({ index, term, type: EntryType.Normal, data: bytes(d) });
    // Node 2 holds index 2..4 of an old leader (term 2); only index 2 ever committed.
    c.deliver(
      message({
        type: MessageType.App,
        from: '1',
        to: '2',
        term: 2,
        index: 1,
        logTerm: 1,
        entries: [ent(2, 2, 'p'), ent(3, 2, 'stale3'), ent(4, 2, 'stale4')],
        commit: 1,
      }),
    );
    c.process('2');
    // The leader of term 3 has [2:t2, 3:t3, 4:t3], committed through 4; its first App is size-limited to index 2.
    c.deliver(message({ type: MessageType.App, from: '3', to: '2', term: 3, index: 1, logTerm: 1, entries: [ent(2, 2, 'p')], commit: 4 }));
    c.process('2');
    assert.equal(c.raft('2').log.committed, 2, 'min(leader commit 4, last new entry 2): 3 and 4 are not proven');
    assert.deepEqual(c.appliedData('2'), ['p']);
    c.deliver(
      message({ type: MessageType.App, from: '3', to: '2', term: 3, index: 2, logTerm: 2, entries: [ent(3, 3, 'new3'), ent(4, 3, 'new4')], commit: 4 }),
    );
    c.process('2');
    assert.equal(c.raft('2').log.committed, 4);
    assert.deepEqual(c.appliedData('2'), ['p', 'new3', 'new4'], 'the stale entries were replaced, never applied');
  });

  describe('persist before acknowledge (I1)', () => {
    it('a follower’s AppResp is in the same Ready as the entries it acknowledges, and a VoteResp in the same Ready as the vote', () => {
      const c = new Cluster({ size: 3, config: { preVote: false } });
      c.raw('1').campaign();
      c.process('1');
      c.deliverWhere(is(MessageType.Vote, '1', '2'));
      let rd = c.raw('2').ready();
      assert.deepEqual(rd.hardState, { term: 2, vote: '1', commit: 1 });
      assert.deepEqual(
        rd.messages.map((m) => [MessageType[m.type], m.reject]),
        [['VoteResp', false]],
      );
      c.node('2').storage.applyUpdate({ entries: rd.entries, hardState: rd.hardState! });
      c.raw('2').advance(rd);
      c.deliver(rd.messages);
      c.process('1');
      c.deliverWhere(is(MessageType.App, '1', '2'));
      rd = c.raw('2').ready();
      assert.deepEqual(
        rd.entries.map((e) => e.index),
        [2],
      );
      assert.deepEqual(
        rd.messages.map((m) => [MessageType[m.type], m.index]),
        [['AppResp', 2]],
      );
    });

    it('under a random schedule of deliveries, losses, duplicates, ticks, proposals and crashes, no Ready acknowledges what it does not persist', () => {
      let appAcks = 0;
      let voteGrants = 0;
      const leadersByTerm = new Map<number, string>();
      const check = (node: TestNode, rd: Ready) => {
        const persistedLast = node.storage.lastIndex();
        const hs = node.storage.hardState();
        for (const m of rd.messages) {
          if (m.type === MessageType.AppResp && !m.reject) {
            appAcks++;
            assert.ok(m.index <= persistedLast, `node ${node.id} acked ${m.index} with only ${persistedLast} persisted`);
          }
          if (m.type === MessageType.VoteResp && !m.reject) {
            voteGrants++;
            // Persisted: this vote, or a later term (in which case the node can never vote in m.term again).
            assert.ok(
              hs.term > m.term || (hs.term === m.term && hs.vote === m.to),
              `node ${node.id} granted ${m.to} in term ${m.term} but persisted ${JSON.stringify(hs)}`,
            );
          }
        }
        if (rd.softState?.role === StateRole.Leader) {
          const term = node.raw!.raft.term;
          const prev = leadersByTerm.get(term);
          assert.ok(prev === undefined || prev === node.id, `two leaders in term ${term}: ${prev} and ${node.id}`);
          leadersByTerm.set(term, node.id);
        }
      };
      for (const seed of [1, 2, 3, 4]) {
        leadersByTerm.clear();
        const rng = seededRandom(seed);
        const pick = <T>(xs: T[]): T => xs[Math.floor(rng() * xs.length)]!;
        const c = new Cluster({ size: 5, config: { maxSizePerMsgBytes: 64, maxInflightMsgs: 4 } });
        c.observers.push(check);
        let proposals = 0;
        for (let step = 0; step < 6000; step++) {
          const r = rng();
          const ids = c.ids();
          if (r < 0.55 && c.queue.length > 0) {
            const i = Math.floor(rng() * c.queue.length);
            const m = c.queue[i]!;
            const roll = rng();
            if (roll < 0.9) c.queue.splice(i, 1); // else duplicated: delivered and left in the queue
            if (roll >= 0.05) c.deliver(m); // 5% lost
          } else if (r < 0.8) {
            c.process(pick(ids));
          } else if (r < 0.9) {
            const n = pick(c.alive());
            n.raw!.tick();
          } else if (r < 0.97) {
            const l = c.leader();
            if (l !== undefined) {
              try {
                c.propose(l, `p${proposals++}`);
              } catch {
                /* refused (transfer, too many uncommitted): fine */
              }
            }
          } else if (r < 0.985) {
            const down = c.ids().filter((id) => !c.node(id).alive);
            if (down.length > 0) c.restart(pick(down));
            else if (c.alive().length > 3) c.crash(pick(ids));
          } else {
            const n = pick(c.alive());
            n.raw!.campaign();
          }
        }
        for (const id of c.ids()) if (!c.node(id).alive) c.restart(id);
        assert.ok(leadersByTerm.size >= 3, `seed ${seed}: only ${leadersByTerm.size} leaders were elected`);
        c.tickUntil(() => c.leaders().length === 1, 300);
        c.tickAll(5);
        assertHealthy(c);
      }
      assert.ok(appAcks > 1000, `checked ${appAcks} acknowledgements`);
      assert.ok(voteGrants > 20, `checked ${voteGrants} vote grants`);
    });
  });
});
