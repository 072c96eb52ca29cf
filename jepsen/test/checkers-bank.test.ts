// Bank checker: totals conserved in every ok read whatever the transfers'
// outcomes; negative balances; malformed ops; properties on histories of a real
// bank with concurrent reads.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkBank, type BankOptions } from '../checkers/bank.js';
import { HistoryError } from '../history/errors.js';
import type { CompletionType, Json } from '../history/types.js';
import { assignProcesses, ops, type Spec } from './checkers-helpers.js';

const OPTS: BankOptions = { initialTotal: 100 };
const transfer = (p: number, from: string, to: string, amount: number, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'transfer',
  arg: { from, to, amount },
  t,
  type,
});
const read = (p: number, balances: Record<string, Json>, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({ p, f: 'read', res: balances, t, type });
const run = (specs: Spec[], opts: BankOptions = OPTS) => checkBank(ops(specs), opts);

describe('bank checker', () => {
  it('accepts the empty history', () => {
    assert.equal(run([]).valid, true);
  });

  it('accepts reads that conserve the total, with transfers of every outcome in flight', () => {
    const r = run([
      read(0, { a: 50, b: 50 }, [0, 1]),
      transfer(1, 'a', 'b', 10, [2, 5]),
      transfer(2, 'b', 'a', 5, [2, 6], 'info'),
      transfer(3, 'a', 'b', 70, [2, 3], 'fail'),
      transfer(4, 'a', 'b', 1, [2, null]),
      read(0, { a: 40, b: 60 }, [3, 4]),
      read(0, { a: 45, b: 55 }, [7, 8]),
    ]);
    assert.equal(r.valid, true);
    assert.deepEqual(r.stats, { okReads: 3, transfersOk: 1, transfersFailed: 1, transfersIndeterminate: 2, wrongTotalReads: 0, negativeBalances: 0, anomaliesOmitted: 0 });
  });

  it('reports a read whose total differs, with the balances and the read', () => {
    const r = run([transfer(1, 'a', 'b', 10, [0, 5]), { ...read(0, { a: 40, b: 50 }, [2, 3]), node: 'n3' }]);
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'bank-total');
    assert.equal(a.total, 90);
    assert.equal(a.expected, 100);
    assert.deepEqual(a.balances, { a: 40, b: 50 });
    assert.equal(a.read.index, 1);
    assert.match(a.message, /read #1 p0 read \[2 ms, 3 ms\] on node n3 sees a total of 90, expected 100 \(off by -10\)/);
  });

  it('a read missing an account is a wrong total too', () => {
    assert.equal(run([read(0, { a: 50 }, [0, 1])]).anomalies[0]?.type, 'bank-total');
  });

  it('reports negative balances unless allowed', () => {
    const specs = [read(0, { a: -10, b: 110 }, [0, 1])];
    const r = run(specs);
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'bank-negative');
    assert.equal(a.account, 'a');
    assert.equal(a.balance, -10);
    assert.equal(run(specs, { initialTotal: 100, allowNegative: true }).valid, true);
  });

  it('ignores reads that did not complete ok', () => {
    assert.equal(run([read(0, { a: 1 }, [0, 1], 'info'), read(1, { a: 1 }, [0, 1], 'fail'), read(2, {}, [0, null])]).valid, true);
  });

  it('throws HistoryError on malformed bank ops, RangeError on a bad initial total', () => {
    const bad = (specs: Spec[], pattern: RegExp): void => assert.throws(() => run(specs), (e: unknown) => e instanceof HistoryError && pattern.test(e.message));
    bad([read(0, { a: 50.5, b: 49.5 }, [0, 1])], /balance of account "a" must be an integer/);
    bad([{ p: 0, f: 'read', res: [50, 50], t: [0, 1] }], /must complete with \{account: balance\}/);
    bad([{ p: 0, f: 'transfer', arg: 10, t: [0, 1] }], /transfer must be invoked with \{from, to, amount\}/);
    bad([{ p: 0, f: 'audit', t: [0, 1] }], /unknown f "audit"/);
    assert.throws(() => run([], { initialTotal: 0.5 }), RangeError);
  });
});

