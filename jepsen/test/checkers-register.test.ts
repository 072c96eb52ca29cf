// Register checker (linearizability per key): hand-made valid and invalid
// histories, indeterminate ops, budgets, malformed ops; then properties:
// histories generated from a sequential model with random concurrency windows
// are valid, a read mutated to a never-written value is not, and on mutated
// histories the verdict agrees with raft/sim's independent WGL checker.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRegister, type RegisterOptions } from '../checkers/register.js';
import type { NonlinearizableAnomaly } from '../checkers/types.js';
import { HistoryError } from '../history/errors.js';
import type { Json } from '../history/types.js';
import { checkKvHistory, type KvOperation } from '../../raft/sim/kv-model.js';
import { assignProcesses, cas, ops, rd, wr, type Spec } from './checkers-helpers.js';

const verdict = (specs: Spec[], opts?: RegisterOptions) => checkRegister(ops(specs), opts);
const valid = (specs: Spec[], opts?: RegisterOptions): void => {
  const r = verdict(specs, opts);
  assert.equal(r.valid, true, JSON.stringify(r.anomalies, null, 1));
  assert.deepEqual(r.anomalies, []);
};
const invalid = (specs: Spec[], opts?: RegisterOptions): NonlinearizableAnomaly => {
  const r = verdict(specs, opts);
  assert.equal(r.valid, false);
  const a = r.anomalies.find((x) => x.type === 'nonlinearizable');
  assert.ok(a !== undefined && a.type === 'nonlinearizable', JSON.stringify(r.anomalies));
  assert.ok(a.message.length > 0);
  return a;
};

describe('register checker: valid histories', () => {
  it('accepts the empty history and histories of only failed or indeterminate ops', () => {
    valid([]);
    valid([wr(0, 'x', 1, [0, 1], 'fail'), rd(1, 'x', 9, [2, 3], 'info'), wr(2, 'x', 2, [4, null])]);
  });

  it('accepts a sequential history over several keys', () => {
    valid([
      rd(0, 'x', null, [0, 1]),
      wr(0, 'x', 1, [2, 3]),
      rd(1, 'x', 1, [4, 5]),
      wr(1, 'y', 'a', [6, 7]),
      wr(0, 'x', 2, [8, 9]),
      rd(0, 'x', 2, [10, 11]),
      rd(2, 'y', 'a', [12, 13]),
      rd(2, 7, null, [14, 15]),
    ]);
  });

  it('accepts a read concurrent with a write, whichever value it returns', () => {
    const base = [wr(0, 'x', 'old', [0, 1]), wr(1, 'x', 'new', [2, 10])];
    valid([...base, rd(2, 'x', 'old', [3, 4])]);
    valid([...base, rd(2, 'x', 'new', [3, 4])]);
    // two reads concurrent with each other and with the write may see new then old
    valid([...base, rd(2, 'x', 'new', [3, 6]), rd(3, 'x', 'old', [4, 5])]);
  });

  it('accepts concurrent writes in either order', () => {
    const base = [wr(0, 'x', 'a', [0, 10]), wr(1, 'x', 'b', [1, 9])];
    valid([...base, rd(2, 'x', 'a', [11, 12])]);
    valid([...base, rd(2, 'x', 'b', [11, 12])]);
  });

  it('accepts cas chains, including an order among concurrent cas forced by their values', () => {
    valid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'a', 'b', [2, 3]), cas(1, 'x', 'b', 'c', [4, 5]), rd(0, 'x', 'c', [6, 7])]);
    // b->c invoked first but overlapping a->b: only a->b, b->c works
    valid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'b', 'c', [2, 10]), cas(2, 'x', 'a', 'b', [3, 9]), rd(0, 'x', 'c', [11, 12])]);
    // a failed cas asserts nothing
    valid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'a', 'b', [2, 3], 'fail'), rd(0, 'x', 'a', [4, 5])]);
  });

  it('treats intervals that touch as concurrent (a clock tie proves no order)', () => {
    valid([wr(0, 'x', 1, [0, 5]), rd(1, 'x', null, [5, 6])]);
  });

  it('honours initialValue', () => {
    valid([rd(0, 'x', 0, [0, 1])], { initialValue: 0 });
    invalid([rd(0, 'x', null, [0, 1])], { initialValue: 0 });
  });
});

