// Property tests of the FSM (I2, I3): replicas agree byte for byte, snapshot+restore
// equals continuous apply, the generation never decreases, at most one primary per
// generation, rejections change nothing, and apply reads no clock or randomness.
// Seeds are printed by fast-check on failure; replay with { seed, path }.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apply, type ApplyResult } from '../apply.js';
import { decodeCommand, encodeSnapshot } from '../codec.js';
import { isRejection } from '../errors.js';
import { COMMAND_TYPES } from '../commands.js';
import { checkState } from '../invariants.js';
import { ClusterStateMachine } from '../machine.js';
import { initialState, type ClusterState } from '../state.js';
import { hex } from './helpers.js';
import { materialize, stepsArb, type Step } from './gen.js';

/** Entries for a step sequence, each materialized against the state the previous ones produced. */
function entriesFor(steps: Step[]): Uint8Array[] {
  const driver = new ClusterStateMachine();
  return steps.map((step, i) => {
    const bytes = materialize(driver.state, step, i);
    driver.apply(bytes.slice(), i + 1, 1);
    return bytes;
  });
}

test('the generator exercises every command type and mostly produces valid commands (fixed seed)', () => {
  let applied = 0;
  let ok = 0;
  const okTypes = new Set<string>();
  for (const steps of fc.sample(stepsArb(120), { numRuns: 40, seed: 7 })) {
    const m = new ClusterStateMachine();
    steps.forEach((step, i) => {
      const r = m.apply(materialize(m.state, step, i), i + 1, 1);
      applied++;
      if (r.ok) {
        ok++;
        okTypes.add(r.type);
      }
    });
  }
  assert.ok(ok / applied > 0.45, `only ${ok} of ${applied} commands succeeded`);
  assert.deepEqual([...okTypes].sort(), [...COMMAND_TYPES].sort(), 'some command types never succeeded');
});

test('the generator reaches backup chains: incrementals recorded, parents refused deletion, unusable parents refused (fixed seed)', () => {
  let chains = 0;
  const seen = { incremental: 0, parentInUse: 0, unusable: 0, chainDeleted: 0 };
  for (const steps of fc.sample(stepsArb(300), { numRuns: 30, seed: 11 })) {
    const m = new ClusterStateMachine();
    steps.forEach((step, i) => {
      const before = m.state;
      const r = m.apply(materialize(m.state, step, i), i + 1, 1);
      if (r.ok && r.type === 'backup.record' && [...m.state.backups.values()].some((b) => b.kind === 'incremental' && !before.backups.has(b.id)))
        seen.incremental++;
      if (r.ok && r.type === 'backup.delete' && [...before.backups.values()].some((b) => b.kind === 'incremental' && !m.state.backups.has(b.id)))
        seen.chainDeleted++;
      if (!r.ok && r.error.code === 'backup_in_use' && r.error.message.includes('is an incremental of')) seen.parentInUse++;
      if (!r.ok && r.error.code === 'backup_unusable') seen.unusable++;
      // I7 in the index, in every reachable state: every incremental's parent is recorded and complete.
      for (const b of m.state.backups.values()) {
        if (b.parent !== null) assert.equal(m.state.backups.get(b.parent)?.state, 'complete');
      }
      if ([...m.state.backups.values()].some((b) => b.parent !== null && m.state.backups.get(b.parent)!.parent !== null)) chains++;
    });
  }
  for (const [k, n] of Object.entries(seen)) assert.ok(n >= 3, `${k}: only ${n}`);
  assert.ok(chains > 0, 'no chain of two incrementals was ever built');
});

