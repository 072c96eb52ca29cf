// One simulated Raft node: the core, a KV state machine, and a MemoryStorage that
// plays the disk. A crash throws away everything but the storage; a restart builds
// the node again from what was persisted.

import { RawNode, type Ready } from '../src/core/raw-node.js';
import { DEFAULT_CONFIG, type RaftConfig } from '../src/core/raft.js';
import { acknowledgesNothing, EntryType, NONE, type ConfState, type Entry, type Message, type NodeId, type Snapshot } from '../src/core/types.js';
import { MemoryStorage } from '../src/storage/memory-storage.js';
import type { LogReader } from '../src/storage/storage.js';
import { decodeKvCommand, KvStateMachine, type KvResult } from './kv-fsm.js';
import type { Prng } from './prng.js';

export interface SimNodeOptions {
  raft: Partial<Omit<RaftConfig, 'id' | 'random'>>;
  /** Take a state-machine snapshot every this many applied entries. */
  snapshotEveryEntries: number;
  /** Compact to a snapshot once this many entries were applied after it. */
  compactTrailingEntries: number;
  /** Broken variant: persist the hard state without the vote. */
  unsafeForgetVote?: boolean;
}

export interface NodeHooks {
  /** An entry was applied on this node. */
  onApply(node: SimNode, entry: Entry, result: KvResult | undefined): void;
  /** Entries were persisted starting at this index (for log-matching checks). */
  onPersist(node: SimNode, fromIndex: number): void;
  onBecameLeader(node: SimNode, term: number): void;
  onRestoreSnapshot(node: SimNode, snapshot: Snapshot): void;
  send(messages: Message[]): void;
  onReadState(node: SimNode, context: Uint8Array, index: number): void;
  /** The node crashed in the middle of a write (crashDuringNextWrite); the harness restarts it. */
  onCrashedMidWrite(node: SimNode): void;
}

export class SimNode {
  readonly storage: MemoryStorage;
  raw: RawNode | undefined;
  fsm = new KvStateMachine();
  /** Applied index of the state machine. */
  applied = 0;
  private pendingSnapshot: Snapshot | undefined;
  private lastSnapshotIndex = 0;
  /** Fault injection: crash after the early sends of the next Ready, before its write lands. */
  crashDuringNextWrite = false;
  /** Readiness of reads: context hex -> index, waiting for applied >= index. */
  readonly waitingReads: { context: Uint8Array; index: number }[] = [];

  constructor(
    readonly id: NodeId,
    initialConf: ConfState | undefined,
    private readonly opts: SimNodeOptions,
    private readonly rng: Prng,
    private readonly hooks: NodeHooks,
  ) {
    this.storage = new MemoryStorage(initialConf);
  }

  get alive(): boolean {
    return this.raw !== undefined;
  }

  start(): void {
    const cfg: RaftConfig = { ...DEFAULT_CONFIG, ...this.opts.raft, id: this.id, random: () => this.rng.next() };
    this.raw = new RawNode(cfg, this.storage as LogReader);
    this.fsm = new KvStateMachine();
    const snap = this.storage.snapshot();
    this.fsm.restore(snap.data);
    this.applied = snap.meta.index;
    this.lastSnapshotIndex = snap.meta.index;
    this.pendingSnapshot = undefined;
    this.waitingReads.length = 0;
  }

  crash(): void {
    this.raw = undefined;
    this.pendingSnapshot = undefined;
    this.waitingReads.length = 0;
  }

  /** Runs the Ready loop until the core has nothing more to say. */
  process(): void {
    const raw = this.raw;
    if (!raw) return;
    for (let rounds = 0; this.raw === raw && raw.hasReady(); rounds++) {
      if (rounds > 10_000) throw new Error(`node ${this.id}: Ready loop did not settle`);
      this.handleReady(raw, raw.ready());
    }
  }

