// A running Raft node: drives the pure core (RawNode) with real time, durable
// storage, a transport and the application's state machine. This is the API the
// ogel daemon uses: propose() resolves once the command is applied locally, read()
// is a linearizable barrier, plus leadership transfer, membership and status.
//
// One loop owns the core. Inputs (ticks, peer messages, proposals, reads) are queued
// and fed to the core between Ready rounds, never while a Ready is being persisted,
// so the core's view and the disk never disagree about what was acknowledged.

import { EventEmitter } from 'node:events';
import { assert } from '../core/assert.js';
import { DEFAULT_CONFIG, ProposalDroppedError, type RaftConfig } from '../core/raft.js';
import { RawNode, type RaftStatus, type Ready } from '../core/raw-node.js';
import {
  acknowledgesNothing,
  ConfChangeType,
  EntryType,
  NONE,
  StateRole,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Snapshot,
} from '../core/types.js';
import type { Storage } from '../storage/storage.js';
import type { Transport, TransportStats } from '../transport/transport.js';
import type { Logger } from '../transport/tcp-transport.js';

/** The application's replicated state machine (hashicorp/raft's FSM). */
export interface StateMachine<Result = unknown> {
  /** Applies a committed command. Must be deterministic (I2). */
  apply(data: Uint8Array, index: number, term: number): Result;
  /** Serializes the whole state as of the last applied index. */
  snapshot(): Uint8Array;
  /** Replaces the whole state (empty data means the initial state). */
  restore(data: Uint8Array): void;
}

export interface RaftNodeOptions<Result> {
  id: NodeId;
  storage: Storage;
  transport: Transport;
  stateMachine: StateMachine<Result>;
  /** Length of one core tick. Election timeout is electionTicks..2*electionTicks ticks. */
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /**
   * Snapshot the state machine once this many entries were applied since the last
   * snapshot AND their payload is at least as large as that snapshot: the cost of
   * serializing the state stays proportional to the log it lets us drop.
   */
  snapshotEveryEntries?: number;
  /** Keep this many entries behind a snapshot so slightly lagging followers need no snapshot. */
  compactTrailingEntries?: number;
  /** Proposals and reads waiting at once; more are refused (back pressure). */
  maxPendingRequests?: number;
  /** Largest command accepted by propose(). */
  maxCommandBytes?: number;
  /** Commands batched into one Ready. */
  maxBatchCommands?: number;
  raft?: Partial<Omit<RaftConfig, 'id' | 'random' | 'electionTick' | 'heartbeatTick'>>;
  /**
   * With raft.rejoining: awaited once rejoining has ended and its Ready is on
   * disk, before status() says so and 'rejoined' is emitted (the daemon removes
   * its marker file here, so a restart after that point starts as a member).
   */
  onRejoined?: () => Promise<void>;
  log?: Logger;
}

export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(leader ? `not the leader; the leader is ${leader}` : 'not the leader, and no leader is known (election in progress?)');
    this.name = 'NotLeaderError';
  }
}

export class ProposalLostError extends Error {
  constructor(detail: string) {
    super(`proposal lost: ${detail}`);
    this.name = 'ProposalLostError';
  }
}