describe('register checker: invalid histories', () => {
  it('rejects a stale read, naming the key, the op, its times and the value', () => {
    const a = invalid([wr(0, 'x', 1, [0, 1]), wr(0, 'x', 2, [2, 3]), rd(1, 'y', null, [3, 4]), rd(1, 'x', 1, [4, 5])]);
    assert.equal(a.key, 'x');
    assert.equal(a.op.index, 6); // the read's invoke event
    assert.equal(a.op.f, 'read');
    assert.equal(a.op.value, 1);
    assert.deepEqual([a.op.invokeMs, a.op.completeMs], [4, 5]);
    assert.equal(a.prefixLength, 2);
    assert.equal(a.valueAfterPrefix, 2);
    assert.equal(a.opsOnKey, 3);
    assert.match(a.message, /key "x" is not linearizable/);
    assert.match(a.message, /#6 p1 read\["x"\] 1/);
  });

  it('rejects a read of a value never written, and numbers versus strings', () => {
    invalid([rd(0, 'x', 'ghost', [0, 1])]);
    invalid([wr(0, 'x', 1, [0, 1]), rd(0, 'x', '1', [2, 3])]);
  });

  it('rejects reads that see concurrent writes in two orders after both completed', () => {
    invalid([wr(0, 'x', 'a', [0, 10]), wr(1, 'x', 'b', [1, 9]), rd(2, 'x', 'a', [11, 12]), rd(2, 'x', 'b', [13, 14])]);
  });

  it('rejects non-monotonic reads across two readers', () => {
    // reader 2 saw the new value before reader 3 (which started later) saw the old one
    const a = invalid([wr(0, 'x', 'old', [0, 1]), wr(1, 'x', 'new', [2, 20]), rd(2, 'x', 'new', [3, 4]), rd(3, 'x', 'old', [5, 6])]);
    assert.equal(a.op.index, 5); // the second read's invoke event
    assert.deepEqual(a.prefixTail, [0, 2, 3]); // old, new, the first read
    assert.equal(a.valueAfterPrefix, 'new');
    assert.deepEqual(
      a.concurrent.map((c) => c.index),
      [2],
    ); // the write of "new", still running
    assert.match(a.message, /longest linearizable prefix has 3 of the key's 4 ops \(#0, #2, #3\), after which the value is "new"/);
    assert.match(a.message, /concurrent with it: #2$/);
  });

  it('rejects a cas that succeeded against a value the register did not hold', () => {
    invalid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'b', 'c', [2, 3])]);
    // two cas from the same value cannot both succeed
    invalid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'a', 'b', [2, 5]), cas(2, 'x', 'a', 'c', [2, 5])]);
  });

  it('rejects a read of a failed write (fail means it did not happen)', () => {
    invalid([wr(0, 'x', 1, [0, 1], 'fail'), rd(1, 'x', 1, [2, 3])]);
  });

  it('reports each bad key and keeps checking the others', () => {
    const r = verdict([wr(0, 'a', 1, [0, 1]), rd(0, 'a', 2, [2, 3]), wr(1, 'b', 1, [0, 1]), rd(1, 'b', 1, [2, 3]), rd(2, 'c', 5, [0, 1])]);
    assert.equal(r.valid, false);
    assert.deepEqual(
      r.anomalies.map((a) => (a.type === 'nonlinearizable' ? a.key : '?')),
      ['a', 'c'],
    );
    assert.equal(r.stats.keys, 3);
    assert.equal(r.stats.nonlinearizableKeys, 2);
  });
});