  private handleReady(raw: RawNode, rd: Ready): void {
    // 1. As RaftNode does: messages that acknowledge nothing go out before the write...
    const early = rd.messages.filter((m) => acknowledgesNothing(m.type));
    const late = rd.messages.filter((m) => !acknowledgesNothing(m.type));
    if (early.length > 0) this.hooks.send(early);
    // ...and a crash can strike while the write is in flight: nothing of it lands.
    if (this.crashDuringNextWrite && (rd.entries.length > 0 || rd.hardState || rd.snapshot)) {
      this.crashDuringNextWrite = false;
      this.hooks.onCrashedMidWrite(this);
      return;
    }
    // 2. Persist (the simulated fsync), before anything that depends on it.
    const hardState = rd.hardState && this.opts.unsafeForgetVote ? { ...rd.hardState, vote: NONE } : rd.hardState;
    this.storage.applyUpdate({ entries: rd.entries, ...(hardState ? { hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
    if (rd.entries.length > 0) this.hooks.onPersist(this, rd.entries[0]!.index);
    if (rd.softState?.role === 'leader') this.hooks.onBecameLeader(this, raw.raft.term);
    // 3. Send what depended on the write.
    if (late.length > 0) this.hooks.send(late);
    // 3. Apply.
    if (rd.snapshot) {
      this.fsm.restore(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.lastSnapshotIndex = rd.snapshot.meta.index;
      this.pendingSnapshot = undefined;
      this.hooks.onRestoreSnapshot(this, rd.snapshot);
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.applied) continue;
      let result: KvResult | undefined;
      if (e.type === EntryType.Normal && e.data.byteLength > 0) result = this.fsm.apply(decodeKvCommand(e.data));
      this.applied = e.index;
      this.hooks.onApply(this, e, result);
    }
    for (const rs of rd.readStates) this.waitingReads.push({ context: rs.context, index: rs.index });
    raw.advance(rd);
    this.releaseReads();
    this.maybeCompact(raw);
  }

  private releaseReads(): void {
    for (let i = 0; i < this.waitingReads.length; ) {
      const w = this.waitingReads[i]!;
      if (w.index <= this.applied) {
        this.waitingReads.splice(i, 1);
        this.hooks.onReadState(this, w.context, w.index);
      } else i++;
    }
  }

  /**
   * Snapshot lazily: capture the state machine at applied index A, and compact the
   * log to A only once a few more entries were applied, so that followers slightly
   * behind still get entries instead of a whole snapshot.
   */
  private maybeCompact(raw: RawNode): void {
    const p = this.pendingSnapshot;
    if (p && this.applied >= p.meta.index + this.opts.compactTrailingEntries) {
      this.storage.compactSync(p);
      raw.compacted(p.meta.index);
      this.pendingSnapshot = undefined;
    }
    if (!this.pendingSnapshot && this.applied >= this.lastSnapshotIndex + this.opts.snapshotEveryEntries) {
      const index = this.applied;
      const term = raw.raft.log.term(index);
      if (term === undefined) return;
      this.pendingSnapshot = { meta: { index, term, conf: raw.confAt(index) }, data: this.fsm.snapshot() };
      this.lastSnapshotIndex = index;
    }
  }

  /** Entry at index from the live log, or from storage when crashed. */
  entryAt(index: number): Entry | undefined {
    try {
      if (this.raw) return this.raw.raft.log.slice(index, index + 1, Number.MAX_SAFE_INTEGER)[0];
      if (index < this.storage.firstIndex() || index > this.storage.lastIndex()) return undefined;
      return this.storage.entries(index, index + 1, Number.MAX_SAFE_INTEGER)[0];
    } catch {
      return undefined;
    }
  }

  termAt(index: number): number | undefined {
    if (this.raw) return this.raw.raft.log.term(index);
    try {
      return this.storage.term(index);
    } catch {
      return undefined;
    }
  }

  lastIndex(): number {
    return this.raw ? this.raw.raft.log.lastIndex() : this.storage.lastIndex();
  }

  firstIndex(): number {
    return this.raw ? this.raw.raft.log.firstIndex() : this.storage.firstIndex();
  }
}
