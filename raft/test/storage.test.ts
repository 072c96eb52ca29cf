// LevelStorage: durability, validation on open, and crash consistency (I1: a node
// persists entries and term/vote before acting on them, so what a save resolved
// must survive any crash, and a crash must never leave a mix of two writes).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Level } from 'level';
import { EntryType, type ConfState, type Entry, type Snapshot } from '../src/core/types.js';
import { FORMAT_VERSION_KEY, HARD_STATE_KEY, SNAPSHOT_KEY, encodeEntry, encodeFormatVersion, encodeHardState, entryKey } from '../src/storage/codec.js';
import { LevelStorage } from '../src/storage/level-storage.js';
import { CompactedError, CorruptStorageError, UnavailableError } from '../src/storage/storage.js';
import { applyOp, crashScript, stateDigest, type CrashScript } from './storage-crash-child.js';

const CONF: ConfState = { voters: ['n1', 'n2', 'n3'], learners: ['n4'] };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ogel-storage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ent(index: number, term: number, text = `cmd-${index}-${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function range(from: number, to: number, term: number): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ent(from + i, term));
}

function all(s: LevelStorage): Entry[] {
  return s.lastIndex() < s.firstIndex() ? [] : s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
}

/** Opens the raw LevelDB under a store to damage it the way a disk or a bug would. */
async function tamper(dir: string, fn: (db: Level<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function rawGet(db: Level<string, Uint8Array>, key: string): Promise<Uint8Array> {
  const v: Uint8Array | undefined = await db.get(key);
  assert.ok(v, `key ${key} should exist`);
  return Uint8Array.from(v);
}

function expectCorrupt(where: string, detail: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof CorruptStorageError, `expected CorruptStorageError, got ${String(err)}`);
    assert.equal(err.where, where);
    assert.match(err.message, detail);
    return true;
  };
}

/** A store holding entries 1..5 (term 1), hard state commit 3 and a snapshot-less log. */
async function seeded(dir: string): Promise<void> {
  const s = await LevelStorage.open(dir);
  await s.save({ entries: range(1, 5, 1), hardState: { term: 1, vote: 'n1', commit: 3 } });
  await s.close();
}

describe('LevelStorage round trip', () => {
  it('entries and hard state survive a reopen byte for byte', async (t) => {
    const dir = await tempDir(t);
    const s = await LevelStorage.open(dir);
    assert.equal(s.isEmpty(), true);
    const written = [...range(1, 3, 1), { index: 4, term: 2, type: EntryType.ConfChange, data: new Uint8Array([0, 255, 7]) }, ent(5, 2, '')];
    await s.save({ entries: written, hardState: { term: 2, vote: 'n2', commit: 4 } });
    await s.close();

    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.equal(r.isEmpty(), false);
    assert.deepEqual(r.initialState(), { hardState: { term: 2, vote: 'n2', commit: 4 }, conf: { voters: [], learners: [] } });
    assert.equal(r.firstIndex(), 1);
    assert.equal(r.lastIndex(), 5);
    assert.deepEqual(all(r), written);
    assert.ok(
      all(r).every((e) => e.data.constructor === Uint8Array),
      'data decodes as a plain Uint8Array',
    );
    assert.equal(r.term(0), 0);
    assert.throws(() => r.term(6), UnavailableError);
    // maxBytes limits the batch but always returns at least one entry.
    assert.equal(r.entries(1, 6, 1).length, 1);
  });

  it('a conflicting append truncates the suffix, and the truncation survives a reopen', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    await s.save({ entries: [ent(4, 2, 'new leader')], hardState: { term: 2, vote: 'n3', commit: 3 } });
    assert.equal(s.lastIndex(), 4);
    await s.close();

    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.equal(r.lastIndex(), 4);
    assert.deepEqual(all(r), [...range(1, 3, 1), ent(4, 2, 'new leader')]);
    // The deleted key must really be gone: appending 5 again must not resurrect old data.
    await r.save({ entries: [ent(5, 2)] });
    assert.deepEqual(r.entries(5, 6, 1000), [ent(5, 2)]);
  });

  it('compact drops entries up to the snapshot, durably', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    const snap: Snapshot = { meta: { index: 3, term: 1, conf: CONF }, data: new Uint8Array([9, 8, 7]) };
    await s.compact(snap);
    await s.compact({ ...snap, meta: { ...snap.meta, index: 2 } }); // older: a no-op
    await s.close();

    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.equal(r.firstIndex(), 4);
    assert.equal(r.lastIndex(), 5);
    assert.equal(r.term(3), 1);
    assert.throws(() => r.term(2), CompactedError);
    assert.throws(() => r.entries(2, 4, 1000), CompactedError);
    assert.deepEqual(all(r), range(4, 5, 1));
    assert.deepEqual(r.snapshot(), snap);
    assert.deepEqual(r.initialState().conf, CONF);
  });

  it('compact rejects a snapshot beyond the log or with the wrong term, writing nothing', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    t.after(() => s.close());
    await assert.rejects(s.compact({ meta: { index: 9, term: 1, conf: CONF }, data: new Uint8Array(0) }), /beyond last index 5/);
    await assert.rejects(s.compact({ meta: { index: 3, term: 7, conf: CONF }, data: new Uint8Array(0) }), /differs from the log's term 1/);
    assert.equal(s.firstIndex(), 1);
    await s.save({ entries: [ent(6, 1)] }); // the chain survives rejected steps
    assert.equal(s.lastIndex(), 6);
  });

  it('save({snapshot}) replaces the whole log, durably', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    // Index 4 lies inside the old log: the entry after it (5) must go too.
    const snap: Snapshot = { meta: { index: 4, term: 3, conf: CONF }, data: new Uint8Array([1, 2]) };
    await s.save({ snapshot: snap, entries: [], hardState: { term: 3, vote: '', commit: 4 } });
    assert.equal(s.lastIndex(), 4);
    await s.close();

    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.equal(r.firstIndex(), 5);
    assert.equal(r.lastIndex(), 4);
    assert.equal(r.term(4), 3);
    assert.deepEqual(r.snapshot(), snap);
    assert.deepEqual(r.initialState(), { hardState: { term: 3, vote: '', commit: 4 }, conf: CONF });
    await r.save({ entries: range(5, 6, 3) });
    assert.deepEqual(all(r), range(5, 6, 3));
  });

  it('concurrent saves are serialized in call order', async (t) => {
    const dir = await tempDir(t);
    const s = await LevelStorage.open(dir);
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 20; i++) saves.push(s.save({ entries: [ent(i, 1)], hardState: { term: 1, vote: 'n1', commit: Math.min(i - 1, 9) } }));
    saves.push(s.save({ entries: range(10, 12, 2) })); // truncates 13..20
    await Promise.all(saves);
    await s.close();
    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.deepEqual(all(r), [...range(1, 9, 1), ...range(10, 12, 2)]);
    assert.equal(r.hardState().commit, 9);
  });

  it('refuses a write it could not reopen (gap, commit beyond the log)', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    t.after(() => s.close());
    await assert.rejects(s.save({ entries: [ent(8, 1)] }), /gap between last index 5 and new entry 8/);
    await assert.rejects(s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 6 } }), /commit 6 would be beyond the last index 5/);
    await assert.rejects(s.save({ entries: [ent(2, 2)] }), /commit 3 would be beyond the last index 2/);
    assert.equal(s.lastIndex(), 5);
  });

  it('refuses to open a newer format version', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    await tamper(dir, (db) => db.put(FORMAT_VERSION_KEY, encodeFormatVersion(2)));
    await assert.rejects(LevelStorage.open(dir), /has format version 2, newer than version 1 this build reads; refusing to open/);
  });
});

describe('LevelStorage bootstrap', () => {
  it('bootstraps an empty store once, and refuses after a reopen', async (t) => {
    const dir = await tempDir(t);
    const s = await LevelStorage.open(dir);
    await s.bootstrap(CONF);
    assert.deepEqual(s.initialState().conf, CONF);
    assert.equal(s.isEmpty(), false);
    await s.close();

    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    // The bootstrap snapshot sits at index 1, term 1 (see bootstrapSnapshot).
    assert.deepEqual(r.initialState(), { hardState: { term: 1, vote: '', commit: 1 }, conf: CONF });
    assert.equal(r.snapshot().meta.index, 1);
    assert.equal(r.snapshot().meta.term, 1);
    await r.save({ entries: [ent(2, 4)], hardState: { term: 4, vote: 'n1', commit: 1 } });
    await assert.rejects(r.bootstrap(CONF), {
      message: `refusing to bootstrap: raft storage in ${dir} already holds state (term 4, last index 2)`,
    });
  });

  it('refuses to bootstrap a store that only holds a hard state', async (t) => {
    const dir = await tempDir(t);
    const s = await LevelStorage.open(dir);
    await s.save({ entries: [], hardState: { term: 2, vote: 'n2', commit: 0 } });
    await s.close();
    const r = await LevelStorage.open(dir);
    t.after(() => r.close());
    assert.equal(r.isEmpty(), false);
    await assert.rejects(r.bootstrap(CONF), /refusing to bootstrap: .* already holds state \(term 2, last index 0\)/);
  });

  it('open({bootstrapConf}) bootstraps only an empty store', async (t) => {
    const dir = await tempDir(t);
    const s = await LevelStorage.open(dir, { bootstrapConf: CONF });
    assert.deepEqual(s.initialState().conf, CONF);
    await s.close();
    const r = await LevelStorage.open(dir, { bootstrapConf: { voters: ['other'], learners: [] } });
    t.after(() => r.close());
    assert.deepEqual(r.initialState().conf, CONF, 'what is on disk wins');
  });
});

describe('LevelStorage refuses corrupt stores', () => {
  it('a flipped byte in an entry: checksum mismatch naming the entry', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    let original: Uint8Array = new Uint8Array(0);
    await tamper(dir, async (db) => {
      original = await rawGet(db, entryKey(3));
      const v = Uint8Array.from(original);
      v[v.length - 1]! ^= 0x01;
      await db.put(entryKey(3), v);
    });
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('entry 3', /checksum mismatch/));
    // The failed open released the LOCK, and repairing the value makes the store open again.
    await tamper(dir, (db) => db.put(entryKey(3), original));
    const s = await LevelStorage.open(dir);
    assert.equal(s.lastIndex(), 5);
    await s.close();
  });

  it('a deleted middle entry: gap', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    await tamper(dir, (db) => db.del(entryKey(3)));
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('entry 4', /gap: expected index 3, found 4/));
  });

  it('a corrupt hard state: checksum mismatch naming the hard state', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    await tamper(dir, async (db) => {
      const v = await rawGet(db, HARD_STATE_KEY);
      v[9]! ^= 0x40;
      await db.put(HARD_STATE_KEY, v);
    });
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('hard state', /checksum mismatch/));
  });

  it('a truncated value: truncated', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    await tamper(dir, async (db) => {
      const v = await rawGet(db, entryKey(5));
      await db.put(entryKey(5), v.subarray(0, v.length - 3));
    });
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('entry 5', /truncated value: header says \d+ payload bytes, found \d+/));
    await tamper(dir, (db) => db.put(entryKey(5), new Uint8Array([0, 0, 1])));
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('entry 5', /truncated value: 3 bytes/));
  });

  it('a corrupt snapshot: checksum mismatch naming the snapshot', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    await s.compact({ meta: { index: 2, term: 1, conf: CONF }, data: new Uint8Array(100).fill(5) });
    await s.close();
    await tamper(dir, async (db) => {
      const v = await rawGet(db, SNAPSHOT_KEY);
      v[v.length - 50]! ^= 0xff;
      await db.put(SNAPSHOT_KEY, v);
    });
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('snapshot', /checksum mismatch/));
  });

  // Well-formed, correctly checksummed values that do not form a valid history.
  const histories: Array<[string, (db: Level<string, Uint8Array>) => Promise<void>, string, RegExp]> = [
    ['an entry whose index differs from its key', (db) => db.put(entryKey(4), encodeEntry(ent(5, 1))), 'entry 4', /index field 5 does not match its key/],
    ['a term that decreases', (db) => db.put(entryKey(5), encodeEntry(ent(5, 0))), 'entry 5', /term decreases: 0 after 1/],
    [
      'a commit beyond the last index',
      (db) => db.put(HARD_STATE_KEY, encodeHardState({ term: 1, vote: 'n1', commit: 6 })),
      'hard state',
      /commit 6 is beyond the last index 5/,
    ],
    ['an unknown key', (db) => db.put('zz', new Uint8Array(1)), 'key "zz"', /unknown key/],
    ['a malformed entry key', (db) => db.put('e:12', encodeEntry(ent(12, 1))), 'key "e:12"', /malformed entry key/],
    ['a missing format version', (db) => db.del(FORMAT_VERSION_KEY), 'format version', /key missing/],
  ];
  for (const [name, damage, where, detail] of histories) {
    it(`${name}`, async (t) => {
      const dir = await tempDir(t);
      await seeded(dir);
      await tamper(dir, damage);
      await assert.rejects(LevelStorage.open(dir), expectCorrupt(where, detail));
    });
  }

  it('an entry left at or below the snapshot index', async (t) => {
    const dir = await tempDir(t);
    await seeded(dir);
    const s = await LevelStorage.open(dir);
    await s.compact({ meta: { index: 3, term: 1, conf: CONF }, data: new Uint8Array(0) });
    await s.close();
    await tamper(dir, (db) => db.put(entryKey(2), encodeEntry(ent(2, 1))));
    await assert.rejects(LevelStorage.open(dir), expectCorrupt('entry 2', /at or below the snapshot index 3/));
  });
});

// ---------------------------------------------------------------------------------
// Crash points: SIGKILL a child mid-sequence and check that the reopened store is
// exactly the last acknowledged state or the one after it (the save in flight).

const CHILD = fileURLToPath(new URL('./storage-crash-child.js', import.meta.url));
const STEPS = 150;

interface Ack {
  step: number;
  digest: string;
}

interface ChildRun {
  acks: Ack[];
  killed: boolean;
  firstAckMs: number;
  elapsedMs: number;
}

interface KillPlan {
  /** SIGKILL once this many steps are acknowledged... */
  afterAcks?: number;
  /** ...and this much later, so the kill lands at different points of the next save. */
  jitterMs?: number;
  /** Or: SIGKILL this long after spawning. */
  afterMs?: number;
}

function runChild(dir: string, seed: number, kill: KillPlan): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CHILD, dir, String(seed), String(STEPS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let firstAckMs = -1;
    let pending = '';
    let stderr = '';
    let killed = false;
    let killScheduled = false;
    const killNow = (): void => {
      if (!killed) killed = child.kill('SIGKILL');
    };
    const timer = kill.afterMs === undefined ? undefined : setTimeout(killNow, kill.afterMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        acks.push(JSON.parse(pending.slice(0, nl)) as Ack);
        pending = pending.slice(nl + 1);
        if (firstAckMs < 0) firstAckMs = performance.now() - started;
      }
      if (kill.afterAcks !== undefined && acks.length >= kill.afterAcks && !killScheduled) {
        killScheduled = true;
        if (kill.jitterMs === undefined) killNow();
        else setTimeout(killNow, kill.jitterMs);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`crash child failed (code ${code}): ${stderr}`));
      else resolve({ acks, killed: signal === 'SIGKILL', firstAckMs, elapsedMs: performance.now() - started });
    });
  });
}

/** Reopens after a run and checks the store against the script; returns the step it matched. */
async function checkRecovery(dir: string, script: CrashScript, run: ChildRun, label: string): Promise<number> {
  run.acks.forEach((a, i) => {
    assert.equal(a.step, i + 1, `${label}: acks are consecutive`);
    assert.equal(a.digest, script.digests[a.step], `${label}: the child's state after step ${a.step} matches the model`);
  });
  const acked = run.acks.length;
  const s = await LevelStorage.open(dir); // must not throw: a crash never corrupts
  try {
    const digest = stateDigest(s);
    // Only one save is ever in flight, so it either landed entirely or not at all.
    const matched = [acked, acked + 1].find((i) => i <= STEPS && script.digests[i] === digest);
    assert.notEqual(
      matched,
      undefined,
      `${label}: after ${acked} acknowledged steps the store matches neither step ${acked} nor ${acked + 1}` +
        ` (it matches step ${script.digests.indexOf(digest)} of the script; -1 means none)`,
    );
    // The recovered store is a working store: finishing the script reaches the final state.
    for (let i = matched!; i < STEPS; i++) await applyOp(s, script.ops[i]!);
    assert.equal(stateDigest(s), script.digests[STEPS], `${label}: finishing the script from step ${matched} reaches the final state`);
    return matched!;
  } finally {
    await s.close();
  }
}

