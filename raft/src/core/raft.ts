// The Raft state machine: pure, deterministic, no I/O, no clocks. Time arrives as
// tick() calls, randomness from an injected source, input as step(message); output
// is collected in the outbox and read through RawNode.ready(). Section numbers refer
// to the Raft paper (Ongaro & Ousterhout 2014) and the dissertation (Ongaro 2014).

import { assert } from './assert.js';
import { applyConfChange, decodeConfChange, validateConfChange } from './conf-change.js';
import { RaftLog } from './log.js';
import { Progress, ProgressState, quorumMatchIndex, voteResult, VoteResult } from './progress.js';
import { ReadOnly, ReadOnlyOption } from './read-only.js';
import {
  cloneConf,
  EntryType,
  message,
  MessageType,
  NONE,
  StateRole,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SnapshotChunk,
} from './types.js';
import type { LogReader } from '../storage/storage.js';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, CompactedError } from '../storage/storage.js';

export interface RaftConfig {
  id: NodeId;
  /** Followers campaign after a randomized [electionTick, 2*electionTick) ticks of silence. */
  electionTick: number;
  heartbeatTick: number;
  /** Random numbers in [0, 1): the simulation seeds it so runs replay exactly. */
  random: () => number;
  checkQuorum: boolean;
  preVote: boolean;
  readOnlyOption: ReadOnlyOption;
  maxSizePerMsgBytes: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  /** Proposals are refused while this many entries are uncommitted. */
  maxUncommittedEntries: number;
  maxApplyBytes: number;
  snapshotChunkBytes: number;
  /** Largest snapshot a follower will accept in chunks. */
  maxSnapshotBytes: number;
  maxPendingReads: number;
  /**
   * This node lost its state (it started with an empty store in a cluster that
   * may already exist: a wiped data directory, or a node not yet caught up). An
   * empty log would grant any candidate its vote and forget the votes and
   * acknowledgements it gave before, which can lose committed entries (I1).
   * So, until a leader commits an entry of its own term without this node's
   * help, it grants votes only to candidates whose log is as fresh as a new
   * cluster's, campaigns only while its own log is fresh, and marks its
   * acknowledgements so that leaders count them toward no quorum.
   */
  rejoining?: boolean;
  /**
   * Deliberately broken behaviour, for proving that the simulation's checkers
   * catch real bugs. Never set outside tests.
   */
  unsafe?: {
    /** Commit entries of earlier terms by counting replicas (Figure 8 bug). */
    commitByCountingAnyTerm?: boolean;
    /** Answer ReadIndex before the leader has committed an entry of its own term. */
    readIndexBeforeOwnTermCommit?: boolean;
  };
}

export const DEFAULT_CONFIG: Omit<RaftConfig, 'id' | 'random'> = {
  electionTick: 10,
  heartbeatTick: 1,
  checkQuorum: true,
  preVote: true,
  readOnlyOption: ReadOnlyOption.Safe,
  maxSizePerMsgBytes: 1024 * 1024,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxUncommittedEntries: 100_000,
  maxApplyBytes: 64 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  maxPendingReads: 100_000,
};

export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
    this.name = 'ProposalDroppedError';
  }
}

interface ConfAt {
  index: number;
  conf: ConfState;
}

/** A snapshot being received chunk by chunk. */
interface IncomingSnapshot {
  chunk0: SnapshotChunk;
  parts: Uint8Array[];
  receivedBytes: number;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  readonly log: RaftLog;
  readonly prs = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  /** Messages to send once this round's state is persisted. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** Set when a leadership transfer is in progress: proposals are refused. */
  leadTransferee: NodeId = NONE;
  /** Index of the newest conf change that may be uncommitted (leader only). */
  pendingConfIndex = 0;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly readOnly: ReadOnly;
  /** ReadIndex requests held until this leader commits an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];
  /** Membership: the snapshot's, then each config entry in the log after it. */
  private baseConf: ConfAt;
  private confLog: ConfAt[] = [];
  private incomingSnapshot: IncomingSnapshot | undefined;
  /** See RaftConfig.rejoining; cleared once, never set again. */
  private rejoining: boolean;
  /** While rejoining: the leader we follow and its commit index when it first sent us entries. */
  private rejoinFrom: { lead: NodeId; term: number; commit: number } | undefined;