test('the generator reaches the WAL archive: new ranges, gaps, merges, covered reports, stale generations, trims (fixed seed)', () => {
  const seen = { first: 0, gap: 0, merged: 0, covered: 0, stale: 0, trimmed: 0, timelinesDropped: 0 };
  for (const steps of fc.sample(stepsArb(300), { numRuns: 30, seed: 13 })) {
    const m = new ClusterStateMachine();
    steps.forEach((step, i) => {
      const before = m.state.walArchive.ranges;
      const bytes = materialize(m.state, step, i);
      const c = decodeCommand(bytes);
      const r = m.apply(bytes, i + 1, 1);
      const after = m.state.walArchive.ranges;
      if (r.ok && r.type === 'wal.archived') {
        if (r.existed) seen.covered++;
        else if (after.length > before.length) seen[before.length === 0 ? 'first' : 'gap']++;
        else seen.merged++;
      }
      if (!r.ok && r.error.code === 'stale_generation' && !isRejection(c) && c.type.startsWith('wal.')) seen.stale++;
      if (r.ok && r.type === 'wal.forget' && after !== before) {
        if (after.some((x) => !before.includes(x))) seen.trimmed++;
        if (new Set(after.map((x) => x.timeline)).size < new Set(before.map((x) => x.timeline)).size) seen.timelinesDropped++;
      }
    });
  }
  for (const [k, n] of Object.entries(seen)) assert.ok(n >= 3, `${k}: only ${n}`);
});

test('P1: three replicas applying the same entries have byte-identical snapshots after every step', () => {
  fc.assert(
    fc.property(stepsArb(100), (steps) => {
      const replicas = [new ClusterStateMachine(), new ClusterStateMachine(), new ClusterStateMachine()];
      steps.forEach((step, i) => {
        const bytes = materialize(replicas[0]!.state, step, i);
        // Each replica gets its own copy, as if it came off its own disk.
        const results = replicas.map((m) => m.apply(bytes.slice(), i + 1, 1));
        assert.deepEqual(results[1], results[0]);
        assert.deepEqual(results[2], results[0]);
        const snaps = replicas.map((m) => hex(m.snapshot()));
        assert.equal(snaps[1], snaps[0]);
        assert.equal(snaps[2], snaps[0]);
        checkState(replicas[0]!.state);
      });
    }),
    { numRuns: 40 },
  );
});

test('P2: snapshot at any point, restore into a fresh machine, continue == continuous apply', () => {
  fc.assert(
    fc.property(stepsArb(100), fc.nat(), (steps, cutSeed) => {
      const entries = entriesFor(steps);
      const cut = cutSeed % (entries.length + 1);
      const continuous = new ClusterStateMachine();
      const first = new ClusterStateMachine();
      const results: ApplyResult[] = [];
      entries.forEach((e, i) => {
        results.push(continuous.apply(e.slice(), i + 1, 1));
      });
      entries.slice(0, cut).forEach((e, i) => {
        first.apply(e.slice(), i + 1, 1);
      });
      const restored = new ClusterStateMachine();
      restored.restore(first.snapshot());
      assert.equal(hex(restored.snapshot()), hex(first.snapshot()));
      const after = entries.slice(cut).map((e, i) => restored.apply(e.slice(), cut + i + 1, 1));
      // Results too: a message must not depend on Map order, which differs after a restore.
      assert.deepEqual(after, results.slice(cut));
      assert.equal(hex(restored.snapshot()), hex(continuous.snapshot()));
    }),
    { numRuns: 60 },
  );
});

/** Freezes a state graph so any mutation by apply throws (Maps get throwing mutators). */
function deepFreeze(v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return;
  if (v instanceof Map) {
    const refuse = () => {
      throw new Error('apply mutated a Map of an earlier state');
    };
    for (const k of ['set', 'delete', 'clear']) Object.defineProperty(v, k, { value: refuse });
    for (const x of v.values()) deepFreeze(x);
  } else {
    for (const x of Object.values(v)) deepFreeze(x);
  }
  Object.freeze(v);
}

