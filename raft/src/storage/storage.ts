// The seam between the Raft core and durable storage (hashicorp/raft's LogStore +
// StableStore + SnapshotStore, folded into one because every write the core needs
// must be atomic across all three: entries, hard state and snapshot in one batch).
//
// Reads are synchronous: the core is pure and cannot await. Implementations keep
// the un-compacted log in memory (bounded by compaction) and write through to disk.

import { cloneConf, type ConfState, type Entry, type HardState, type Snapshot } from '../core/types.js';

export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`log index ${index} is compacted (first available index is ${firstIndex})`);
    this.name = 'CompactedError';
  }
}

export class UnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`log index ${index} is beyond the last index ${lastIndex}`);
    this.name = 'UnavailableError';
  }
}

/** Storage found on disk that does not form a valid history. Never repaired silently. */
export class CorruptStorageError extends Error {
  constructor(
    readonly where: string,
    detail: string,
  ) {
    super(`raft storage is corrupt at ${where}: ${detail}`);
    this.name = 'CorruptStorageError';
  }
}

export interface InitialState {
  hardState: HardState;
  /** Membership as of the snapshot; the core replays config entries after it. */
  conf: ConfState;
}

/** What the core reads, synchronously. */
export interface LogReader {
  initialState(): InitialState;
  /** Entries in [lo, hi), at most maxBytes of payload but always at least one if lo < hi. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of the entry at index; the snapshot's term at its index. Throws CompactedError / UnavailableError. */
  term(index: number): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** One durable, atomic write: what a Ready asks to persist. */
export interface StorageUpdate {
  hardState?: HardState;
  /** Entries to append; any existing entries at or after entries[0].index are replaced. */
  entries: Entry[];
  /** A snapshot received from the leader; replaces the whole log up to its index. */
  snapshot?: Snapshot;
  /**
   * Whether to fsync before resolving (default true). Only a write that changes
   * nothing but the commit index may skip it: the commit index is volatile state
   * in Raft (a restart may recover an older one and relearn it), while entries,
   * term and vote must be on disk before anything that depends on them is sent.
   */
  sync?: boolean;
}

export interface Storage extends LogReader {
  /** Persists the update atomically and durably (fsync) before resolving. */
  save(update: StorageUpdate): Promise<void>;
  /** The application snapshotted its state at `snapshot.meta.index`: store it and drop earlier entries. */
  compact(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}

/**
 * A new cluster starts from this snapshot on every initial member: index 1, term 1,
 * empty state-machine data, the initial membership. It is a snapshot rather than
 * entries in the log so that a node added later necessarily receives it (it is
 * below every leader's first log index), and with it the membership history that
 * the log alone would not show.
 */
/** Where a bootstrapped log starts: a log whose last entry is here has never held an entry of any leader. */
export const BOOTSTRAP_INDEX = 1;
export const BOOTSTRAP_TERM = 1;

export function bootstrapSnapshot(conf: ConfState): { snapshot: Snapshot; hardState: HardState } {
  return {
    snapshot: { meta: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, conf: cloneConf(conf) }, data: new Uint8Array(0) },
    hardState: { term: BOOTSTRAP_TERM, vote: '', commit: BOOTSTRAP_INDEX },
  };
}