/** The request's outcome is not known: it may or may not have been applied. */
export class RequestTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not complete within ${timeoutMs} ms; its outcome is unknown`);
    this.name = 'RequestTimeoutError';
  }
}

export class NodeStoppedError extends Error {
  constructor(reason: string) {
    super(`raft node stopped: ${reason}`);
    this.name = 'NodeStoppedError';
  }
}

export class BusyError extends Error {
  constructor(limit: number) {
    super(`too many pending requests (limit ${limit}); retry later`);
    this.name = 'BusyError';
  }
}

export interface ProposeResult<Result> {
  index: number;
  result: Result;
}

export interface PeerProgress {
  id: NodeId;
  matchIndex: number;
  nextIndex: number;
  /** Entries the peer is behind the leader's last index. */
  lagEntries: number;
  state: string;
  isLearner: boolean;
  /** Milliseconds since the leader last heard from the peer. */
  lastContactMs: number;
}

export interface NodeStatus {
  id: NodeId;
  role: StateRole;
  term: number;
  leader: NodeId;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  firstIndex: number;
  voters: NodeId[];
  learners: NodeId[];
  leadTransferee: NodeId;
  /** Rejoining after a start with lost state: this node votes and acknowledges toward no quorum yet (RaftConfig.rejoining). */
  rejoining: boolean;
  /** Only on the leader. */
  peers: PeerProgress[];
  leaderChanges: number;
  transport: TransportStats;
}

export interface LeaderChange {
  leader: NodeId;
  term: number;
  role: StateRole;
}

interface PendingProposal<Result> {
  term: number;
  resolve: (r: ProposeResult<Result>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface QueuedProposal<Result> {
  entry: { type: EntryType; data: Uint8Array };
  resolve: (r: ProposeResult<Result>) => void;
  reject: (e: Error) => void;
  timeoutMs: number;
}

interface PendingRead {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** Set once the leader confirmed the read index. */
  index?: number;
}

const DEFAULTS = {
  tickMs: 20,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotEveryEntries: 10_000,
  compactTrailingEntries: 1_000,
  maxPendingRequests: 100_000,
  maxCommandBytes: 8 * 1024 * 1024,
  maxBatchCommands: 4_096,
};

export class RaftNode<Result = unknown> extends EventEmitter {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly fsm: StateMachine<Result>;
  private readonly opts: typeof DEFAULTS;
  private readonly log: Logger;

  private ticker: NodeJS.Timeout | undefined;
  private pendingTicks = 0;
  private inbox: Message[] = [];
  private proposalQueue: QueuedProposal<Result>[] = [];
  private readQueue: { context: Uint8Array; read: PendingRead }[] = [];
  private controlQueue: (() => void)[] = [];
  private readonly proposals = new Map<number, PendingProposal<Result>>();
  private readonly reads = new Map<string, PendingRead>();
  private readonly waitingReads: { key: string; index: number }[] = [];
  private readCounter = 0n;

  private running = false;
  private scheduled = false;
  private stopped: string | undefined;
  private loopDone: Promise<void> = Promise.resolve();

  /** RaftConfig.rejoining as last announced: set at start, cleared (with a "rejoined" event) once the core ends it. */
  private rejoining: boolean;
  private readonly onRejoined: (() => Promise<void>) | undefined;
  private applied: number;
  private lastSnapshotIndex: number;
  private lastSnapshotBytes: number;
  /** Payload bytes applied since the last snapshot. */
  private appliedBytesSinceSnapshot = 0;
  private pendingSnapshot: Snapshot | undefined;
  private leader: NodeId = NONE;
  private role: StateRole = StateRole.Follower;
  private leaderChanges = 0;
  /** A commit-only hard state not written yet (see handleReady). */
  private unsavedHardState: HardState | undefined;
  /** Term and vote as last written, to tell a commit-only hard-state change. */
  private persistedTerm: number;
  private persistedVote: NodeId;

  private constructor(o: RaftNodeOptions<Result>) {
    super();
    this.id = o.id;
    this.storage = o.storage;
    this.transport = o.transport;
    this.fsm = o.stateMachine;
    this.opts = {
      tickMs: o.tickMs ?? DEFAULTS.tickMs,
      electionTicks: o.electionTicks ?? DEFAULTS.electionTicks,
      heartbeatTicks: o.heartbeatTicks ?? DEFAULTS.heartbeatTicks,
      snapshotEveryEntries: o.snapshotEveryEntries ?? DEFAULTS.snapshotEveryEntries,
      compactTrailingEntries: o.compactTrailingEntries ?? DEFAULTS.compactTrailingEntries,
      maxPendingRequests: o.maxPendingRequests ?? DEFAULTS.maxPendingRequests,
      maxCommandBytes: o.maxCommandBytes ?? DEFAULTS.maxCommandBytes,
      maxBatchCommands: o.maxBatchCommands ?? DEFAULTS.maxBatchCommands,
    };
    this.log = o.log ?? (() => {});
    const cfg: RaftConfig = {
      ...DEFAULT_CONFIG,
      ...o.raft,
      id: o.id,
      electionTick: this.opts.electionTicks,
      heartbeatTick: this.opts.heartbeatTicks,
      // Election timeouts only need to differ between nodes; they need not be secret.
      random: Math.random,
    };
    this.raw = new RawNode(cfg, o.storage);
    this.rejoining = cfg.rejoining === true;
    this.onRejoined = o.onRejoined;
    const snap = o.storage.snapshot();
    this.fsm.restore(snap.data);
    this.applied = snap.meta.index;
    this.lastSnapshotIndex = snap.meta.index;
    this.lastSnapshotBytes = snap.data.byteLength;
    const hs = o.storage.initialState().hardState;
    this.persistedTerm = hs.term;
    this.persistedVote = hs.vote;
  }

  /** Builds the node on an opened storage and a not yet started transport, and starts it. */
  static async start<R>(o: RaftNodeOptions<R>): Promise<RaftNode<R>> {
    const node = new RaftNode<R>(o);
    o.transport.onMessage((m) => node.enqueueMessage(m));
    o.transport.onUnreachable((peer) => node.control(() => node.raw.reportUnreachable(peer)));
    await o.transport.start();
    node.ticker = setInterval(() => {
      node.pendingTicks++;
      node.schedule();
    }, node.opts.tickMs);
    node.ticker.unref?.();
    node.schedule();
    return node;
  }

  // ------------------------------------------------------------------ public API

  /** Replicates a command; resolves with its index and the state machine's result once applied here. */
  propose(data: Uint8Array, timeoutMs = 10_000): Promise<ProposeResult<Result>> {
    return this.enqueueProposal({ type: EntryType.Normal, data }, timeoutMs);
  }

  /** A linearizable read barrier: resolves once this node has applied everything committed before the call. */
  read(timeoutMs = 5_000): Promise<number> {
    if (this.stopped) return Promise.reject(new NodeStoppedError(this.stopped));
    if (this.leader === NONE) return Promise.reject(new NotLeaderError(NONE));
    if (this.reads.size + this.readQueue.length >= this.opts.maxPendingRequests) {
      return Promise.reject(new BusyError(this.opts.maxPendingRequests));
    }
    return new Promise((resolve, reject) => {
      const context = Buffer.alloc(8);
      context.writeBigUInt64BE(++this.readCounter);
      const key = context.toString('hex');
      const read: PendingRead = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.reads.delete(key);
          reject(new RequestTimeoutError('read barrier', timeoutMs));
        }, timeoutMs),
      };
      this.reads.set(key, read);
      this.readQueue.push({ context: new Uint8Array(context), read });
      this.schedule();
    });
  }

  /**
   * Hands leadership to `to` (or the most caught-up voter). Resolves with the new
   * leader once this node sees it; proposals are refused while the transfer runs.
   */
  transferLeadership(to: NodeId = NONE, timeoutMs = 3_000): Promise<NodeId> {
    if (this.stopped) return Promise.reject(new NodeStoppedError(this.stopped));
    const from = this.leader;
    if (from === NONE) return Promise.reject(new NotLeaderError(NONE));
    if (to !== NONE && to === from) return Promise.resolve(to);
    const conf = this.raw.status().conf;
    if (to !== NONE && !conf.voters.includes(to)) {
      return Promise.reject(new Error(`cannot transfer leadership to ${to}: it is not a voter (voters: ${conf.voters.join(', ')})`));
    }
    return new Promise((resolve, reject) => {
      const onChange = (c: LeaderChange) => {
        if (c.leader !== NONE && c.leader !== from && (to === NONE || c.leader === to)) {
          cleanup();
          resolve(c.leader);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new RequestTimeoutError(`leadership transfer from ${from} to ${to || 'the most caught-up voter'}`, timeoutMs));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('leader', onChange);
      };
      this.on('leader', onChange);
      this.control(() => this.raw.transferLeader(to));
    });
  }

  addLearner(id: NodeId, timeoutMs = 10_000): Promise<number> {
    return this.changeMembership(ConfChangeType.AddLearner, id, timeoutMs);
  }

  promoteLearner(id: NodeId, timeoutMs = 10_000): Promise<number> {
    return this.changeMembership(ConfChangeType.PromoteLearner, id, timeoutMs);
  }

  removeNode(id: NodeId, timeoutMs = 10_000): Promise<number> {
    return this.changeMembership(ConfChangeType.RemoveNode, id, timeoutMs);
  }

  status(): NodeStatus {
    const s: RaftStatus = this.raw.status();
    return {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commit,
      appliedIndex: this.applied,
      lastIndex: s.lastIndex,
      firstIndex: s.firstIndex,
      voters: s.conf.voters,
      learners: s.conf.learners,
      leadTransferee: s.leadTransferee,
      rejoining: this.rejoining,
      peers: s.progress.map((p) => ({
        id: p.id,
        matchIndex: p.match,
        nextIndex: p.next,
        lagEntries: Math.max(0, s.lastIndex - p.match),
        state: p.state,
        isLearner: p.isLearner,
        lastContactMs: p.ticksSinceContact * this.opts.tickMs,
      })),
      leaderChanges: this.leaderChanges,
      transport: this.transport.stats(),
    };
  }

  /** Still rejoining after a start with lost state (RaftConfig.rejoining), until onRejoined has run; see status().rejoining. */
  isRejoining(): boolean {
    return this.rejoining;
  }

  isLeader(): boolean {
    return this.role === StateRole.Leader;
  }

  leaderId(): NodeId {
    return this.leader;
  }

  /** Stops ticking, fails pending requests, waits for the loop, closes the transport. Storage stays open (the caller owns it). */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.stopped) return;
    this.stopped = reason;
    if (this.ticker) clearInterval(this.ticker);
    await this.loopDone;
    // Persist the latest commit index so a clean restart does not have to relearn it.
    const hs = this.unsavedHardState;
    this.unsavedHardState = undefined;
    if (hs) {
      // Not fatal (Raft relearns a commit index), but worth a line: the disk refused a write.
      await this.storage
        .save({ entries: [], hardState: hs, sync: false })
        .catch((e: Error) => this.log({ level: 'warn', msg: 'could not record the commit index on stop', error: e.message }));
    }
    this.failAll(new NodeStoppedError(reason));
    await this.transport.close();
  }

  // ------------------------------------------------------------------ queues

  private enqueueMessage(m: Message): void {
    if (this.stopped) return;
    // Bound the inbox: Raft tolerates loss, so under overload we drop, never grow.
    if (this.inbox.length >= 65_536) return;
    this.inbox.push(m);
    this.schedule();
  }

  private control(fn: () => void): void {
    if (this.stopped) return;
    this.controlQueue.push(fn);
    this.schedule();
  }

  private enqueueProposal(entry: { type: EntryType; data: Uint8Array }, timeoutMs: number): Promise<ProposeResult<Result>> {
    if (this.stopped) return Promise.reject(new NodeStoppedError(this.stopped));
    if (this.role !== StateRole.Leader) return Promise.reject(new NotLeaderError(this.leader));
    if (entry.data.byteLength > this.opts.maxCommandBytes) {
      return Promise.reject(new Error(`command of ${entry.data.byteLength} bytes exceeds maxCommandBytes ${this.opts.maxCommandBytes}`));
    }
    if (this.proposals.size + this.proposalQueue.length >= this.opts.maxPendingRequests) {
      return Promise.reject(new BusyError(this.opts.maxPendingRequests));
    }
    return new Promise((resolve, reject) => {
      this.proposalQueue.push({ entry, resolve, reject, timeoutMs });
      this.schedule();
    });
  }

  private changeMembership(type: ConfChangeType, node: NodeId, timeoutMs: number): Promise<number> {
    if (this.stopped) return Promise.reject(new NodeStoppedError(this.stopped));
    if (this.role !== StateRole.Leader) return Promise.reject(new NotLeaderError(this.leader));
    return new Promise((resolve, reject) => {
      this.control(() => {
        let index: number;
        try {
          index = this.raw.proposeConfChange({ type, node });
        } catch (e) {
          reject(e instanceof ProposalDroppedError ? e : new Error(String(e)));
          return;
        }
        this.trackProposal(index, (r) => resolve(r.index), reject, timeoutMs);
      });
    });
  }

  private trackProposal(index: number, resolve: (r: ProposeResult<Result>) => void, reject: (e: Error) => void, timeoutMs: number): void {
    const term = this.raw.raft.term;
    const timer = setTimeout(() => {
      if (this.proposals.get(index)?.timer === timer) this.proposals.delete(index);
      reject(new RequestTimeoutError(`proposal at index ${index}`, timeoutMs));
    }, timeoutMs);
    const prev = this.proposals.get(index);
    // A new leader can reuse an index whose old proposal was truncated away.
    if (prev) {
      clearTimeout(prev.timer);
      prev.reject(new ProposalLostError(`index ${index} was overwritten by term ${term}`));
    }
    this.proposals.set(index, { term, resolve, reject, timer });
  }

  // ------------------------------------------------------------------ the loop

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running || this.stopped) return;
      this.running = true;
      this.loopDone = this.runLoop()
        .catch((e: unknown) => this.fatal(e))
        .finally(() => {
          this.running = false;
          if (this.hasInput()) this.schedule();
        });
    });
  }

  private hasInput(): boolean {
    return this.pendingTicks > 0 || this.inbox.length > 0 || this.proposalQueue.length > 0 || this.readQueue.length > 0 || this.controlQueue.length > 0;
  }

  private async runLoop(): Promise<void> {
    for (let rounds = 0; !this.stopped && rounds < 1_000; rounds++) {
      this.feedCore();
      if (!this.raw.hasReady()) return;
      await this.handleReady(this.raw.ready());
    }
  }

  /** Hands queued inputs to the core. Runs only between Ready rounds. */
  private feedCore(): void {
    // Ticks are capped: after a long pause (GC, SIGSTOP) we must not fire a burst of
    // elections; one election timeout's worth is enough to react.
    const ticks = Math.min(this.pendingTicks, this.opts.electionTicks);
    this.pendingTicks = 0;
    for (let i = 0; i < ticks; i++) this.raw.tick();
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) this.raw.step(m);
    const controls = this.controlQueue;
    this.controlQueue = [];
    for (const fn of controls) fn();
    for (const { context, read } of this.readQueue) {
      if (this.reads.get(Buffer.from(context).toString('hex')) === read) this.raw.readIndex(context);
    }
    this.readQueue = [];
    this.proposeQueued();
  }

  private proposeQueued(): void {
    while (this.proposalQueue.length > 0) {
      const batch = this.proposalQueue.splice(0, this.opts.maxBatchCommands);
      let last: number;
      try {
        last = this.raw.raft.propose(batch.map((p) => p.entry));
      } catch (e) {
        const err = e instanceof ProposalDroppedError && this.raw.raft.role !== StateRole.Leader ? new NotLeaderError(this.raw.raft.lead) : (e as Error);
        for (const p of batch) p.reject(err);
        continue;
      }
      const first = last - batch.length + 1;
      batch.forEach((p, i) => {
        this.trackProposal(first + i, p.resolve, p.reject, p.timeoutMs);
      });
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    // A leader's appends go out while its own write is in flight; votes and
    // acknowledgements wait for the disk (see acknowledgesNothing).
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) (acknowledgesNothing(m.type) ? early : late).push(m);
    if (early.length > 0) this.transport.send(early);

    // Write (and fsync) only what acknowledgements depend on: entries, a snapshot,
    // term or vote. A change of the commit index alone is not written now: Raft
    // treats it as volatile (a restart relearns it), and writing it would put a
    // disk round trip between commit and apply on every write. It rides along
    // with the next write, and is flushed on stop.
    const hs = rd.hardState ?? this.unsavedHardState;
    const mustWrite =
      rd.entries.length > 0 || rd.snapshot !== undefined || (hs !== undefined && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote));
    if (mustWrite) {
      await this.storage.save({
        entries: rd.entries,
        ...(hs ? { hardState: hs } : {}),
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
      });
      if (hs) {
        this.persistedTerm = hs.term;
        this.persistedVote = hs.vote;
      }
      this.unsavedHardState = undefined;
    } else if (hs) {
      this.unsavedHardState = hs;
    }
    if (late.length > 0) this.transport.send(late);

    if (rd.snapshot) this.restoreSnapshot(rd.snapshot);
    this.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.context).toString('hex');
      const read = this.reads.get(key);
      if (read) {
        read.index = rs.index;
        this.waitingReads.push({ key, index: rs.index });
      }
    }
    this.raw.advance(rd);
    this.releaseReads();
    if (rd.softState) this.onSoftState(rd.softState.leader, rd.softState.role);
    if (this.rejoining && !this.raw.raft.isRejoining()) {
      // Announced only now that this Ready (the entries we caught up on) is on
      // disk, and after the hook: what survives a restart must say "member" first.
      await this.onRejoined?.();
      this.rejoining = false;
      this.log({
        level: 'info',
        msg: 'rejoined: caught up with a leader; voting and acknowledging again',
        term: this.raw.raft.term,
        commitIndex: this.raw.raft.log.committed,
      });
      this.emit('rejoined');
    }
    await this.maybeCompact();
  }

  private restoreSnapshot(snap: Snapshot): void {
    this.fsm.restore(snap.data);
    assert(snap.meta.index > this.applied, `snapshot ${snap.meta.index} not beyond applied ${this.applied}`);
    // Proposals up to the snapshot were swallowed by it: their outcome is unknown here.
    for (const [index, p] of this.proposals) {
      if (index <= snap.meta.index) {
        clearTimeout(p.timer);
        this.proposals.delete(index);
        p.reject(new ProposalLostError(`a snapshot from the leader replaced index ${index}; outcome unknown`));
      }
    }
    this.applied = snap.meta.index;
    this.lastSnapshotIndex = snap.meta.index;
    this.lastSnapshotBytes = snap.data.byteLength;
    this.appliedBytesSinceSnapshot = 0;
    this.pendingSnapshot = undefined;
    this.log({ level: 'info', msg: 'restored snapshot from leader', index: snap.meta.index, term: snap.meta.term, bytes: snap.data.byteLength });
  }

  private applyEntries(entries: Entry[]): void {
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      assert(e.index === this.applied + 1, `apply gap: entry ${e.index} after applied ${this.applied}`);
      let result: Result | undefined;
      if (e.type === EntryType.Normal && e.data.byteLength > 0) result = this.fsm.apply(e.data, e.index, e.term);
      this.applied = e.index;
      this.appliedBytesSinceSnapshot += e.data.byteLength;
      const p = this.proposals.get(e.index);
      if (p) {
        this.proposals.delete(e.index);
        clearTimeout(p.timer);
        if (p.term === e.term) p.resolve({ index: e.index, result: result as Result });
        else p.reject(new ProposalLostError(`index ${e.index} was taken by term ${e.term} (proposed in term ${p.term})`));
      }
    }
  }

  private releaseReads(): void {
    for (let i = 0; i < this.waitingReads.length; ) {
      const w = this.waitingReads[i]!;
      if (w.index > this.applied) {
        i++;
        continue;
      }
      this.waitingReads.splice(i, 1);
      const read = this.reads.get(w.key);
      if (!read) continue;
      this.reads.delete(w.key);
      clearTimeout(read.timer);
      read.resolve(w.index);
    }
  }

  private onSoftState(leader: NodeId, role: StateRole): void {
    const changed = leader !== this.leader;
    const wasLeader = this.role === StateRole.Leader;
    this.leader = leader;
    this.role = role;
    if (changed) this.leaderChanges++;
    if (changed || (wasLeader && role !== StateRole.Leader)) {
      // Reads not yet confirmed went to a leader that is gone: they will never be
      // answered. Fail them now so callers can retry instead of waiting for a timeout.
      for (const [key, read] of this.reads) {
        if (read.index === undefined) {
          this.reads.delete(key);
          clearTimeout(read.timer);
          read.reject(new NotLeaderError(leader));
        }
      }
      this.log({ level: 'info', msg: 'leadership changed', leader: leader || null, role, term: this.raw.raft.term });
      this.emit('leader', { leader, term: this.raw.raft.term, role } satisfies LeaderChange);
    }
  }

  /** Lazy compaction (see the simulation's SimNode): snapshot at A, compact once A + trailing is applied. */
  private async maybeCompact(): Promise<void> {
    const p = this.pendingSnapshot;
    if (p && this.applied >= p.meta.index + this.opts.compactTrailingEntries) {
      this.pendingSnapshot = undefined;
      await this.storage.compact(p);
      this.raw.compacted(p.meta.index);
      this.log({ level: 'debug', msg: 'compacted log', index: p.meta.index, bytes: p.data.byteLength });
    }
    if (
      !this.pendingSnapshot &&
      this.applied >= this.lastSnapshotIndex + this.opts.snapshotEveryEntries &&
      this.appliedBytesSinceSnapshot >= this.lastSnapshotBytes
    ) {
      const index = this.applied;
      const term = this.raw.raft.log.term(index);
      if (term === undefined) return;
      this.pendingSnapshot = { meta: { index, term, conf: this.raw.confAt(index) }, data: this.fsm.snapshot() };
      this.lastSnapshotIndex = index;
      this.lastSnapshotBytes = this.pendingSnapshot.data.byteLength;
      this.appliedBytesSinceSnapshot = 0;
    }
  }

  private failAll(err: Error): void {
    for (const p of this.proposalQueue) p.reject(err);
    this.proposalQueue = [];
    for (const p of this.proposals.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.proposals.clear();
    for (const r of this.reads.values()) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    this.reads.clear();
    this.readQueue = [];
  }

  private fatal(e: unknown): void {
    // A failed disk write or a broken invariant: continuing could acknowledge
    // something that is not durable. Stop, and let the owner decide (the daemon exits).
    const err = e instanceof Error ? e : new Error(String(e));
    this.log({ level: 'error', msg: 'raft node stopped on a fatal error', error: err.message });
    this.stopped = `fatal: ${err.message}`;
    if (this.ticker) clearInterval(this.ticker);
    this.failAll(new NodeStoppedError(this.stopped));
    if (this.listenerCount('fatal') > 0) this.emit('fatal', err);
    else throw err;
  }
}
