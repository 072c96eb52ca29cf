// Durable Storage on LevelDB, write-through to an in-memory MemoryStorage.
//
// The core reads synchronously and cannot await, so the whole un-compacted log
// lives in memory (compaction bounds it) and every read is served from the cache.
// Writes go to disk first, as one synchronous (fsync'd) LevelDB batch, and reach
// the cache only after the batch resolves: the core must never observe, and so
// never act on, state that a crash could still take away (I1).
//
// Opening validates everything and repairs nothing: a store that does not form a
// valid history throws CorruptStorageError. Guessing here could resurrect a vote
// or an entry this node already promised away, which is worse than refusing to start.

import { Level } from 'level';
import { assert } from '../core/assert.js';
import type { ConfState, Entry, HardState, Snapshot } from '../core/types.js';
import {
  ENTRY_KEY_PREFIX,
  FORMAT_VERSION,
  FORMAT_VERSION_KEY,
  HARD_STATE_KEY,
  SNAPSHOT_KEY,
  decodeEntry,
  decodeFormatVersion,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeFormatVersion,
  encodeHardState,
  encodeSnapshot,
  entryKey,
  parseEntryKey,
} from './codec.js';
import { MemoryStorage } from './memory-storage.js';
import { bootstrapSnapshot, CorruptStorageError, type InitialState, type Storage, type StorageUpdate } from './storage.js';

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export interface LevelStorageOptions {
  /**
   * Membership to bootstrap with if, and only if, the store is empty. A store that
   * already holds state ignores it: what is on disk wins on every restart.
   */
  bootstrapConf?: ConfState;
}

interface Loaded {
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

export class LevelStorage implements Storage {
  private readonly cache: MemoryStorage;
  /** True once anything (hard state, entry, snapshot) has been written; see isEmpty(). */
  private holdsState: boolean;
  /** Saves, compactions, bootstrap and close run one at a time, in call order. */
  private tail: Promise<void> = Promise.resolve();
  private closed = false;
  /** A failed write leaves disk and cache possibly out of step: refuse everything after it. */
  private failure: unknown = undefined;

  private constructor(
    readonly dir: string,
    private readonly db: Level<string, Uint8Array>,
    loaded: Loaded,
  ) {
    this.cache = new MemoryStorage();
    this.cache.applyUpdate({
      entries: loaded.entries,
      ...(loaded.snapshot ? { snapshot: loaded.snapshot } : {}),
      ...(loaded.hardState ? { hardState: loaded.hardState } : {}),
    });
    this.holdsState = loaded.hardState !== undefined || loaded.snapshot !== undefined || loaded.entries.length > 0;
  }

  /** Opens (creating if needed) the store in `dir`, validates it and loads it into memory. */
  static async open(dir: string, opts: LevelStorageOptions = {}): Promise<LevelStorage> {
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await db.open();
    try {
      const storage = new LevelStorage(dir, db, await load(db, dir));
      if (opts.bootstrapConf && storage.isEmpty()) await storage.bootstrap(opts.bootstrapConf);
      return storage;
    } catch (err) {
      // Release the LOCK so the operator (or a test) can inspect the store.
      await db.close().catch(() => {});
      throw err;
    }
  }

  // --- LogReader: synchronous, from the cache -------------------------------------

  initialState(): InitialState {
    return this.cache.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.cache.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.cache.term(index);
  }
  firstIndex(): number {
    return this.cache.firstIndex();
  }
  lastIndex(): number {
    return this.cache.lastIndex();
  }
  snapshot(): Snapshot {
    return this.cache.snapshot();
  }
  hardState(): HardState {
    return this.cache.hardState();
  }

  /** No hard state, entry or snapshot has ever been written: safe to bootstrap. */
  isEmpty(): boolean {
    return !this.holdsState;
  }

  /**
   * Records the initial membership (bootstrapSnapshot: index 1, term 1). Refuses a store that
   * already holds state: re-bootstrapping a member would let it forget its vote and
   * log and form a second cluster.
   */
  bootstrap(conf: ConfState): Promise<void> {
    return this.serialize(async () => {
      if (!this.isEmpty()) {
        throw new Error(
          `refusing to bootstrap: raft storage in ${this.dir} already holds state ` +
            `(term ${this.cache.hardState().term}, last index ${this.cache.lastIndex()})`,
        );
      }
      const { snapshot, hardState } = bootstrapSnapshot(conf);
      await this.write([
        { type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(snapshot) },
        { type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hardState) },
      ]);
      this.cache.applyUpdate({ snapshot, hardState, entries: [] });
    });
  }