describe('register checker: indeterminate (info) operations', () => {
  it('an info write may have happened or not', () => {
    const w = wr(0, 'x', 1, [0, 1], 'info');
    valid([w, rd(1, 'x', 1, [2, 3])]);
    valid([w, rd(1, 'x', null, [2, 3])]);
    valid([w, rd(1, 'x', null, [2, 3]), rd(1, 'x', 1, [4, 5])]); // applied late, after the client gave up
    // but once seen it stays (nothing else writes x)
    invalid([w, rd(1, 'x', 1, [2, 3]), rd(1, 'x', null, [4, 5])]);
  });

  it('an info write cannot take effect before it was invoked', () => {
    invalid([rd(1, 'x', 1, [0, 1]), wr(0, 'x', 1, [2, 3], 'info')]);
  });

  it('an invoke never completed is an info op', () => {
    valid([wr(0, 'x', 1, [0, null]), rd(1, 'x', 1, [5, 6])]);
    valid([wr(0, 'x', 1, [0, null]), rd(1, 'x', null, [5, 6])]);
    invalid([rd(1, 'x', 1, [0, 1]), wr(0, 'x', 1, [2, null])]);
  });

  it('an info cas applies only if the value matched where it is placed', () => {
    valid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'a', 'b', [2, 3], 'info'), rd(0, 'x', 'b', [4, 5])]);
    valid([wr(0, 'x', 'a', [0, 1]), cas(1, 'x', 'a', 'b', [2, 3], 'info'), rd(0, 'x', 'a', [4, 5])]);
    invalid([wr(0, 'x', 'z', [0, 1]), cas(1, 'x', 'a', 'b', [2, 3], 'info'), rd(0, 'x', 'b', [4, 5])]);
    // it can apply after a later write made it match
    valid([cas(1, 'x', 'a', 'b', [0, 1], 'info'), wr(0, 'x', 'a', [2, 3]), rd(0, 'x', 'b', [4, 5])]);
  });

  it('an info read asserts nothing', () => {
    valid([wr(0, 'x', 1, [0, 1]), rd(1, 'x', 'nonsense', [2, 3], 'info')]);
  });

  it('many concurrent info writes on one key stay fast (no 2^n chains of unobserved writes)', () => {
    const writes: Spec[] = [];
    for (let p = 0; p < 40; p++) writes.push(wr(p, 'x', p, [p, p + 1000], 'info'));
    const reads = (values: number[]): Spec[] => values.map((v, i) => rd(100, 'x', v, [2000 + 2 * i, 2001 + 2 * i]));
    const perm = Array.from({ length: 40 }, (_, i) => (i * 7) % 40); // every write seen once, in a scrambled order
    valid([...writes, ...reads(perm)]);
    const r = verdict([...writes, ...reads([...perm, 0])]); // 0 seen again after others: no write of 0 is left
    assert.equal(r.valid, false);
    assert.ok(r.stats.steps < 200_000, `steps ${r.stats.steps}`);
  });
});

describe('register checker: budgets and malformed ops', () => {
  const long = (n: number, key = 'x'): Spec[] =>
    Array.from({ length: n }, (_, i) => (i % 2 === 0 ? wr(0, key, i, [2 * i, 2 * i + 1]) : rd(0, key, i - 1, [2 * i, 2 * i + 1])));

  it('answers unknown (not valid) when the step budget runs out', () => {
    const r = verdict(long(50), { maxStepsPerKey: 10 });
    assert.equal(r.valid, 'unknown');
    assert.equal(r.anomalies[0]?.type, 'unknown');
    assert.match(r.anomalies[0]!.message, /undecided: its step budget \(10 steps\) ran out/);
    assert.equal(r.stats.unknownKeys, 1);
  });

  it('answers unknown when the time budget runs out', () => {
    const r = verdict(long(2000), { timeoutMs: 0 });
    assert.equal(r.valid, 'unknown');
    assert.match(r.anomalies[0]!.message, /time budget \(0 ms\)/);
  });

  it('a proven violation on another key still makes the result invalid', () => {
    const r = verdict([...long(50, 'x'), rd(1, 'y', 'ghost', [0, 1])], { maxStepsPerKey: 10 });
    assert.equal(r.valid, false);
    assert.deepEqual(r.anomalies.map((a) => a.type).sort(), ['nonlinearizable', 'unknown']);
  });

  it('bounds the number of anomalies reported', () => {
    const specs = Array.from({ length: 10 }, (_, k) => rd(k, `k${k}`, 'ghost', [0, 1]));
    const r = verdict(specs, { maxAnomalies: 3 });
    assert.equal(r.anomalies.length, 3);
    assert.equal(r.stats.anomaliesOmitted, 7);
    assert.equal(r.stats.nonlinearizableKeys, 10);
  });

  it('throws HistoryError on malformed register ops', () => {
    const bad = (specs: Spec[], pattern: RegExp): void =>
      assert.throws(
        () => verdict(specs),
        (e: unknown) => e instanceof HistoryError && pattern.test(e.message),
      );
    bad([{ p: 0, f: 'read', key: 'x', t: [0, 1] }], /ok read must complete with a scalar value/);
    bad([{ p: 0, f: 'cas', key: 'x', arg: ['a'], t: [0, 1] }], /cas must be invoked with \[from, to\]/);
    bad([{ p: 0, f: 'write', key: 'x', arg: { v: 1 }, t: [0, 1] }], /write must be invoked with a scalar/);
    bad([{ p: 0, f: 'write', arg: 1, t: [0, 1] }], /has no key/);
    bad([{ p: 0, f: 'append', key: 'x', arg: 1, t: [0, 1] }], /unknown f "append"/);
  });
});

