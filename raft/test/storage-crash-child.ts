// Crash-test helper for storage.test.ts. Two roles:
//
//  - Imported: crashScript() generates a deterministic sequence of storage writes
//    (appends, truncating appends, hard-state changes, a compaction, a snapshot
//    install) and, by replaying it against MemoryStorage, the digest of the state
//    after every step. The parent uses those digests as the only legal outcomes.
//
//  - Run as `node storage-crash-child.js <dir> <seed> <steps>`: applies the same
//    script to a LevelStorage in <dir> and prints one JSON line {step, digest}
//    after each write has resolved (i.e. is durable). The parent SIGKILLs it at
//    some point and checks what survived.

import { createHash } from 'node:crypto';
import { seededRandom } from '../sim/prng.js';
import { pathToFileURL } from 'node:url';
import { EntryType, type ConfState, type Entry, type HardState, type Snapshot } from '../src/core/types.js';
import { LevelStorage } from '../src/storage/level-storage.js';
import { MemoryStorage } from '../src/storage/memory-storage.js';
import { bootstrapSnapshot, type LogReader, type Storage, type StorageUpdate } from '../src/storage/storage.js';

export type CrashOp = { kind: 'bootstrap'; conf: ConfState } | { kind: 'save'; update: StorageUpdate } | { kind: 'compact'; snapshot: Snapshot };

export interface CrashScript {
  ops: CrashOp[];
  /** digests[0] is the empty store; digests[s] is the state after ops[s - 1]. */
  digests: string[];
}

/** A hash over everything a reader exposes, so "equal digest" means "identical state". */
export function stateDigest(r: LogReader): string {
  const h = createHash('sha256');
  const { hardState, conf } = r.initialState();
  const snap = r.snapshot();
  h.update(JSON.stringify({ hardState, conf, meta: snap.meta, first: r.firstIndex(), last: r.lastIndex() }));
  h.update(snap.data);
  const first = r.firstIndex();
  const last = r.lastIndex();
  if (last >= first) {
    for (const e of r.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) {
      h.update(JSON.stringify([e.index, e.term, e.type, e.data.byteLength]));
      h.update(e.data);
    }
  }
  return h.digest('hex');
}

export function crashScript(seed: number, steps: number): CrashScript {
  const rand = seededRandom(seed);
  const int = (n: number): number => Math.floor(rand() * n); // 0 .. n-1
  const bytes = (maxBytes: number): Uint8Array => Uint8Array.from({ length: int(maxBytes + 1) }, () => int(256));
  const nodes = ['n1', 'n2', 'n3'];
  const conf: ConfState = { voters: [...nodes], learners: [] };

  const model = new MemoryStorage();
  const ops: CrashOp[] = [];
  const digests = [stateDigest(model)];
  const push = (op: CrashOp): void => {
    ops.push(op);
    if (op.kind === 'bootstrap') model.applyUpdate({ ...bootstrapSnapshot(op.conf), entries: [] });
    else if (op.kind === 'save') model.applyUpdate(op.update);
    else model.compactSync(op.snapshot);
    digests.push(stateDigest(model));
  };
  const run = (from: number, count: number, term: number): Entry[] =>
    Array.from({ length: count }, (_, i) => ({
      index: from + i,
      term,
      type: int(10) === 0 ? EntryType.ConfChange : EntryType.Normal,
      data: bytes(96),
    }));

  push({ kind: 'bootstrap', conf });
  push({ kind: 'save', update: { hardState: { term: 1, vote: 'n1', commit: 1 }, entries: [] } });

  // Fixed points guarantee every script has a compaction and a snapshot install.
  const compactAt = Math.floor(steps / 3);
  const installAt = Math.floor((2 * steps) / 3);
  let compacted = false;
  let installed = false;
  while (ops.length < steps) {
    const hs: HardState = model.hardState();
    const snapIndex = model.firstIndex() - 1;
    const last = model.lastIndex();
    const r = rand();
    if (hs.commit > snapIndex && ((!compacted && ops.length >= compactAt) || r < 0.05)) {
      const index = snapIndex + 1 + int(hs.commit - snapIndex);
      push({ kind: 'compact', snapshot: { meta: { index, term: model.term(index), conf }, data: bytes(64) } });
      compacted = true;
    } else if (!installed && ops.length >= installAt) {
      // A leader's snapshot replaces the whole log; entries after it ride in the same save.
      const index = last + 5;
      const term = hs.term + 1;
      push({
        kind: 'save',
        update: {
          snapshot: { meta: { index, term, conf }, data: bytes(256) },
          entries: run(index + 1, 1 + int(3), term),
          hardState: { term, vote: '', commit: index },
        },
      });
      installed = true;
    } else if (r < 0.55) {
      const entries = run(last + 1, 1 + int(4), hs.term);
      const newLast = last + entries.length;
      push({ kind: 'save', update: { entries, hardState: { ...hs, commit: Math.min(newLast, hs.commit + int(4)) } } });
    } else if (r < 0.75 && last > hs.commit) {
      // A new leader overwrites the uncommitted suffix, often with fewer entries.
      const from = hs.commit + 1 + int(last - hs.commit);
      const term = hs.term + 1;
      push({ kind: 'save', update: { entries: run(from, 1 + int(3), term), hardState: { term, vote: nodes[int(3)]!, commit: hs.commit } } });
    } else {
      // A new term (and vote) or just commit progress; a vote never changes within a term.
      const term = hs.term + int(2);
      const vote = term === hs.term ? hs.vote : nodes[int(3)]!;
      push({ kind: 'save', update: { hardState: { term, vote, commit: Math.min(last, hs.commit + int(3)) }, entries: [] } });
    }
  }
  return { ops, digests };
}

export async function applyOp(s: Storage, op: CrashOp): Promise<void> {
  if (op.kind === 'bootstrap') {
    if (!(s instanceof LevelStorage)) throw new Error('bootstrap needs a LevelStorage');
    await s.bootstrap(op.conf);
  } else if (op.kind === 'save') await s.save(op.update);
  else await s.compact(op.snapshot);
}

async function main(dir: string, seed: number, steps: number): Promise<void> {
  const { ops } = crashScript(seed, steps);
  const storage = await LevelStorage.open(dir);
  for (let i = 0; i < ops.length; i++) {
    await applyOp(storage, ops[i]!);
    // Pipes are written synchronously on Linux, so once this returns the parent
    // may rely on step i + 1 being durable.
    process.stdout.write(JSON.stringify({ step: i + 1, digest: stateDigest(storage) }) + '\n');
  }
  await storage.close();
}

// Run only as a spawned child with arguments, never when imported or when a test
// runner happens to execute this file without arguments.
const argv1 = process.argv[1];
if (argv1 !== undefined && import.meta.url === pathToFileURL(argv1).href && process.argv.length >= 5) {
  await main(process.argv[2]!, Number(process.argv[3]), Number(process.argv[4]));
}