// ---------------------------------------------------------------------------
// Properties: a real bank (transfers apply atomically at their linearization
// point, never overdraw), reads with random windows around theirs.

interface GenBankOp {
  kind: 'transfer' | 'read';
  from: number;
  to: number;
  amount: number;
  before: number;
  after: number;
  outcome: 'ok' | 'info' | 'fail' | 'pending';
  applied: boolean;
}
const genBankOp: fc.Arbitrary<GenBankOp> = fc.record({
  kind: fc.constantFrom('transfer', 'transfer', 'read'),
  from: fc.integer({ min: 0, max: 3 }),
  to: fc.integer({ min: 0, max: 3 }),
  amount: fc.integer({ min: 1, max: 30 }),
  before: fc.integer({ min: 0, max: 300 }),
  after: fc.integer({ min: 0, max: 300 }),
  outcome: fc.constantFrom('ok', 'ok', 'ok', 'info', 'fail', 'pending'),
  applied: fc.boolean(),
});

const ACCOUNTS = 4;
const INITIAL = 25;

function bankHistory(gen: readonly GenBankOp[]): Spec[] {
  const balances = Array.from({ length: ACCOUNTS }, () => INITIAL);
  const items = gen.map((g, i) => {
    const t = 100 * (i + 1);
    const inv = t - g.before;
    const cmp = g.outcome === 'pending' ? null : t + g.after;
    const type = g.outcome === 'pending' ? undefined : g.outcome;
    let spec: Omit<Spec, 'p'>;
    if (g.kind === 'read') {
      spec = { f: 'read', res: Object.fromEntries(balances.map((b, a) => [`acct${a}`, b])), t: [inv, cmp] };
    } else {
      const happens = g.outcome === 'ok' || (g.outcome !== 'fail' && g.applied);
      if (happens && balances[g.from]! >= g.amount) {
        balances[g.from] = balances[g.from]! - g.amount;
        balances[g.to] = balances[g.to]! + g.amount;
      }
      spec = { f: 'transfer', arg: { from: `acct${g.from}`, to: `acct${g.to}`, amount: g.amount }, t: [inv, cmp] };
    }
    if (type !== undefined) spec.type = type;
    return { inv, cmp, spec };
  });
  return assignProcesses(items).map(({ p, spec }) => ({ ...spec, p }));
}

describe('bank checker: properties', () => {
  const opts: BankOptions = { initialTotal: ACCOUNTS * INITIAL };

  it('histories of a real bank are valid', () => {
    fc.assert(
      fc.property(fc.array(genBankOp, { maxLength: 60 }), (gen) => {
        const r = run(bankHistory(gen), opts);
        assert.equal(r.valid, true, JSON.stringify(r.anomalies));
      }),
      { numRuns: 200 },
    );
  });

  it('changing one balance in one ok read is reported as that read’s wrong total', () => {
    fc.assert(
      fc.property(fc.array(genBankOp, { minLength: 1, maxLength: 60 }), fc.nat(), fc.integer({ min: 0, max: ACCOUNTS - 1 }), fc.integer({ min: 1, max: 20 }), (gen, pick, acct, delta) => {
        const specs = bankHistory(gen);
        const reads = specs.flatMap((s, i) => (s.f === 'read' && s.t[1] !== null && (s.type ?? 'ok') === 'ok' ? [i] : []));
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        const res = { ...(specs[i]!.res as Record<string, number>) };
        res[`acct${acct}`] = res[`acct${acct}`]! + delta;
        specs[i] = { ...specs[i]!, res };
        const r = run(specs, opts);
        assert.equal(r.valid, false);
        assert.deepEqual(
          r.anomalies.map((a) => (a.type === 'bank-total' ? a.total - a.expected : a.type)),
          [delta],
        );
      }),
      { numRuns: 200 },
    );
  });
});
