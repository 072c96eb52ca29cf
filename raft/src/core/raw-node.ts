// The application's handle on the core (etcd-io/raft's RawNode). The loop is:
//   step()/tick()/propose() ... then rd = ready();
//   persist rd.hardState, rd.entries, rd.snapshot durably (one atomic write);
//   only then send rd.messages, apply rd.snapshot and rd.committedEntries;
//   advance(rd).
// Persist-before-send is what makes a vote or an acknowledgement survive a crash (I1).

import { assert } from './assert.js';
import { encodeConfChange } from './conf-change.js';
import { Raft, type RaftConfig } from './raft.js';
import {
  EntryType,
  hardStateEqual,
  isLocalMessage,
  message,
  MessageType,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
  type StateRole,
} from './types.js';
import type { LogReader } from '../storage/storage.js';

export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed: persist it. */
  hardState?: HardState;
  /** Entries to persist (they may replace a conflicting suffix). */
  entries: Entry[];
  /** A snapshot from the leader: persist it and restore the state machine from it. */
  snapshot?: Snapshot;
  /** Entries to apply, in order, after persisting. */
  committedEntries: Entry[];
  /** Messages to send after persisting. */
  messages: Message[];
  readStates: ReadState[];
}

export interface PeerStatus {
  id: NodeId;
  match: number;
  next: number;
  state: string;
  isLearner: boolean;
  ticksSinceContact: number;
  inflight: number;
}

export interface RaftStatus {
  id: NodeId;
  role: StateRole;
  term: number;
  vote: NodeId;
  leader: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  conf: ConfState;
  leadTransferee: NodeId;
  /** Only on the leader. */
  progress: PeerStatus[];
}

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(cfg: RaftConfig, storage: LogReader) {
    this.raft = new Raft(cfg, storage);
    this.prevSoft = { leader: this.raft.lead, role: this.raft.role };
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (tests and bootstrap of a single node). */
  campaign(): void {
    this.raft.step(message({ type: MessageType.Hup, from: this.raft.id }));
  }

  /** Appends commands on the leader; returns the last index. Throws ProposalDroppedError. */
  propose(datas: Uint8Array[]): number {
    return this.raft.propose(datas.map((data) => ({ type: EntryType.Normal, data })));
  }

  proposeConfChange(cc: ConfChange): number {
    return this.raft.propose([{ type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
  }

  /** A message from a peer. Local-only message types arriving from the network are ignored. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) return;
    // A response from a node we do not know cannot matter; drop it before it can.
    if (m.from === NONE) return;
    this.raft.step(m);
  }

  /** Requests a linearizable read barrier; a ReadState with this context appears in a Ready. */
  readIndex(context: Uint8Array): void {
    this.raft.step(message({ type: MessageType.ReadIndex, from: NONE, context }));
  }

  /** Asks the leader to hand leadership to `to` (or the most caught-up voter when omitted). */
  transferLeader(to: NodeId = NONE): void {
    // The target travels in the context: `from` is always the real sender.
    this.raft.step(message({ type: MessageType.TransferLeader, from: NONE, ...(to ? { context: Buffer.from(to, 'utf8') } : {}) }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  hasReady(): boolean {
    const r = this.raft;
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.unstableEntries().length > 0 ||
      r.log.unstableSnapshot() !== undefined ||
      r.log.hasNextCommittedEntries() ||
      !hardStateEqual(r.hardState(), this.prevHard) ||
      r.lead !== this.prevSoft.leader ||
      r.role !== this.prevSoft.role
    );
  }

  ready(): Ready {
    const r = this.raft;
    const rd: Ready = {
      entries: r.log.unstableEntries().slice(),
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    const snap = r.log.unstableSnapshot();
    if (snap) rd.snapshot = snap;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) rd.hardState = hs;
    if (r.lead !== this.prevSoft.leader || r.role !== this.prevSoft.role) {
      rd.softState = { leader: r.lead, role: r.role };
      this.prevSoft = rd.softState;
    }
    return rd;
  }

  /** The application has persisted, sent and applied everything in rd. */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      r.log.restoreApplied(rd.snapshot.meta.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) {
      r.log.stableTo(lastEntry.index, lastEntry.term);
      r.onPersisted(lastEntry.index, lastEntry.term);
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) r.log.appliedTo(lastApplied.index);
  }

  /** The application stored a snapshot at index and compacted storage up to it. */
  compacted(snapshotIndex: number): void {
    assert(snapshotIndex <= this.raft.log.applied, `compacted at ${snapshotIndex} beyond applied ${this.raft.log.applied}`);
    this.raft.onCompacted(snapshotIndex);
  }

  /** Configuration as of an index (what a snapshot taken there must record). */
  confAt(index: number): ConfState {
    return this.raft.confAt(index);
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress: PeerStatus[] = [];
    if (r.role === 'leader') {
      for (const [id, pr] of r.prs) {
        progress.push({
          id,
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          ticksSinceContact: id === r.id ? 0 : pr.ticksSinceContact,
          inflight: pr.inflights.count(),
        });
      }
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      conf: r.conf(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }
}
