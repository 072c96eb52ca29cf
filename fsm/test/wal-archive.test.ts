// The continuous WAL archive's index (walArchive; wal.archived, wal.history,
// wal.forget, command version 7): effects and refusals, the limit, the invariants,
// and a model check of the merge and retention rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apply } from '../apply.js';
import { decodeSnapshot, encodeSnapshot } from '../codec.js';
import { InvariantError } from '../errors.js';
import { checkState } from '../invariants.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { LIMITS, walRangeCovering, walRangesOf, type ClusterState, type WalRange } from '../state.js';
import { C, clusterOf3, expectReject, run } from './helpers.js';

function ok(state: ClusterState, c: Parameters<typeof apply>[1]) {
  const out = apply(state, c);
  assert.equal(out.result.ok, true, JSON.stringify(out.result));
  checkState(out.state);
  return out;
}

/** A report of timeline 1 (generation 1, the primary of clusterOf3) at `atMs`. */
const report = (startLsn: string, endLsn: string, atMs: number, timeline = 1) => C.walArchived({ startLsn, endLsn, atMs, timeline });
const range = (timeline: number, startLsn: string, endLsn: string, startAtMs: number, endAtMs: number): WalRange => ({
  timeline,
  startLsn,
  endLsn,
  startAtMs,
  endAtMs,
});

test('wal.archived: a first report makes a range; a touching one extends it (endAtMs moves), an overlapping one merges, a covered one changes nothing', () => {
  let s = clusterOf3();
  assert.deepEqual(s.walArchive, { ranges: [], historyTimelines: [] });
  let out = ok(s, report('0/3000000', '0/3000100', 10));
  assert.deepEqual(out.result, { ok: true, type: 'wal.archived', generation: 1, existed: false });
  s = out.state;
  assert.deepEqual(s.walArchive.ranges, [range(1, '0/3000000', '0/3000100', 10, 10)]);
  // Touching (starts where the range ends): one range, the end and its time move on.
  s = ok(s, report('0/3000100', '0/3000200', 11)).state;
  assert.deepEqual(s.walArchive.ranges, [range(1, '0/3000000', '0/3000200', 10, 11)]);
  // Overlapping at both ends: the earlier start and its time, the later end and its time.
  s = ok(s, report('0/2FFFF00', '0/3000300', 12)).state;
  assert.deepEqual(s.walArchive.ranges, [range(1, '0/2FFFF00', '0/3000300', 12, 12)]);
  // Overlapping the start only: the end stays, with the time it was reached.
  s = ok(s, report('0/2FFFE00', '0/3000000', 13)).state;
  assert.deepEqual(s.walArchive.ranges, [range(1, '0/2FFFE00', '0/3000300', 13, 12)]);
  // Covered (inside, or exactly the range, or an empty report at its end): the same state, existed: true.
  for (const [a, b] of [
    ['0/3000000', '0/3000100'],
    ['0/2FFFE00', '0/3000300'],
    ['0/3000300', '0/3000300'],
  ]) {
    out = ok(s, report(a!, b!, 99));
    assert.equal(out.state, s);
    assert.deepEqual(out.result, { ok: true, type: 'wal.archived', generation: 1, existed: true });
  }
  // An empty report elsewhere marks where the archive of a timeline begins.
  s = ok(s, report('0/9000000', '0/9000000', 14, 3)).state;
  assert.deepEqual(s.walArchive.ranges[1], range(3, '0/9000000', '0/9000000', 14, 14));
  // Survives a snapshot round trip.
  assert.deepEqual(decodeSnapshot(encodeSnapshot(s)).walArchive, s.walArchive);
});