  // --- Storage: durable writes ------------------------------------------------------

  save(update: StorageUpdate): Promise<void> {
    return this.serialize(async () => {
      const ops = this.planSave(update);
      if (ops.length === 0) return;
      const onlyCommit = update.entries.length === 0 && !update.snapshot;
      assert(update.sync !== false || onlyCommit, 'save: only a commit-only update may skip fsync');
      await this.write(ops, update.sync !== false);
      this.cache.applyUpdate(update);
    });
  }

  compact(snapshot: Snapshot): Promise<void> {
    return this.serialize(async () => {
      const index = snapshot.meta.index;
      const first = this.cache.firstIndex();
      if (index < first) return; // not newer than what we hold: nothing to do (as MemoryStorage)
      if (index > this.cache.lastIndex()) {
        throw new Error(`compact: snapshot index ${index} beyond last index ${this.cache.lastIndex()}`);
      }
      // A snapshot whose term disagrees with our log is a caller bug; storing it
      // would make term(index) lie after a restart.
      const term = this.cache.term(index);
      if (term !== snapshot.meta.term) {
        throw new Error(`compact: snapshot term ${snapshot.meta.term} at index ${index} differs from the log's term ${term}`);
      }
      const ops: BatchOp[] = [{ type: 'put', key: SNAPSHOT_KEY, value: encodeSnapshot(snapshot) }];
      for (let i = first; i <= index; i++) ops.push({ type: 'del', key: entryKey(i) });
      await this.write(ops);
      this.cache.compactSync(snapshot);
    });
  }

  /** Waits for queued writes, then closes the database. Later writes reject. */
  close(): Promise<void> {
    if (this.closed) return this.tail;
    return this.serialize(async () => {
      this.closed = true;
      await this.db.close();
    });
  }

  // --- internals ------------------------------------------------------------------

  /**
   * The batch that makes disk equal to what cache.applyUpdate(update) will make the
   * cache, computed against the cache (which equals disk, since writes are serialized).
   * Also asserts the update keeps the invariants open() checks, so we never write a
   * store we would later refuse to open.
   */
  private planSave(update: StorageUpdate): BatchOp[] {
    // null marks a deletion; a later put of the same key overrides it.
    const ops = new Map<string, Uint8Array | null>();
    let snapIndex = this.cache.firstIndex() - 1;
    let snapTerm = this.cache.snapshot().meta.term;
    let last = this.cache.lastIndex();
    const termAt = (i: number): number => (i === snapIndex ? snapTerm : this.cache.term(i));

    if (update.snapshot) {
      // An installed snapshot replaces the whole log, including entries after it.
      ops.set(SNAPSHOT_KEY, encodeSnapshot(update.snapshot));
      for (let i = snapIndex + 1; i <= last; i++) ops.set(entryKey(i), null);
      snapIndex = update.snapshot.meta.index;
      snapTerm = update.snapshot.meta.term;
      last = snapIndex;
    }

    const ents = update.entries;
    if (ents.length > 0) {
      const firstNew = ents[0]!.index;
      for (let i = 1; i < ents.length; i++) {
        if (ents[i]!.index !== firstNew + i) throw new Error(`save: entries not contiguous at position ${i} (index ${ents[i]!.index})`);
        if (ents[i]!.term < ents[i - 1]!.term) throw new Error(`save: entry ${ents[i]!.index} term ${ents[i]!.term} below its predecessor's`);
      }
      // Entries at or below the snapshot are committed and compacted: skip them.
      const skip = Math.max(0, snapIndex + 1 - firstNew);
      if (skip < ents.length) {
        const start = firstNew + skip;
        if (start > last + 1) throw new Error(`append: gap between last index ${last} and new entry ${start}`);
        const prevTerm = termAt(start - 1);
        if (ents[skip]!.term < prevTerm) {
          throw new Error(`save: entry ${start} term ${ents[skip]!.term} below the preceding term ${prevTerm}`);
        }
        const newLast = ents[ents.length - 1]!.index;
        // Append truncates the conflicting suffix: those keys must go in the same batch.
        for (let i = newLast + 1; i <= last; i++) ops.set(entryKey(i), null);
        for (let i = skip; i < ents.length; i++) ops.set(entryKey(ents[i]!.index), encodeEntry(ents[i]!));
        last = newLast;
      }
    }

    const commit = (update.hardState ?? this.cache.hardState()).commit;
    if (commit > last) throw new Error(`save: commit ${commit} would be beyond the last index ${last}`);
    if (update.hardState) ops.set(HARD_STATE_KEY, encodeHardState(update.hardState));

    const out: BatchOp[] = [];
    for (const [key, value] of ops) out.push(value === null ? { type: 'del', key } : { type: 'put', key, value });
    return out;
  }