// ---------------------------------------------------------------------------
// A refused cas (UPDATE ... WHERE v = from matched no row) observed the value:
// it was not `from` at some instant inside the op. A fail without that mark (an
// error before COMMIT) still asserts nothing.

/** A cas the database refused: fail with value false, as the workload records it. */
const refused = (p: number, key: string, from: Json, to: Json, t: readonly [number, number]): Spec => ({ ...cas(p, key, from, to, t, 'fail'), res: false });

describe('register checker: refused compare-and-set', () => {
  it('rejects a cas refused while the value was certainly `from`', () => {
    const a = invalid([wr(0, 'x', 1, [0, 1]), refused(1, 'x', 1, 2, [2, 3])]);
    assert.equal(a.op.index, 2);
    // the initial value (null: no row) counts too
    invalid([refused(1, 'x', null, 2, [0, 1])]);
  });

  it('rejects a stale compare: refused after a newer value was acknowledged (an old primary cut off)', () => {
    invalid([wr(0, 'x', 1, [0, 1]), wr(0, 'x', 2, [2, 3]), refused(1, 'x', 2, 3, [4, 5]), rd(0, 'x', 2, [6, 7])]);
  });

  it('accepts a refusal the value explains, or that a concurrent write can explain', () => {
    valid([wr(0, 'x', 2, [0, 1]), refused(1, 'x', 1, 3, [2, 3]), rd(0, 'x', 2, [4, 5])]);
    valid([refused(1, 'x', 1, 3, [0, 1])]);
    // the write of 1 is concurrent: the refusal may come before it
    valid([wr(0, 'x', 1, [0, 10]), refused(1, 'x', 1, 2, [2, 3]), rd(2, 'x', 1, [11, 12])]);
    // an indeterminate write may have changed the value first
    valid([wr(0, 'x', 1, [0, 1]), wr(2, 'x', 5, [1, 2], 'info'), refused(1, 'x', 1, 2, [3, 4])]);
  });

  it('a fail without the refusal mark still asserts nothing', () => {
    valid([wr(0, 'x', 1, [0, 1]), cas(1, 'x', 1, 2, [2, 3], 'fail'), rd(0, 'x', 1, [4, 5])]);
    assert.equal(verdict([wr(0, 'x', 1, [0, 1]), refused(1, 'x', 1, 2, [2, 3])]).stats.refusedCas, 1);
  });
});

// ---------------------------------------------------------------------------
// Properties

interface GenOp {
  key: number;
  kind: 'read' | 'write' | 'cas';
  a: number;
  b: number;
  /** invoke = lin point - before; ok/fail completion = lin point + after */
  before: number;
  after: number;
  outcome: 'ok' | 'info' | 'fail' | 'pending';
  /** for info/pending writes and cas: did it take effect (at its linearization point)? */
  applied: boolean;
  /** info completion = invoke + infoAfter: may be before the effect (timeout, applied later) */
  infoAfter: number;
}

const genOp: fc.Arbitrary<GenOp> = fc.record({
  key: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom('read', 'read', 'write', 'cas'),
  a: fc.integer({ min: 0, max: 3 }),
  b: fc.integer({ min: 0, max: 3 }),
  before: fc.integer({ min: 0, max: 250 }),
  after: fc.integer({ min: 0, max: 250 }),
  outcome: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'info', 'fail', 'pending'),
  applied: fc.boolean(),
  infoAfter: fc.integer({ min: 0, max: 300 }),
});

/**
 * A history from a sequential register: op i takes effect at t = 100 (i + 1) (if
 * at all) and its interval is a random window around t. Linearizable by
 * construction: the order i = 0, 1, ... is a witness.
 */
function modelHistory(gen: readonly GenOp[], refusals: 'plain' | 'marked' = 'plain'): Spec[] {
  const state = new Map<number, number | null>();
  const items: { inv: number; cmp: number | null; spec: Omit<Spec, 'p'> }[] = [];
  gen.forEach((g, i) => {
    const t = 100 * (i + 1);
    const key = `k${g.key}`;
    const cur = state.get(g.key) ?? null;
    const inv = t - g.before;
    let outcome = g.outcome;
    let effect = outcome === 'ok' || ((outcome === 'info' || outcome === 'pending') && g.applied);
    if (g.kind === 'cas' && cur !== g.a) {
      effect = false;
      if (outcome === 'ok') outcome = 'fail'; // a cas that found another value reports failure
    }
    if (g.kind === 'read') effect = false;
    if (effect) state.set(g.key, g.kind === 'cas' ? g.b : g.a);
    const cmp = outcome === 'pending' ? null : outcome === 'info' ? inv + g.infoAfter : t + g.after;
    const type = outcome === 'pending' ? undefined : outcome;
    const times = [inv, cmp] as const;
    const spec: Omit<Spec, 'p'> =
      g.kind === 'read'
        ? { f: 'read', key, res: outcome === 'ok' ? cur : 'whatever', t: times }
        : g.kind === 'write'
          ? { f: 'write', key, arg: g.a, t: times }
          : { f: 'cas', key, arg: [g.a, g.b], t: times };
    if (type !== undefined) spec.type = type;
    // 'marked': a cas refused because the value was not `from` says so (value false), as the workload records it
    if (refusals === 'marked' && g.kind === 'cas' && g.outcome === 'ok' && outcome === 'fail') spec.res = false;
    items.push({ inv, cmp, spec });
  });
  return assignProcesses(items).map(({ p, spec }) => ({ ...spec, p }));
}