test('wal.archived: a gap shows as two ranges; a report filling it joins them; ranges stay sorted by timeline, then start', () => {
  let s = run([report('0/5000000', '0/6000000', 20, 2), report('0/1000000', '0/2000000', 21), report('0/3000000', '0/4000000', 22)], clusterOf3());
  assert.deepEqual(s.walArchive.ranges, [
    range(1, '0/1000000', '0/2000000', 21, 21),
    range(1, '0/3000000', '0/4000000', 22, 22),
    range(2, '0/5000000', '0/6000000', 20, 20),
  ]);
  // One byte short of touching: still a gap.
  s = ok(s, report('0/2000001', '0/2FFFFFF', 23)).state;
  assert.equal(walRangesOf(s, 1).length, 3);
  // Filling the gaps, end not past the last: the earlier range's start time, the later one's end time.
  s = ok(s, report('0/2000000', '0/3000000', 24)).state;
  assert.deepEqual(walRangesOf(s, 1), [range(1, '0/1000000', '0/4000000', 21, 22)]);
  // Joining several and growing past them: the report's time at the end.
  s = run([report('0/4800000', '0/4900000', 25), report('0/4A00000', '0/4B00000', 26), report('0/3800000', '0/4C00000', 27)], s);
  assert.deepEqual(walRangesOf(s, 1), [range(1, '0/1000000', '0/4C00000', 21, 27)]);
  // Another timeline's ranges are untouched, even at the same LSNs.
  assert.deepEqual(walRangesOf(s, 2), [range(2, '0/5000000', '0/6000000', 20, 20)]);
  assert.equal(walRangeCovering(s, 1, '0/2000000', '0/4C00000')?.startLsn, '0/1000000');
  assert.equal(walRangeCovering(s, 1, '0/2000000', '0/4C00001'), undefined, 'past the archived end');
  assert.equal(walRangeCovering(s, 2, '0/4FFFFFF', '0/5000001'), undefined, 'before the start');
  assert.equal(walRangeCovering(s, 3, '0/5000000', '0/5000000'), undefined);
});

test('wal.archived and wal.history: refused unless the generation is the current one (a fenced old primary must not extend the index)', () => {
  let s = run([report('0/3000000', '0/4000000', 10)], clusterOf3());
  expectReject(s, C.walArchived({ generation: 2 }), 'stale_generation', 'generation: 2 is ahead of the current generation 1');
  expectReject(s, C.walHistory({ generation: 0 }), 'stale_generation', 'generation: 0 is stale; the current generation is 1');
  // After n2's promotion, n1 (fenced) still streaming: its reports are refused, even a covered one.
  s = run([C.promote({ node: 'n2', generation: 2, reason: 'failover', lapsedLease: { holder: 'n1', renewalSeq: 0 } })], s);
  const r = expectReject(s, report('0/4000000', '0/5000000', 11), 'stale_generation', 'generation: 1 is stale; the current generation is 2');
  assert.equal(r.error.field, 'generation');
  expectReject(s, report('0/3000000', '0/3000001', 11), 'stale_generation');
  expectReject(s, C.walHistory(), 'stale_generation');
  s = ok(s, C.walArchived({ generation: 2, timeline: 2, startLsn: '0/4000000', endLsn: '0/5000000', atMs: 12 })).state;
  assert.deepEqual(
    s.walArchive.ranges.map((x) => x.timeline),
    [1, 2],
  );
});

test('wal.history: timelines ascending and distinct; idempotent (existed: true)', () => {
  let s = clusterOf3();
  s = run([C.walHistory({ timeline: 5 }), C.walHistory({ timeline: 2 }), C.walHistory({ timeline: 3 })], s);
  assert.deepEqual(s.walArchive.historyTimelines, [2, 3, 5]);
  const again = ok(s, C.walHistory({ timeline: 3, atMs: 99 }));
  assert.equal(again.state, s);
  assert.deepEqual(again.result, { ok: true, type: 'wal.history', generation: 1, existed: true });
  assert.deepEqual(ok(s, C.walHistory({ timeline: 4 })).result, { ok: true, type: 'wal.history', generation: 1, existed: false });
});