test('P3: generation never decreases, one primary per generation, rejections leave the encoded state unchanged, states are never mutated', () => {
  fc.assert(
    fc.property(stepsArb(150), (steps) => {
      let state: ClusterState = initialState();
      deepFreeze(state);
      const primaryOf = new Map<number, string>();
      steps.forEach((step, i) => {
        const before = hex(encodeSnapshot(state));
        const decoded = decodeCommand(materialize(state, step, i));
        const out = isRejection(decoded) ? { state, result: decoded } : apply(state, decoded);
        const g0 = state.postgres.generation;
        const g1 = out.state.postgres.generation;
        assert.ok(g1 >= g0, `generation went from ${g0} to ${g1}`);
        if (!out.result.ok) {
          assert.equal(out.state, state);
          assert.equal(hex(encodeSnapshot(out.state)), before);
        } else if (out.result.type === 'pg.promote') {
          assert.equal(g1, g0 + 1);
          assert.ok(!primaryOf.has(g1), `two promotions in generation ${g1}`);
          primaryOf.set(g1, out.state.postgres.primary!);
        } else {
          assert.equal(g1, g0, `${out.result.type} changed the generation`);
        }
        const pg = out.state.postgres;
        if (pg.primary !== null) assert.equal(pg.primary, primaryOf.get(g1), `generation ${g1} has primary ${pg.primary}, but promoted ${primaryOf.get(g1)}`);
        assert.ok([...pg.nodes.values()].filter((n) => n.role === 'primary').length <= 1);
        if (pg.lease !== null) assert.equal(pg.lease.generation, g1);
        deepFreeze(out.state);
        state = out.state;
      });
    }),
    { numRuns: 80 },
  );
});

test('P4 (I2): apply, snapshot and restore read no clock, randomness or environment', () => {
  // Generate first: fast-check itself may look at the clock.
  const samples = fc.sample(stepsArb(150), { numRuns: 25, seed: 20240601 });
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = {
    dateNow: Date.now,
    Date: g['Date'],
    perfNow: performance.now,
    random: Math.random,
    getRandomValues: crypto.getRandomValues,
    randomUUID: crypto.randomUUID,
    hrtime: process.hrtime,
    env: Object.getOwnPropertyDescriptor(process, 'env')!,
  };
  const forbidden = (what: string) => () => {
    throw new Error(`I2 violated: the FSM called ${what}`);
  };
  let applied = 0;
  Date.now = forbidden('Date.now');
  g['Date'] = new Proxy(Date, { construct: forbidden('new Date()'), apply: forbidden('Date()') });
  performance.now = forbidden('performance.now');
  Math.random = forbidden('Math.random');
  crypto.getRandomValues = forbidden('crypto.getRandomValues') as typeof crypto.getRandomValues;
  crypto.randomUUID = forbidden('crypto.randomUUID') as typeof crypto.randomUUID;
  process.hrtime = Object.assign(forbidden('process.hrtime'), { bigint: forbidden('process.hrtime.bigint') }) as unknown as typeof process.hrtime;
  Object.defineProperty(process, 'env', { configurable: true, get: forbidden('process.env') });
  try {
    for (const steps of samples) {
      const m = new ClusterStateMachine();
      steps.forEach((step, i) => {
        m.apply(materialize(m.state, step, i), i + 1, 1);
        applied++;
      });
      const copy = new ClusterStateMachine();
      copy.restore(m.snapshot());
    }
  } finally {
    Date.now = saved.dateNow;
    g['Date'] = saved.Date;
    performance.now = saved.perfNow;
    Math.random = saved.random;
    crypto.getRandomValues = saved.getRandomValues;
    crypto.randomUUID = saved.randomUUID;
    process.hrtime = saved.hrtime;
    Object.defineProperty(process, 'env', saved.env);
  }
  assert.ok(applied > 500, `only ${applied} entries applied`);
  // The trap itself works (so a passing run means something).
  Math.random = forbidden('Math.random');
  try {
    assert.throws(() => Math.random(), /I2 violated/);
  } finally {
    Math.random = saved.random;
  }
});
