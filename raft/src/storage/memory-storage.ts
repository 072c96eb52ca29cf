// In-memory Storage: the simulation's "disk" (it survives a simulated crash because
// the simulator keeps the object), and the base the LevelDB store caches through.

import { cloneConf, emptyHardState, type ConfState, type Entry, type HardState, type Snapshot } from '../core/types.js';
import { bootstrapSnapshot, CompactedError, UnavailableError, type InitialState, type Storage, type StorageUpdate } from './storage.js';

export function entryBytes(e: Entry): number {
  // Fixed overhead approximates the encoded header so empty entries are not free.
  return e.data.byteLength + 24;
}

export class MemoryStorage implements Storage {
  private hard: HardState = emptyHardState();
  private snap: Snapshot;
  /** ents[0] is a dummy entry at the snapshot index carrying the snapshot's term. */
  private ents: Entry[];

  /** Empty, or bootstrapped with an initial membership (see bootstrapSnapshot). */
  constructor(bootstrapConf?: ConfState) {
    this.snap = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    this.ents = [{ index: 0, term: 0, type: 0, data: new Uint8Array(0) }];
    if (bootstrapConf) {
      const { snapshot, hardState } = bootstrapSnapshot(bootstrapConf);
      this.applyUpdate({ snapshot, hardState, entries: [] });
    }
  }

  initialState(): InitialState {
    return { hardState: { ...this.hard }, conf: cloneConf(this.snap.meta.conf) };
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(index: number): number {
    const off = this.offset();
    if (index < off) throw new CompactedError(index, off + 1);
    const e = this.ents[index - off];
    if (e === undefined) throw new UnavailableError(index, this.lastIndex());
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new CompactedError(lo, off + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - off]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  hardState(): HardState {
    return { ...this.hard };
  }

  /** Synchronous form of save(), for the simulation and for write-through caches. */
  applyUpdate(update: StorageUpdate): void {
    if (update.snapshot) this.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.append(update.entries);
    if (update.hardState) this.hard = { ...update.hardState };
  }

  async save(update: StorageUpdate): Promise<void> {
    this.applyUpdate(update);
  }

  async compact(snapshot: Snapshot): Promise<void> {
    this.compactSync(snapshot);
  }

  compactSync(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    const off = this.offset();
    if (index <= off) return; // an older snapshot than we hold: nothing to do
    if (index > this.lastIndex()) {
      throw new Error(`compact: snapshot index ${index} beyond last index ${this.lastIndex()}`);
    }
    const kept = this.ents.slice(index - off);
    kept[0] = { index, term: snapshot.meta.term, type: 0, data: new Uint8Array(0) };
    this.ents = kept;
    this.snap = snapshot;
  }

  async close(): Promise<void> {}

  private offset(): number {
    return this.ents[0]!.index;
  }

  private applySnapshot(snapshot: Snapshot): void {
    // A snapshot from the leader replaces the whole log: entries after it may
    // disagree with the leader's log, and the core re-fetches what it needs.
    this.snap = snapshot;
    this.ents = [{ index: snapshot.meta.index, term: snapshot.meta.term, type: 0, data: new Uint8Array(0) }];
  }

  private append(entries: Entry[]): void {
    const first = entries[0]!.index;
    const off = this.offset();
    // Entries at or below the snapshot are already committed and compacted: skip them.
    const skip = Math.max(0, off + 1 - first);
    if (skip >= entries.length) return;
    const start = first + skip;
    if (start > this.lastIndex() + 1) {
      throw new Error(`append: gap between last index ${this.lastIndex()} and new entry ${start}`);
    }
    this.ents = this.ents.slice(0, start - off).concat(entries.slice(skip));
  }
}