  private async write(ops: BatchOp[], sync = true): Promise<void> {
    try {
      // sync: fsync before resolving; without it a power loss could drop an acknowledged write.
      await this.db.batch(ops, { sync });
    } catch (err) {
      this.failure = err;
      throw err;
    }
    this.holdsState = true;
  }

  private serialize(fn: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed) throw new Error(`raft storage in ${this.dir} is closed`);
      if (this.failure !== undefined) {
        throw new Error(`raft storage in ${this.dir} refused: an earlier write failed`, { cause: this.failure });
      }
      await fn();
    };
    const p = this.tail.then(run);
    // The chain survives a rejected step; the caller sees the rejection through `p`.
    this.tail = p.catch(() => {});
    return p;
  }
}

/** Reads and validates the whole store. Throws CorruptStorageError on any inconsistency. */
async function load(db: Level<string, Uint8Array>, dir: string): Promise<Loaded> {
  // Level's typings say get() always yields a value; at runtime a missing key is undefined.
  const get = (key: string): Promise<Uint8Array | undefined> => db.get(key);
  const versionValue = await get(FORMAT_VERSION_KEY);
  const hardValue = await get(HARD_STATE_KEY);
  const snapValue = await get(SNAPSHOT_KEY);

  if (versionValue === undefined) {
    for await (const key of db.keys({ limit: 1 })) {
      throw new CorruptStorageError('format version', `key missing, but the store holds other keys (first: ${key})`);
    }
    // A brand new store: claim it with our format before anything else lands in it.
    await db.batch([{ type: 'put', key: FORMAT_VERSION_KEY, value: encodeFormatVersion(FORMAT_VERSION) }], { sync: true });
    return { hardState: undefined, snapshot: undefined, entries: [] };
  }
  const version = decodeFormatVersion('format version', versionValue);
  if (version > FORMAT_VERSION) {
    throw new Error(`raft storage in ${dir} has format version ${version}, newer than version ${FORMAT_VERSION} this build reads; refusing to open`);
  }
  if (version < 1) throw new CorruptStorageError('format version', `unknown version ${version}`);

  const hardState = hardValue === undefined ? undefined : decodeHardState('hard state', hardValue);
  const snapshot = snapValue === undefined ? undefined : decodeSnapshot('snapshot', snapValue);
  const snapIndex = snapshot?.meta.index ?? 0;
  let prevTerm = snapshot?.meta.term ?? 0;

  const entries: Entry[] = [];
  let expected = snapIndex + 1;
  for await (const [key, value] of db.iterator()) {
    if (key === FORMAT_VERSION_KEY || key === HARD_STATE_KEY || key === SNAPSHOT_KEY) continue;
    const index = parseEntryKey(key);
    if (index === undefined) {
      throw new CorruptStorageError(`key ${JSON.stringify(key)}`, key.startsWith(ENTRY_KEY_PREFIX) ? 'malformed entry key' : 'unknown key');
    }
    const where = `entry ${index}`;
    const e = decodeEntry(where, value);
    if (e.index !== index) throw new CorruptStorageError(where, `index field ${e.index} does not match its key`);
    if (index <= snapIndex) throw new CorruptStorageError(where, `at or below the snapshot index ${snapIndex}, which compaction deletes`);
    if (index !== expected) throw new CorruptStorageError(where, `gap: expected index ${expected}, found ${index}`);
    if (e.term < prevTerm) throw new CorruptStorageError(where, `term decreases: ${e.term} after ${prevTerm}`);
    entries.push(e);
    prevTerm = e.term;
    expected++;
  }

  const lastIndex = expected - 1;
  // commit may be at or below the snapshot index (a snapshot's entries are all committed).
  if (hardState && hardState.commit > lastIndex) {
    throw new CorruptStorageError('hard state', `commit ${hardState.commit} is beyond the last index ${lastIndex}`);
  }
  return { hardState, snapshot, entries };
}