test('wal.forget: trims the timeline at beforeLsn, drops what ends at or before it, forgets older timelines and their history files, keeps later ones', () => {
  const base = run(
    [
      report('0/1000000', '0/2000000', 1, 1),
      report('0/1000000', '0/2000000', 2, 2),
      report('0/3000000', '0/4000000', 3, 2),
      report('0/5000000', '0/6000000', 4, 2),
      report('0/7000000', '0/7000000', 5, 2),
      report('0/0', '0/1000000', 6, 3),
      C.walHistory({ timeline: 2 }),
      C.walHistory({ timeline: 3 }),
    ],
    clusterOf3(),
  );
  // No generation: retention is the leader's, whatever the primary's generation.
  const out = ok(base, C.walForget({ timeline: 2, beforeLsn: '0/3800000', atMs: 50 }));
  assert.deepEqual(out.result, { ok: true, type: 'wal.forget', generation: 1 });
  assert.deepEqual(out.state.walArchive, {
    ranges: [
      // Straddling: starts at beforeLsn, startAtMs as it was.
      range(2, '0/3800000', '0/4000000', 3, 3),
      range(2, '0/5000000', '0/6000000', 4, 4),
      range(2, '0/7000000', '0/7000000', 5, 5),
      range(3, '0/0', '0/1000000', 6, 6),
    ],
    historyTimelines: [2, 3],
  });
  // A range ending exactly at beforeLsn holds nothing from there on: it goes.
  assert.deepEqual(
    walRangesOf(ok(base, C.walForget({ timeline: 2, beforeLsn: '0/4000000' })).state, 2).map((x) => x.startLsn),
    ['0/5000000', '0/7000000'],
  );
  // Forgetting timeline 3 from its start: timelines 1 and 2 and their history files go.
  const later = ok(base, C.walForget({ timeline: 3, beforeLsn: '0/0' })).state;
  assert.deepEqual(later.walArchive, { ranges: [range(3, '0/0', '0/1000000', 6, 6)], historyTimelines: [3] });
  // Nothing before the position: the same state.
  assert.equal(ok(base, C.walForget({ timeline: 1, beforeLsn: '0/1000000' })).state, base);
  assert.equal(ok(clusterOf3(), C.walForget()).state.walArchive.ranges.length, 0);
  // After a forget, a report that touches the trimmed range's start extends it back (report what is new).
  const back = ok(out.state, report('0/3000000', '0/3800000', 60, 2)).state;
  assert.deepEqual(walRangesOf(back, 2)[0], range(2, '0/3000000', '0/4000000', 60, 3));
});

/** clusterOf3 with `n` ranges on timeline 1, [i*0x100, i*0x100 + 0x10] each. */
function withRanges(n: number): ClusterState {
  const s = clusterOf3();
  const ranges = Array.from({ length: n }, (_, i) => range(1, formatLsn(BigInt(i * 0x100)), formatLsn(BigInt(i * 0x100 + 0x10)), i, i));
  return { ...s, walArchive: { ranges, historyTimelines: [] } };
}

test('LIMITS.walRanges: a new range past the bound is refused (limit_reached), merging still works, wal.forget frees some', () => {
  assert.equal(LIMITS.walRanges, 1_000);
  const full = withRanges(LIMITS.walRanges);
  checkState(full);
  expectReject(full, report('0/0', '0/1', 1, 2), 'limit_reached', `there are ${LIMITS.walRanges} WAL ranges, the most allowed (${LIMITS.walRanges})`);
  expectReject(full, report('0/100000', '0/100001', 1), 'limit_reached');
  // A report within or extending an existing range adds none.
  assert.equal(ok(full, report('0/0', '0/1', 1)).state, full);
  assert.equal(ok(full, report('0/10', '0/20', 1)).state.walArchive.ranges.length, LIMITS.walRanges);
  // Joining two makes room for one more.
  const joined = ok(full, report('0/10', '0/100', 1)).state;
  assert.equal(joined.walArchive.ranges.length, LIMITS.walRanges - 1);
  assert.equal(ok(joined, report('0/0', '0/1', 1, 2)).state.walArchive.ranges.length, LIMITS.walRanges);
  // Retention frees the oldest.
  const trimmed = ok(full, C.walForget({ beforeLsn: '0/1000' })).state;
  assert.equal(trimmed.walArchive.ranges.length, LIMITS.walRanges - 0x10);
  ok(trimmed, report('0/0', '0/1', 1, 2));
  // History files are bounded too.
  const histories = { ...clusterOf3(), walArchive: { ranges: [], historyTimelines: Array.from({ length: LIMITS.walHistories }, (_, i) => i + 2) } };
  checkState(histories);
  expectReject(histories, C.walHistory({ timeline: LIMITS.walHistories + 2 }), 'limit_reached', `${LIMITS.walHistories} archived history files`);
  assert.equal(ok(histories, C.walHistory({ timeline: 2 })).state, histories, 'an archived one is still acknowledged');
});