/** The same operations for raft/sim's checker (fail dropped, info as unknown with ret = ∞). */
function toSim(specs: readonly Spec[]): KvOperation[] {
  const out: KvOperation[] = [];
  const str = (v: Json | undefined): string => String(v);
  for (const s of specs) {
    const type = s.t[1] === null ? 'info' : (s.type ?? 'ok');
    if (type === 'fail') continue;
    const key = String(s.key);
    const call = s.t[0];
    const ret = type === 'info' ? Infinity : s.t[1]!;
    if (s.f === 'read') {
      if (type !== 'ok') continue;
      out.push({ client: s.p, input: { op: 'get', key }, call, ret, output: s.res === null ? {} : { value: str(s.res) } });
    } else if (s.f === 'write') {
      out.push({ client: s.p, input: { op: 'put', key, value: str(s.arg) }, call, ret, output: type === 'info' ? { unknown: true } : {} });
    } else {
      const [from, to] = s.arg as [number, number];
      out.push({ client: s.p, input: { op: 'cas', key, from: str(from), to: str(to) }, call, ret, output: type === 'info' ? { unknown: true } : { ok: true } });
    }
  }
  return out;
}

const okReads = (specs: readonly Spec[]): number[] => specs.flatMap((s, i) => (s.f === 'read' && s.t[1] !== null && (s.type ?? 'ok') === 'ok' ? [i] : []));

describe('register checker: properties', () => {
  it('histories generated from a sequential register are valid', () => {
    fc.assert(
      fc.property(fc.array(genOp, { maxLength: 40 }), (gen) => {
        const r = verdict(modelHistory(gen));
        assert.equal(r.valid, true, JSON.stringify(r.anomalies));
      }),
      { numRuns: 300 },
    );
  });

  it('histories generated from a sequential register, refused cas marked as observations, are valid', () => {
    fc.assert(
      fc.property(fc.array(genOp, { maxLength: 40 }), (gen) => {
        const r = verdict(modelHistory(gen, 'marked'));
        assert.equal(r.valid, true, JSON.stringify(r.anomalies));
      }),
      { numRuns: 300 },
    );
  });

  it('a read mutated to a never-written value makes them invalid', () => {
    fc.assert(
      fc.property(fc.array(genOp, { minLength: 1, maxLength: 30 }), fc.nat(), (gen, pick) => {
        const specs = modelHistory(gen);
        const reads = okReads(specs);
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        specs[i] = { ...specs[i]!, res: 99 };
        const r = verdict(specs);
        assert.equal(r.valid, false);
        const a = r.anomalies[0];
        assert.ok(a?.type === 'nonlinearizable' && a.key === specs[i]!.key);
      }),
      { numRuns: 300 },
    );
  });

  it('on reads mutated to other written values, agrees with raft/sim’s checker (both verdicts occur)', () => {
    const seen = { valid: 0, invalid: 0 };
    fc.assert(
      fc.property(
        fc.array(genOp, { minLength: 1, maxLength: 24 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 })), { maxLength: 3 }),
        (gen, muts) => {
          const specs = modelHistory(gen);
          const reads = okReads(specs);
          for (const [pick, v] of muts) {
            if (reads.length === 0) break;
            const i = reads[pick % reads.length]!;
            specs[i] = { ...specs[i]!, res: v };
          }
          const mine = verdict(specs).valid;
          const theirs = checkKvHistory(toSim(specs)).result;
          assert.equal(mine, theirs === 'ok');
          seen[mine === true ? 'valid' : 'invalid']++;
        },
      ),
      { numRuns: 400 },
    );
    assert.ok(seen.valid > 20 && seen.invalid > 20, JSON.stringify(seen));
  });
});
