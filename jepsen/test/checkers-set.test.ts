// Set checker: lost, unexpected (three reasons), duplicated, recovered;
// indeterminate adds; the final read; malformed histories; and properties on
// histories generated from a real set.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkSet } from '../checkers/set.js';
import type { Anomaly } from '../checkers/types.js';
import { HistoryError } from '../history/errors.js';
import type { CompletionType, Json } from '../history/types.js';
import { assignProcesses, ops, type Spec } from './checkers-helpers.js';

const add = (p: number, e: Json, t: readonly [number, number | null], type: CompletionType = 'ok', extra: Partial<Spec> = {}): Spec => ({
  p,
  f: 'add',
  arg: e,
  t,
  type,
  ...extra,
});
const read = (p: number, elements: Json[], t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'read',
  res: elements,
  t,
  type,
});
const run = (specs: Spec[]) => checkSet(ops(specs));
const types = (as: Anomaly[]): string[] => as.map((a) => (a.type === 'unexpected' ? `unexpected:${a.reason}` : a.type));

describe('set checker', () => {
  it('accepts the empty history', () => {
    const r = run([]);
    assert.equal(r.valid, true);
    assert.equal(r.stats.finalReadSize, -1);
  });

  it('accepts every acknowledged add present in the final read', () => {
    const r = run([add(0, 1, [0, 1]), add(1, 2, [0, 2]), add(0, 3, [2, 3]), read(2, [3, 1, 2], [10, 11])]);
    assert.equal(r.valid, true);
    assert.deepEqual(r.anomalies, []);
    assert.equal(r.stats.acknowledged, 3);
    assert.equal(r.stats.finalReadSize, 3);
  });

  it('reports an acknowledged add missing from the final read as lost, with the add and the read', () => {
    const r = run([add(0, 1, [0, 1]), { ...add(1, 2, [0, 2]), node: 'n2' }, read(2, [1], [10, 11])]);
    assert.equal(r.valid, false);
    assert.equal(r.stats.lost, 1);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'lost');
    assert.equal(a.element, 2);
    assert.equal(a.add.index, 1);
    assert.equal(a.add.completeMs, 2);
    assert.equal(a.add.node, 'n2');
    assert.equal(a.read.index, 4);
    assert.equal(a.readIsFinal, true);
    assert.equal(a.read.value, undefined); // the whole set is not copied into the report
    assert.match(a.message, /element 2 is lost: its add #1 p1 add 2 was acknowledged at 2 ms by node n2, before the final read #4/);
  });

  it('does not call an add lost when it completed after the final read began', () => {
    const r = run([add(0, 1, [0, 12]), read(2, [], [10, 11])]);
    assert.equal(r.valid, true);
    assert.equal(r.stats.okConcurrentAbsent, 1);
    // touching: completed at the instant the read began: not provably before it
    assert.equal(run([add(0, 1, [0, 10]), read(2, [], [10, 11])]).valid, true);
  });

  it('lets indeterminate adds be present (recovered) or absent', () => {
    const r = run([add(0, 1, [0, 1], 'info'), add(1, 2, [0, 1], 'info'), add(3, 3, [0, null]), read(2, [1, 3], [10, 11])]);
    assert.equal(r.valid, true);
    assert.equal(r.stats.recovered, 2);
    assert.equal(r.stats.indeterminateAbsent, 1);
    assert.equal(r.stats.indeterminate, 3);
  });

  it('reports unexpected elements: never added, added by a failed op, added after the read', () => {
    const r = run([
      add(0, 1, [0, 1]),
      add(1, 2, [0, 1], 'fail', { error: 'could not serialize access' }),
      read(2, [1, 2, 99, 5], [10, 11]),
      add(0, 5, [12, 13]),
    ]);
    assert.equal(r.valid, false);
    assert.deepEqual(types(r.anomalies), ['unexpected:failed-insert', 'unexpected:never-attempted', 'unexpected:added-after-read']);
    assert.equal(r.stats.unexpected, 3);
    assert.match(r.anomalies[0]!.message, /failed \(could not serialize access\): a failure was reported for a write that took effect/);
  });

  it('reports duplicated elements with their count', () => {
    const r = run([add(0, 1, [0, 1]), add(0, 2, [2, 3]), read(2, [1, 2, 1, 1], [10, 11])]);
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'duplicated');
    assert.equal(a.element, 1);
    assert.equal(a.count, 3);
  });

  it('keeps 1 and "1" apart', () => {
    assert.deepEqual(types(run([add(0, 1, [0, 1]), read(2, ['1'], [10, 11])]).anomalies), ['unexpected:never-attempted', 'lost']);
  });

  it('uses the last ok read as the final read; failed and indeterminate reads do not count', () => {
    const specs = [add(0, 1, [0, 1]), read(2, [1], [2, 3]), read(2, [1], [4, 5]), read(2, [], [6, 7], 'fail'), read(3, [], [6, 8], 'info')];
    const r = run(specs);
    assert.equal(r.valid, true);
    assert.equal(r.stats.reads, 2);
  });

  it('answers unknown without an ok read', () => {
    const r = run([add(0, 1, [0, 1]), read(2, [], [2, 3], 'info')]);
    assert.equal(r.valid, 'unknown');
    assert.equal(r.anomalies[0]?.type, 'unknown');
  });

  it('bounds the anomalies it lists but counts them all', () => {
    const specs: Spec[] = Array.from({ length: 150 }, (_, i) => add(i, i, [0, 1]));
    specs.push(read(1000, [], [10, 11]));
    const r = checkSet(ops(specs), { maxAnomalies: 10 });
    assert.equal(r.stats.lost, 150);
    assert.equal(r.anomalies.length, 10);
    assert.equal(r.stats.anomaliesOmitted, 140);
  });

  it('throws HistoryError on malformed set histories', () => {
    const bad = (specs: Spec[], pattern: RegExp): void =>
      assert.throws(
        () => run(specs),
        (e: unknown) => e instanceof HistoryError && pattern.test(e.message),
      );
    bad([add(0, 1, [0, 1]), add(1, 1, [2, 3])], /added again \(first by #0\); set inserts must be unique/);
    bad([add(0, { x: 1 }, [0, 1])], /add must be invoked with a string or number element/);
    bad([{ p: 0, f: 'read', res: 'all', t: [0, 1] }], /ok read must complete with an array/);
    bad([{ p: 0, f: 'delete', arg: 1, t: [0, 1] }], /unknown f "delete"/);
  });
});

// ---------------------------------------------------------------------------
// Properties: a real set, adds with random windows and outcomes, a final read.

interface GenAdd {
  before: number;
  after: number;
  outcome: 'ok' | 'info' | 'fail' | 'pending';
  applied: boolean;
}
const genAdd: fc.Arbitrary<GenAdd> = fc.record({
  before: fc.integer({ min: 0, max: 300 }),
  after: fc.integer({ min: 0, max: 300 }),
  outcome: fc.constantFrom('ok', 'ok', 'ok', 'info', 'fail', 'pending'),
  applied: fc.boolean(),
});

function setHistory(gen: readonly GenAdd[]): { specs: Spec[]; present: number[]; acked: number[] } {
  const present: number[] = [];
  const acked: number[] = [];
  const items = gen.map((g, e) => {
    const t = 100 * (e + 1);
    const inv = t - g.before;
    const cmp = g.outcome === 'pending' ? null : t + g.after;
    if (g.outcome === 'ok' || ((g.outcome === 'info' || g.outcome === 'pending') && g.applied)) present.push(e);
    if (g.outcome === 'ok') acked.push(e);
    const spec: Omit<Spec, 'p'> = { f: 'add', arg: e, t: [inv, cmp] };
    if (g.outcome !== 'pending') spec.type = g.outcome;
    return { inv, cmp, spec };
  });
  const end = 100 * (gen.length + 1) + 400; // after every completion
  items.push({ inv: end, cmp: end + 1, spec: { f: 'read', res: [...present].reverse(), t: [end, end + 1] } });
  return { specs: assignProcesses(items).map(({ p, spec }) => ({ ...spec, p })), present, acked };
}

const withFinalRead = (specs: Spec[], f: (elements: number[]) => number[]): Spec[] =>
  specs.map((s) => (s.f === 'read' ? { ...s, res: f(s.res as number[]) } : s));

describe('set checker: properties', () => {
  it('histories of a real set are valid, with recovered = indeterminate adds that happened', () => {
    fc.assert(
      fc.property(fc.array(genAdd, { maxLength: 60 }), (gen) => {
        const { specs } = setHistory(gen);
        const r = run(specs);
        assert.equal(r.valid, true, JSON.stringify(r.anomalies));
        const expected = gen.filter((g) => (g.outcome === 'info' || g.outcome === 'pending') && g.applied).length;
        assert.equal(r.stats.recovered, expected);
      }),
      { numRuns: 200 },
    );
  });

  it('dropping an acknowledged element is reported as exactly that lost element', () => {
    fc.assert(
      fc.property(fc.array(genAdd, { minLength: 1, maxLength: 60 }), fc.nat(), (gen, pick) => {
        const { specs, acked } = setHistory(gen);
        fc.pre(acked.length > 0);
        const victim = acked[pick % acked.length]!;
        const r = run(withFinalRead(specs, (es) => es.filter((e) => e !== victim)));
        assert.equal(r.valid, false);
        assert.deepEqual(
          r.anomalies.map((a) => (a.type === 'lost' ? a.element : a.type)),
          [victim],
        );
      }),
      { numRuns: 200 },
    );
  });

  it('a duplicated or never-added element is reported', () => {
    fc.assert(
      fc.property(fc.array(genAdd, { minLength: 1, maxLength: 60 }), fc.nat(), (gen, pick) => {
        const { specs, present } = setHistory(gen);
        const extra = run(withFinalRead(specs, (es) => [...es, 10_000]));
        assert.deepEqual(types(extra.anomalies), ['unexpected:never-attempted']);
        fc.pre(present.length > 0);
        const twice = present[pick % present.length]!;
        const dup = run(withFinalRead(specs, (es) => [...es, twice]));
        assert.deepEqual(types(dup.anomalies), ['duplicated']);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// Reads during the run: each ok read is checked, not only the final one.

describe('set checker: reads during the run', () => {
  it('reports an acknowledged add missing from a read during the run, even if the final read has it', () => {
    const r = run([add(0, 1, [0, 1]), read(2, [], [2, 3]), read(2, [1], [4, 5])]);
    assert.equal(r.valid, false);
    assert.deepEqual(types(r.anomalies), ['lost']);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'lost');
    assert.equal(a.read.index, 2);
    assert.equal(a.readIsFinal, false);
  });

  it('reports an element seen by a read and missing from a later read that began after it ended', () => {
    // an indeterminate add: present once, so it happened; it cannot vanish afterwards
    const r = run([add(0, 1, [0, null]), read(2, [1], [2, 3]), read(2, [], [4, 5])]);
    assert.equal(r.valid, false);
    assert.deepEqual(types(r.anomalies), ['disappeared']);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'disappeared');
    assert.equal(a.element, 1);
    assert.equal(a.seenBy.index, 1);
    assert.equal(a.missingFrom.index, 3);
    // an acknowledged add still in flight when the later read began: not lost, but it was seen
    const s = run([add(0, 1, [0, 10]), read(2, [1], [2, 3]), read(3, [], [4, 5]), read(2, [1], [11, 12])]);
    assert.equal(s.valid, false);
    assert.deepEqual(types(s.anomalies), ['disappeared']);
  });

  it('reports elements never attempted, or added after the read, in a read during the run', () => {
    assert.deepEqual(types(run([read(2, [7], [0, 1]), read(2, [], [2, 3])]).anomalies), ['unexpected:never-attempted']);
    assert.deepEqual(types(run([read(2, [5], [0, 1]), add(0, 5, [2, 3]), read(2, [5], [4, 5])]).anomalies), ['unexpected:added-after-read']);
    assert.deepEqual(types(run([add(0, 5, [0, 1], 'fail'), read(2, [5], [2, 3]), read(2, [], [4, 5])]).anomalies), ['unexpected:failed-insert']);
    assert.deepEqual(types(run([add(0, 5, [0, 1]), read(2, [5, 5], [2, 3]), read(2, [5], [4, 5])]).anomalies), ['duplicated']);
  });

  it('accepts reads during the run that grow with the adds, concurrent adds either way, overlapping reads in any order', () => {
    const r = run([
      add(0, 1, [0, 1]),
      add(1, 2, [0, 20]),
      add(3, 3, [0, 1], 'info'),
      read(2, [1], [2, 3]),
      read(4, [1, 2], [2, 6]),
      read(5, [1, 3], [4, 5]),
      // overlaps the read that saw 2: may miss it
      read(6, [1, 3], [5, 7]),
      read(2, [1, 2, 3], [21, 22]),
    ]);
    assert.equal(r.valid, true, JSON.stringify(r.anomalies));
    assert.equal(r.stats.reads, 5);
    assert.equal(r.stats.finalReadSize, 3);
  });
});