test('checkState and checkStep catch a broken WAL archive index: unsorted, overlapping, touching, reversed, bad history timelines, too many', () => {
  const s = clusterOf3();
  const broken = (ranges: WalRange[], historyTimelines: number[] = []): ClusterState => ({ ...s, walArchive: { ranges, historyTimelines } });
  const a = range(1, '0/100', '0/200', 1, 1);
  const cases: [ClusterState, RegExp][] = [
    [broken([range(2, '0/100', '0/200', 1, 1), a]), /follows a range of timeline 2: not sorted by timeline/],
    [broken([a, range(1, '0/150', '0/300', 1, 1)]), /overlaps or touches the range before it \(0\/100 to 0\/200\)/],
    [broken([a, range(1, '0/200', '0/300', 1, 1)]), /WAL range 1 \(timeline 1, 0\/200 to 0\/300\) overlaps or touches/],
    [broken([range(1, '0/300', '0/200', 1, 1)]), /WAL range 0 \(timeline 1, 0\/300 to 0\/200\) ends before it starts/],
    [broken([range(0, '0/100', '0/200', 1, 1)]), /has an invalid timeline/],
    [broken([], [1]), /archived history file of timeline 1: timelines with a history file are 2 or more/],
    [broken([], [3, 2]), /archived history timelines are not ascending and distinct/],
    [broken([], [2, 2]), /not ascending and distinct/],
    [withRanges(LIMITS.walRanges + 1), /1001 WAL ranges \(limit 1000\)/],
  ];
  for (const [state, re] of cases) {
    assert.throws(
      () => checkState(state),
      (e: unknown) => e instanceof InvariantError && re.test(e.message),
      String(re),
    );
    // After one of the archive's commands that changes it, checkStep checks the whole index too.
    if (state.walArchive.ranges.length < LIMITS.walRanges) assert.throws(() => apply(state, report('0/0', '0/1', 1, 9)), re);
  }
  // Touching ranges of different timelines are fine.
  checkState(broken([a, range(2, '0/200', '0/300', 1, 1)]));
});

// --- a model: the archive as a set of covered points -------------------------------------

type Op = { kind: 'archive'; timeline: number; start: number; len: number } | { kind: 'forget'; timeline: number; before: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('archive' as const),
      timeline: fc.integer({ min: 1, max: 3 }),
      start: fc.nat({ max: 60 }),
      len: fc.nat({ max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), timeline: fc.integer({ min: 1, max: 3 }), before: fc.nat({ max: 60 }) }) },
);

/**
 * LSN x is point 2x, and a report [s, e] covers the points 2s..2e: two reports share a
 * point exactly when they overlap or touch, so the ranges are the runs of covered points.
 */
class Model {
  private readonly points = new Map<number, Set<number>>();

  archive(timeline: number, s: number, e: number): boolean {
    const set = this.points.get(timeline) ?? new Set<number>();
    this.points.set(timeline, set);
    let covered = true;
    for (let p = 2 * s; p <= 2 * e; p++) {
      if (!set.has(p)) covered = false;
      set.add(p);
    }
    return covered;
  }

  forget(timeline: number, before: number): void {
    for (const t of [...this.points.keys()]) if (t < timeline) this.points.delete(t);
    const set = this.points.get(timeline);
    if (set === undefined) return;
    const kept = new Set<number>();
    for (const [a, b] of runs(set)) {
      if (a >= 2 * before) for (let p = a; p <= b; p++) kept.add(p);
      else if (b > 2 * before) for (let p = 2 * before; p <= b; p++) kept.add(p);
    }
    this.points.set(timeline, kept);
  }

  ranges(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (const t of [...this.points.keys()].sort((x, y) => x - y)) for (const [a, b] of runs(this.points.get(t)!)) out.push([t, a / 2, b / 2]);
    return out;
  }
}

function runs(set: ReadonlySet<number>): [number, number][] {
  const sorted = [...set].sort((x, y) => x - y);
  const out: [number, number][] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === p - 1) last[1] = p;
    else out.push([p, p]);
  }
  return out;
}

test('model: the ranges are always the runs of archived points, whatever the order of reports and forgets; existed exactly when covered', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
      let s = clusterOf3();
      const model = new Model();
      ops.forEach((op, i) => {
        if (op.kind === 'archive') {
          const out = ok(s, report(formatLsn(BigInt(op.start)), formatLsn(BigInt(op.start + op.len)), i, op.timeline));
          const covered = model.archive(op.timeline, op.start, op.start + op.len);
          assert.equal(out.result.ok && out.result.existed, covered);
          if (covered) assert.equal(out.state, s);
          s = out.state;
        } else {
          s = ok(s, C.walForget({ timeline: op.timeline, beforeLsn: formatLsn(BigInt(op.before)), atMs: i })).state;
          model.forget(op.timeline, op.before);
        }
        assert.deepEqual(
          s.walArchive.ranges.map((r) => [r.timeline, Number(parseLsn(r.startLsn)), Number(parseLsn(r.endLsn))]),
          model.ranges(),
        );
      });
    }),
    { numRuns: 150 },
  );
});