describe('LevelStorage crash points', () => {
  it('a crash between any two writes restarts into an acknowledged state', async (t) => {
    const baseDir = await tempDir(t);
    let n = 0;
    const attempt = async (seed: number, kill: KillPlan): Promise<ChildRun> => {
      const dir = join(baseDir, String(n++));
      const script = crashScript(seed, STEPS);
      const label = `seed ${seed}, kill ${JSON.stringify(kill)}`;
      const run = await runChild(dir, seed, kill);
      const matched = await checkRecovery(dir, script, run, label);
      t.diagnostic(`${label}: ${run.acks.length} acked, killed=${run.killed}, recovered step ${matched}`);
      return run;
    };

    // Uninterrupted: every step acknowledged, the final state durable. Its timing
    // bounds the random kill timers below.
    const full = await attempt(1, {});
    assert.equal(full.killed, false);
    assert.equal(full.acks.length, STEPS);

    // Kill points: at the start, around the compaction (STEPS/3) and the snapshot
    // install (2*STEPS/3), mid-run, and just before the end. The child keeps running
    // while the kill is delivered, so each lands a little after its nominal step.
    // Half the kills are immediate (usually mid-fsync of the next save), half jittered.
    const afterAcks = [1, 2, 3, 49, 50, 51, 75, 99, 100, 101, STEPS - 1];
    for (let i = 0; i < afterAcks.length; i++) {
      await attempt(100 + i, { afterAcks: afterAcks[i]!, ...(i % 2 === 1 ? { jitterMs: 1 + (i % 3) } : {}) });
    }

    // Random timers over the stretch where writes happen (start-up dominates the run).
    t.diagnostic(`uninterrupted run: first ack after ${full.firstAckMs.toFixed(0)} ms, done after ${full.elapsedMs.toFixed(0)} ms`);
    for (let i = 0; i < 4; i++) {
      const afterMs = Math.round(full.firstAckMs * 0.9 + Math.random() * (full.elapsedMs - full.firstAckMs * 0.9));
      await attempt(200 + i, { afterMs });
    }
  });
});