  constructor(
    readonly cfg: RaftConfig,
    storage: LogReader,
  ) {
    assert(cfg.heartbeatTick > 0 && cfg.electionTick > cfg.heartbeatTick, 'electionTick must exceed heartbeatTick > 0');
    assert(cfg.readOnlyOption !== ReadOnlyOption.LeaseBased || cfg.checkQuorum, 'lease-based reads require checkQuorum');
    this.id = cfg.id;
    this.rejoining = cfg.rejoining === true;
    this.log = new RaftLog(storage, cfg.maxApplyBytes);
    this.readOnly = new ReadOnly(cfg.readOnlyOption, cfg.maxPendingReads);
    const { hardState, conf } = storage.initialState();
    const snapIndex = storage.firstIndex() - 1;
    this.baseConf = { index: snapIndex, conf: cloneConf(conf) };
    // Replay config entries after the snapshot: configuration is a function of the log.
    const last = storage.lastIndex();
    for (let i = snapIndex + 1; i <= last; ) {
      const batch = storage.entries(i, last + 1, 64 * 1024 * 1024);
      this.trackConfEntries(batch);
      i += batch.length;
    }
    if (hardState.term > 0 || hardState.vote !== NONE || hardState.commit > 0) {
      assert(hardState.commit <= last, `hard state commit ${hardState.commit} beyond last index ${last}`);
      this.term = hardState.term;
      this.vote = hardState.vote;
      this.log.commitTo(hardState.commit);
    }
    this.syncProgress();
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- membership

  conf(): ConfState {
    return (this.confLog[this.confLog.length - 1] ?? this.baseConf).conf;
  }

  /** Configuration as of index (for snapshots the application takes at its applied index). */
  confAt(index: number): ConfState {
    let c = this.baseConf.conf;
    for (const e of this.confLog) {
      if (e.index > index) break;
      c = e.conf;
    }
    return cloneConf(c);
  }

  isVoter(id: NodeId = this.id): boolean {
    return this.conf().voters.includes(id);
  }

  private trackConfEntries(ents: Entry[]): void {
    let changed = false;
    for (const e of ents) {
      if (e.type !== EntryType.ConfChange) continue;
      const next = applyConfChange(this.conf(), decodeConfChange(e.data));
      this.confLog.push({ index: e.index, conf: next });
      changed = true;
    }
    if (changed) this.syncProgress();
  }

  private truncateConf(fromIndex: number): void {
    const before = this.confLog.length;
    this.confLog = this.confLog.filter((c) => c.index < fromIndex);
    if (this.confLog.length !== before) this.syncProgress();
  }

  /** Adds and removes Progress entries to match the current configuration. */
  private syncProgress(): void {
    const conf = this.conf();
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.prs.keys()]) {
      if (!members.has(id)) this.prs.delete(id);
    }
    for (const id of members) {
      const isLearner = conf.learners.includes(id);
      const pr = this.prs.get(id);
      if (pr) {
        pr.isLearner = isLearner;
      } else {
        const np = this.newProgress(isLearner);
        if (id === this.id) np.match = this.log.lastStableIndex();
        this.prs.set(id, np);
      }
    }
    if (this.leadTransferee !== NONE && !conf.voters.includes(this.leadTransferee)) this.abortLeaderTransfer();
  }

  private newProgress(isLearner: boolean): Progress {
    const pr = new Progress(this.log.lastIndex() + 1, isLearner, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    // A new peer counts as active so that adding it does not trip check-quorum at once.
    pr.recentActive = true;
    return pr;
  }

  // ---------------------------------------------------------------- state

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Still rejoining after a start with lost state (RaftConfig.rejoining). */
  isRejoining(): boolean {
    return this.rejoining;
  }

  private send(m: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    // (Pre-)votes and their answers name their term explicitly; the rest carry ours.
    const acknowledges = m.type === MessageType.AppResp || m.type === MessageType.HeartbeatResp || m.type === MessageType.SnapResp;
    const msg = message({ term: this.term, ...m, from: this.id, ...(this.rejoining && acknowledges ? { rejoining: true } : {}) });
    assert(msg.to !== this.id, `message ${MessageType[msg.type]} to self`);
    this.msgs.push(msg);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes.clear();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs) {
      const np = new Progress(last + 1, pr.isLearner, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
      np.recentActive = true;
      // Our own entries count only once persisted (I1: persist before acknowledging).
      if (id === this.id) np.match = this.log.lastStableIndex();
      this.prs.set(id, np);
    }
    this.pendingConfIndex = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.cfg.random();
    assert(r >= 0 && r < 1, `random() returned ${r}, expected [0, 1)`);
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(r * this.cfg.electionTick);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = StateRole.Follower;
  }

  private becomePreCandidate(): void {
    assert(this.role !== StateRole.Leader, 'leader cannot become pre-candidate');
    // §9.6 pre-vote: no term bump, no vote change; only test whether we could win.
    this.votes.clear();
    this.lead = NONE;
    this.role = StateRole.PreCandidate;
  }

  private becomeCandidate(): void {
    assert(this.role !== StateRole.Leader, 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  private becomeLeader(): void {
    assert(this.role === StateRole.Candidate, `becomeLeader from ${this.role}`);
    // A rejoining node campaigns only with a fresh log and wins only with the
    // votes of fresh nodes: the cluster is new, and nothing was forgotten.
    this.rejoining = false;
    this.reset(this.term);
    this.lead = this.id;
    this.role = StateRole.Leader;
    this.prs.get(this.id)?.becomeReplicate();
    // Conservatively treat the tail as possibly holding an uncommitted conf change.
    this.pendingConfIndex = this.log.lastIndex();
    // §8: commit an entry of our own term so earlier entries (and ReadIndex) can commit.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const [id, pr] of this.prs) if (id !== this.id) pr.ticksSinceContact++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      // §6.2 check-quorum: a leader that has not heard from a quorum steps down.
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.role !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Whether a quorum was active since the last check; resets the activity flags. */
  private quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.prs) {
      if (pr.isLearner) continue;
      votes.set(id, id === this.id || pr.recentActive);
      if (id !== this.id) pr.recentActive = false;
    }
    return voteResult(this.conf().voters, votes) === VoteResult.Won;
  }

  private promotable(): boolean {
    return this.isVoter(this.id);
  }

  // ---------------------------------------------------------------- elections

  private hup(transfer: boolean): void {
    if (this.role === StateRole.Leader) return;
    if (!this.promotable()) return;
    // Part of a log is not all of what was committed: leading with it could lose entries.
    if (this.rejoining && !isFreshPosition(this.log.lastIndex(), this.log.lastTerm())) return;
    if (this.cfg.preVote && !transfer) this.campaign(MessageType.PreVote, false);
    else this.campaign(MessageType.Vote, transfer);
  }

  private campaign(type: MessageType.PreVote | MessageType.Vote, transfer: boolean): void {
    let term: number;
    if (type === MessageType.PreVote) {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // Single voter: we won at once.
      if (type === MessageType.PreVote) this.campaign(MessageType.Vote, transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.conf().voters) {
      if (id === this.id) continue;
      this.send({
        type,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        ...(transfer ? { context: TRANSFER_CONTEXT } : {}),
      });
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.conf().voters, this.votes);
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.context !== undefined && isTransferContext(m.context);
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
        // §4.2.3: a node that hears from a live leader ignores (pre-)votes, so a
        // partitioned or removed node cannot depose it.
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term for a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we bump it only on winning.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A leader of an older term: tell it our term so it steps down. Without this
        // a node whose term rose during a partition could stay stuck forever, since
        // check-quorum makes others ignore its votes (etcd #5451).
        this.send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        // Answer, or a pre-candidate of an older term would wait forever.
        this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MessageType.PreVote && m.term > this.term);
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        // Rejoining, our empty log would call any candidate up to date: vote only
        // where nothing can have been committed yet (a new cluster).
        const freshCandidate = isFreshPosition(m.index, m.logTerm);
        if (canVote && (!this.rejoining || freshCandidate) && this.log.isUpToDate(m.index, m.logTerm)) {
          // The response carries the term of the request: for a pre-vote that is a
          // future term, and the pre-candidate must not discard it as stale.
          this.send({ type: respType, to: m.from, term: m.term });
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
            // A fresh candidate wins only in a new cluster: there is nothing to catch up on.
            if (this.rejoining && freshCandidate) this.rejoining = false;
          }
        } else {
          this.send({ type: respType, to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        break;
    }
    switch (this.role) {
      case StateRole.Leader:
        this.stepLeader(m);
        return;
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateRole.Follower:
        this.stepFollower(m);
        return;
    }
  }

  // ---------------------------------------------------------------- leader

  /** Appends entries as leader, assigning term and index. Returns the last index. */
  private appendEntries(ents: Entry[]): number {
    const last = this.log.lastIndex();
    const stamped = ents.map((e, i) => ({ ...e, term: this.term, index: last + 1 + i }));
    this.log.append(stamped);
    this.trackConfEntries(stamped);
    // The leader's own match advances only once the entries are persisted (advance()).
    return this.log.lastIndex();
  }

  /** Proposes entries (leader only). Returns the index of the last one. */
  propose(entries: { type: EntryType; data: Uint8Array }[]): number {
    assert(entries.length > 0, 'propose with no entries');
    if (this.role !== StateRole.Leader) throw new ProposalDroppedError(`not the leader (leader is ${this.lead || 'unknown'})`);
    if (!this.prs.has(this.id)) throw new ProposalDroppedError('this node was removed from the cluster');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} in progress`);
    if (this.log.lastIndex() - this.log.committed + entries.length > this.cfg.maxUncommittedEntries) {
      throw new ProposalDroppedError(`too many uncommitted entries (limit ${this.cfg.maxUncommittedEntries})`);
    }
    let conf = this.conf();
    let confChanges = 0;
    for (const e of entries) {
      if (e.type !== EntryType.ConfChange) continue;
      confChanges++;
      if (confChanges > 1) throw new ProposalDroppedError('only one membership change at a time');
      if (this.pendingConfIndex > this.log.committed) {
        throw new ProposalDroppedError('an earlier membership change is not committed yet');
      }
      if (!this.committedEntryInCurrentTerm()) {
        throw new ProposalDroppedError('the leader has not committed an entry of its term yet');
      }
      let cc: ConfChange;
      try {
        cc = decodeConfChange(e.data);
      } catch (err) {
        throw new ProposalDroppedError((err as Error).message);
      }
      const why = validateConfChange(conf, cc);
      if (why) throw new ProposalDroppedError(why);
      conf = applyConfChange(conf, cc);
    }
    const last = this.appendEntries(entries.map((e) => ({ term: 0, index: 0, type: e.type, data: e.data })));
    if (confChanges > 0) this.pendingConfIndex = last;
    this.bcastAppend();
    return last;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private bcastAppend(): void {
    if (this.role !== StateRole.Leader) return;
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingContext();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: MessageType.Heartbeat, to: id, commit, ...(ctx ? { context: ctx } : {}) });
    }
  }

  /** Sends entries (or a snapshot chunk) to a follower. Returns whether a message went out. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] | undefined;
    if (prevTerm !== undefined) {
      try {
        ents = this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsgBytes);
      } catch (e) {
        if (!(e instanceof CompactedError)) throw e;
      }
    }
    if (prevTerm === undefined || ents === undefined) {
      // §7: the entries the follower needs are compacted away: stream the snapshot.
      const snap = this.log.snapshot();
      pr.becomeSnapshot(snap.meta.index);
      this.sendSnapshotChunk(to, pr, snap);
      return true;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed });
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index;
      if (pr.state === ProgressState.Replicate) {
        pr.optimisticUpdate(last);
        pr.inflights.add(
          last,
          ents.reduce((n, e) => n + e.data.byteLength, 0),
        );
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
      }
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress, snap: Snapshot): void {
    if (snap.meta.index !== pr.pendingSnapshot) {
      // The snapshot was replaced by a newer one: start over with it.
      pr.becomeSnapshot(snap.meta.index);
    }
    const offset = pr.snapshotAckedBytes;
    const end = Math.min(offset + this.cfg.snapshotChunkBytes, snap.data.byteLength);
    this.send({
      type: MessageType.Snap,
      to,
      snapshot: { meta: snap.meta, totalBytes: snap.data.byteLength, offset, data: snap.data.subarray(offset, end) },
    });
  }

  private maybeCommit(): boolean {
    // A rejoining follower holds what it acknowledges now, but may have lost what it
    // acknowledged before: counting it could commit over entries committed without us.
    const mci = quorumMatchIndex(this.conf().voters, (id) => {
      const pr = this.prs.get(id);
      return pr === undefined || pr.rejoining ? 0 : pr.match;
    });
    const committed = this.log.maybeCommit(mci, this.term, !this.cfg.unsafe?.commitByCountingAnyTerm);
    if (committed) this.afterLeaderCommit();
    return committed;
  }

  private afterLeaderCommit(): void {
    if (this.committedEntryInCurrentTerm()) {
      // ReadIndex requests held since our election can be answered now.
      const held = this.pendingReadIndexMessages;
      this.pendingReadIndexMessages = [];
      for (const m of held) this.handleReadIndex(m);
    }
    // §4.2.2: a leader removed from the configuration steps down once that is committed.
    const lastConf = this.confLog[this.confLog.length - 1];
    if (!this.isVoter(this.id) && lastConf !== undefined && this.log.committed >= lastConf.index) {
      const target = this.mostCaughtUpVoter();
      if (target !== NONE && this.prs.get(target)!.match === this.log.lastIndex()) {
        this.send({ type: MessageType.TimeoutNow, to: target });
      }
      this.becomeFollower(this.term, NONE);
    }
  }

  private mostCaughtUpVoter(): NodeId {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.conf().voters) {
      if (id === this.id) continue;
      const m = this.prs.get(id)?.match ?? 0;
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    return best;
  }

  /** Called after the application persisted entries up to (index, term). */
  onPersisted(index: number, term: number): void {
    if (this.role !== StateRole.Leader || this.log.term(index) !== term) return;
    const pr = this.prs.get(this.id);
    if (pr?.maybeUpdate(index) && this.maybeCommit()) this.bcastAppend();
  }

  private handleReadIndex(m: Message): void {
    // §6.4: until this leader commits an entry of its term, its commit index may be
    // behind the last leader's, so a read served at it could be stale. This holds for
    // a single voter too (checked before the shortcut below): a voter left alone by a
    // leader that removed itself does not know that leader's last commit index
    // (raft-8-client-reads.test.ts, "a single-voter leader also holds ReadIndex").
    if (!this.committedEntryInCurrentTerm() && !this.cfg.unsafe?.readIndexBeforeOwnTermCommit) {
      if (this.pendingReadIndexMessages.length < this.cfg.maxPendingReads) this.pendingReadIndexMessages.push(m);
      return;
    }
    if (this.conf().voters.length === 1 && this.isVoter(this.id)) {
      this.respondReadIndex(m, this.log.committed);
      return;
    }
    if (this.readOnly.option === ReadOnlyOption.LeaseBased) {
      this.respondReadIndex(m, this.log.committed);
      return;
    }
    if (!m.context || !this.readOnly.addRequest(this.log.committed, m)) return;
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat();
  }

  private respondReadIndex(m: Message, index: number): void {
    const ctx = m.context ?? new Uint8Array(0);
    if (m.from === NONE || m.from === this.id) this.readStates.push({ index, context: ctx });
    else this.send({ type: MessageType.ReadIndexResp, to: m.from, index, context: ctx });
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.ReadIndex:
        this.handleReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(transferTarget(m));
        return;
      default:
        break;
    }
    let pr = this.prs.get(m.from);
    if (!pr) return;
    if (m.type === MessageType.AppResp || m.type === MessageType.HeartbeatResp || m.type === MessageType.SnapResp) {
      if (m.rejoining === true && !pr.rejoining) {
        // It lost its log: what we knew of it (match, inflight appends) is about a
        // log that no longer exists. Probe it from scratch.
        pr = new Progress(this.log.lastIndex() + 1, pr.isLearner, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
        pr.rejoining = true;
        this.prs.set(m.from, pr);
        // The answer was about the lost log: drop it, and probe the new one now.
        this.sendAppend(m.from, true);
        return;
      }
      pr.rejoining = m.rejoining === true;
    }
    // A rejoining follower is replicated to, but its contact keeps no leader in office.
    if (!pr.rejoining) pr.recentActive = true;
    pr.ticksSinceContact = 0;
    switch (m.type) {
      case MessageType.AppResp:
        // Only a broken peer acknowledges entries we never had; ignore it rather than commit them.
        if (m.index > this.log.lastIndex()) return;
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapResp:
        this.handleSnapshotResponse(m, pr);
        return;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // §5.3 with fast backtracking: skip the follower's conflicting term at once.
      const hint = m.hintTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.hintTerm).index : m.rejectHint;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      // Duplicate or stale ack: still resume a probe that it answers.
      if (pr.state === ProgressState.Probe && pr.match >= m.index) pr.probeSent = false;
      return;
    }
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      if (this.role !== StateRole.Leader) return; // stepped down (removed)
      this.bcastAppend();
    } else if (oldPaused) {
      // The follower was paused, so it may have missed the latest commit index: send
      // it even with no new entries (etcd does the same). With sendIfEmpty=false this
      // branch was a no-op and the follower learned the commit only at the next
      // heartbeat (raft-5.3-replication.test.ts, "learns the new commit index...").
      this.sendAppend(m.from, true);
    }
    if (pr.rejoining && !pr.rejoinNudged && pr.match >= this.log.committed) {
      // It holds everything committed and now needs a commit made without it to
      // end rejoining (maybeEndRejoin); a quiet cluster may make none for a long
      // time, so make one: an empty entry, once per follower and term.
      pr.rejoinNudged = true;
      this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
      this.bcastAppend();
    }
    // Keep the pipeline full.
    while (this.sendAppend(m.from, false)) {
      /* bounded by the inflight window */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: MessageType.TimeoutNow, to: m.from });
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.state === ProgressState.Snapshot) {
      // Retransmit only when no chunk was acknowledged for a whole heartbeat
      // interval (it was lost); otherwise the acknowledgements drive the stream and
      // a resend per heartbeat would only pile up duplicates on a slow link.
      if (pr.snapshotAckedBytes === pr.snapshotAckedAtLastBeat) this.sendSnapshotChunk(m.from, pr, this.log.snapshot());
      pr.snapshotAckedAtLastBeat = pr.snapshotAckedBytes;
    } else if (pr.match < this.log.lastIndex()) {
      this.sendAppend(m.from, true);
    }
    if (this.readOnly.option !== ReadOnlyOption.Safe || !m.context || m.context.byteLength === 0) return;
    if (pr.rejoining) return; // it cannot confirm our leadership
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks) return;
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    if (voteResult(this.conf().voters, votes) !== VoteResult.Won) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondReadIndex(rs.request, rs.index);
  }

  private handleSnapshotResponse(m: Message, pr: Progress): void {
    if (pr.state !== ProgressState.Snapshot || m.index !== pr.pendingSnapshot) return;
    if (m.reject) {
      // The follower cannot take this snapshot (too large, or it failed): probe again later.
      pr.becomeProbe();
      return;
    }
    const snap = this.log.snapshot();
    if (snap.meta.index !== pr.pendingSnapshot) {
      pr.becomeSnapshot(snap.meta.index);
      this.sendSnapshotChunk(m.from, pr, snap);
      return;
    }
    const acked = Math.min(m.rejectHint, snap.data.byteLength);
    // Acknowledgements only move forward, except a reset to 0: the follower lost
    // its partial copy (it restarted) and needs the stream from the start. A stale,
    // reordered acknowledgement must not rewind the stream.
    if (acked <= pr.snapshotAckedBytes && acked !== 0) return;
    if (acked === pr.snapshotAckedBytes) return;
    pr.snapshotAckedBytes = acked;
    if (acked < snap.data.byteLength) this.sendSnapshotChunk(m.from, pr, snap);
  }

  private handleTransferLeader(target: NodeId): void {
    if (target === NONE) target = this.mostCaughtUpVoter();
    const pr = this.prs.get(target);
    if (target === NONE || target === this.id || !pr || pr.isLearner) return;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === target) return;
      this.abortLeaderTransfer();
    }
    // §3.10: the transfer must finish within an election timeout, else it is aborted.
    this.electionElapsed = 0;
    this.leadTransferee = target;
    if (pr.match === this.log.lastIndex()) this.send({ type: MessageType.TimeoutNow, to: target });
    else this.sendAppend(target, true);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---------------------------------------------------------------- candidate

  private stepCandidate(m: Message): void {
    const myResp = this.role === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshotChunk(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myResp) return;
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.role === StateRole.PreCandidate) this.campaign(MessageType.Vote, false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshotChunk(m);
        return;
      case MessageType.TransferLeader:
        // Forward once, as ourselves: a message's `from` is always its real sender.
        if (this.lead === NONE || (m.from !== NONE && m.from !== this.id)) return;
        this.msgs.push({ ...m, from: this.id, to: this.lead });
        return;
      case MessageType.TimeoutNow:
        // §3.10: the leader asks us to campaign now, skipping pre-vote.
        this.hup(true);
        return;
      case MessageType.ReadIndex:
        // Only our own reads are forwarded (one hop): the answer comes back to us.
        if (this.lead === NONE || (m.from !== NONE && m.from !== this.id)) return;
        this.msgs.push({ ...m, from: this.id, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context ?? new Uint8Array(0) });
        return;
      default:
        return;
    }
  }

  /**
   * Rejoining ends when the leader we follow commits, after we came back, an
   * entry of its own term that we hold. Our acknowledgements counted toward no
   * quorum, so that commit was made by a quorum of others in the leader's term:
   * the leader is current, not a deposed one that only we still answer, and it
   * holds everything committed before (Leader Completeness), which we now hold
   * too. A commit made before we came back proves nothing: we may have been part
   * of its quorum, and its leader may have been deposed since.
   */
  private maybeEndRejoin(): void {
    const from = this.rejoinFrom;
    if (!this.rejoining || from === undefined || this.role !== StateRole.Follower) return;
    if (this.lead !== from.lead || this.term !== from.term) return;
    const committed = this.log.committed;
    if (committed > from.commit && this.log.term(committed) === this.term) {
      this.rejoining = false;
      this.rejoinFrom = undefined;
    }
  }

  private handleAppend(m: Message): void {
    if (this.rejoining && (this.rejoinFrom?.lead !== m.from || this.rejoinFrom.term !== this.term)) {
      // An append carries the leader's whole commit index (a heartbeat only what we match).
      this.rejoinFrom = { lead: m.from, term: this.term, commit: m.commit };
    }
    this.handleAppendInner(m);
    this.maybeEndRejoin();
  }

  private handleAppendInner(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index is settled: tell the leader where we are.
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const res = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (res !== undefined) {
      const { lastNew, conflictIndex } = res;
      if (conflictIndex > 0) {
        // The log changed from conflictIndex on: so does the configuration it implies.
        this.truncateConf(conflictIndex);
        this.trackConfEntries(m.entries.filter((e) => e.index >= conflictIndex));
      }
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, hintTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.maybeEndRejoin();
    this.send({ type: MessageType.HeartbeatResp, to: m.from, ...(m.context ? { context: m.context } : {}) });
  }

  private handleSnapshotChunk(m: Message): void {
    const chunk = m.snapshot;
    if (!chunk) return;
    const meta = chunk.meta;
    const reply = (acked: number, reject = false) => this.send({ type: MessageType.SnapResp, to: m.from, index: meta.index, rejectHint: acked, reject });
    if (meta.index <= this.log.committed) {
      // We already have everything it holds: tell the leader our position instead.
      this.incomingSnapshot = undefined;
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    if (chunk.totalBytes > this.cfg.maxSnapshotBytes) {
      reply(0, true);
      return;
    }
    let inc = this.incomingSnapshot;
    const same = inc && inc.chunk0.meta.index === meta.index && inc.chunk0.meta.term === meta.term && inc.chunk0.totalBytes === chunk.totalBytes;
    if (!same) {
      if (chunk.offset !== 0) {
        reply(0);
        return;
      }
      inc = { chunk0: chunk, parts: [], receivedBytes: 0 };
      this.incomingSnapshot = inc;
    }
    const cur = inc!;
    if (chunk.offset !== cur.receivedBytes) {
      reply(cur.receivedBytes); // out of order or duplicate: say what we expect
      return;
    }
    // Copy: the chunk may be a view into a transport buffer that is reused.
    cur.parts.push(Uint8Array.from(chunk.data));
    cur.receivedBytes += chunk.data.byteLength;
    if (cur.receivedBytes < chunk.totalBytes) {
      reply(cur.receivedBytes);
      return;
    }
    this.incomingSnapshot = undefined;
    const data = new Uint8Array(Buffer.concat(cur.parts));
    const snap: Snapshot = { meta: { index: meta.index, term: meta.term, conf: cloneConf(meta.conf) }, data };
    if (this.restore(snap)) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  /** Installs a snapshot from the leader. Returns false if it was not needed. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.role !== StateRole.Follower) {
      // Only a follower of the sender gets here; anything else is a bug.
      assert(false, `snapshot restore as ${this.role}`);
    }
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the snapshot's last entry: just fast-forward commit (§7).
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.baseConf = { index: s.meta.index, conf: cloneConf(s.meta.conf) };
    this.confLog = [];
    this.syncProgress();
    return true;
  }

  /** Called by RawNode after the application compacted its log at snapshot index. */
  onCompacted(snapshotIndex: number): void {
    // Fold config entries at or below the snapshot into the base.
    const conf = this.confAt(snapshotIndex);
    this.baseConf = { index: snapshotIndex, conf };
    this.confLog = this.confLog.filter((c) => c.index > snapshotIndex);
  }

  // ---------------------------------------------------------------- status

  electionElapsedTicks(): number {
    return this.electionElapsed;
  }

  pendingReads(): number {
    return this.readOnly.pendingCount() + this.pendingReadIndexMessages.length;
  }
}

/** Marks a campaign triggered by TimeoutNow: voters skip the leader-lease check. */
const TRANSFER_CONTEXT = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

function isTransferContext(ctx: Uint8Array): boolean {
  if (ctx.byteLength !== TRANSFER_CONTEXT.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== TRANSFER_CONTEXT[i]) return false;
  return true;
}

/** The target of a TransferLeader request: in its context (empty: the most caught-up voter). */
function transferTarget(m: Message): NodeId {
  return m.context && m.context.byteLength > 0 ? Buffer.from(m.context).toString('utf8') : NONE;
}

/** The last log position of a bootstrapped store that never held a leader's entry. */
function isFreshPosition(index: number, term: number): boolean {
  return index <= BOOTSTRAP_INDEX && term <= BOOTSTRAP_TERM;
}
