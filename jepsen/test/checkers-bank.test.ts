// Bank checker: totals conserved in every ok read whatever the transfers'
// outcomes; every read explained by the transfers; the accounts; negative
// balances; malformed ops; properties on histories of a real bank with
// concurrent reads.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkBank, type BankOptions } from '../checkers/bank.js';
import { HistoryError } from '../history/errors.js';
import type { CompletionType, Json } from '../history/types.js';
import { assignProcesses, ops, type Spec } from './checkers-helpers.js';

const OPTS: BankOptions = { initialBalances: { a: 50, b: 50 } };
const transfer = (p: number, from: string, to: string, amount: number, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'transfer',
  arg: { from, to, amount },
  t,
  type,
});
const read = (p: number, balances: Record<string, Json>, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'read',
  res: balances,
  t,
  type,
});
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
    assert.deepEqual(r.stats, {
      okReads: 3,
      transfersOk: 1,
      transfersFailed: 1,
      transfersIndeterminate: 2,
      wrongAccountReads: 0,
      wrongTotalReads: 0,
      unexplainedReads: 0,
      unknownReads: 0,
      negativeBalances: 0,
      maxPossibleTransfersPerRead: 3,
      searchStates: r.stats.searchStates,
      anomaliesOmitted: 0,
    });
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

  it('a read missing an account is reported as such, not as a wrong total', () => {
    assert.deepEqual(
      run([read(0, { a: 50 }, [0, 1])]).anomalies.map((a) => a.type),
      ['bank-accounts'],
    );
  });

  it('reports negative balances unless allowed', () => {
    const specs = [transfer(1, 'a', 'b', 60, [0, 1]), read(0, { a: -10, b: 110 }, [2, 3])];
    const r = run(specs);
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'bank-negative');
    assert.equal(a.account, 'a');
    assert.equal(a.balance, -10);
    assert.equal(run(specs, { ...OPTS, allowNegative: true }).valid, true);
  });

  it('ignores reads that did not complete ok', () => {
    assert.equal(run([read(0, { a: 1 }, [0, 1], 'info'), read(1, { a: 1 }, [0, 1], 'fail'), read(2, {}, [0, null])]).valid, true);
  });

  it('throws HistoryError on malformed bank ops, RangeError on a bad initial total', () => {
    const bad = (specs: Spec[], pattern: RegExp): void =>
      assert.throws(
        () => run(specs),
        (e: unknown) => e instanceof HistoryError && pattern.test(e.message),
      );
    bad([read(0, { a: 50.5, b: 49.5 }, [0, 1])], /balance of account "a" must be an integer/);
    bad([{ p: 0, f: 'read', res: [50, 50], t: [0, 1] }], /must complete with \{account: balance\}/);
    bad([{ p: 0, f: 'transfer', arg: 10, t: [0, 1] }], /transfer must be invoked with \{from, to, amount\}/);
    bad([{ p: 0, f: 'audit', t: [0, 1] }], /unknown f "audit"/);
    bad([{ p: 0, f: 'transfer', arg: { from: 'a', to: 'z', amount: 1 }, t: [0, 1] }], /accounts among the opening ones: a, b/);
    assert.throws(() => run([], { initialBalances: { a: 0.5 } }), RangeError);
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
    let type: CompletionType | undefined = g.outcome === 'pending' ? undefined : g.outcome;
    let spec: Omit<Spec, 'p'>;
    if (g.kind === 'read') {
      spec = { f: 'read', res: Object.fromEntries(balances.map((b, a) => [`acct${a}`, b])), t: [inv, cmp] };
    } else {
      const happens = g.outcome === 'ok' || (g.outcome !== 'fail' && g.applied);
      if (happens && balances[g.from]! >= g.amount) {
        balances[g.from] = balances[g.from]! - g.amount;
        balances[g.to] = balances[g.to]! + g.amount;
      } else if (g.outcome === 'ok') {
        type = 'fail'; // a real bank refuses an overdraft: a definite failure
      }
      spec = { f: 'transfer', arg: { from: `acct${g.from}`, to: `acct${g.to}`, amount: g.amount }, t: [inv, cmp] };
    }
    if (type !== undefined) spec.type = type;
    return { inv, cmp, spec };
  });
  return assignProcesses(items).map(({ p, spec }) => ({ ...spec, p }));
}

describe('bank checker: properties', () => {
  const opts: BankOptions = { initialBalances: Object.fromEntries(Array.from({ length: ACCOUNTS }, (_, a) => [`acct${a}`, INITIAL])) };

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
      fc.property(
        fc.array(genBankOp, { minLength: 1, maxLength: 60 }),
        fc.nat(),
        fc.integer({ min: 0, max: ACCOUNTS - 1 }),
        fc.integer({ min: 1, max: 20 }),
        (gen, pick, acct, delta) => {
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
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// Every read against the transfers: opening balances + transfers acknowledged
// before the read began + some subset of the transfers that may have been in
// flight. The total alone misses lost transfers, stale reads and missing accounts.

/** Opening balances; initialTotal too, so these tests also run against a total-only checker. */
const opening = (balances: Record<string, number>, extra: Partial<BankOptions> = {}): BankOptions =>
  ({ initialBalances: balances, initialTotal: Object.values(balances).reduce((s, b) => s + b, 0), ...extra }) as BankOptions;
const AB = opening({ a: 50, b: 50 });
const ABC = opening({ a: 50, b: 50, c: 0 });
const anomalyTypes = (r: ReturnType<typeof checkBank>): string[] => r.anomalies.map((a) => a.type);

describe('bank checker: reads against transfers', () => {
  it('reports a read that misses a transfer acknowledged before it began (a lost transfer)', () => {
    const r = run([transfer(1, 'a', 'b', 10, [0, 1]), read(0, { a: 50, b: 50 }, [2, 3])], AB);
    assert.equal(r.valid, false);
    assert.deepEqual(anomalyTypes(r), ['bank-unexplained']);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'bank-unexplained');
    assert.deepEqual(a.expectedBase, { a: 40, b: 60 });
    assert.equal(a.definiteTransfers, 1);
    assert.equal(a.possibleTransfers, 0);
    assert.match(a.message, /no subset of the 0 transfer\(s\) possibly in flight explains it/);
  });

  it('reports a stale read: an older state after a later acknowledged transfer', () => {
    const r = run(
      [transfer(1, 'a', 'b', 10, [0, 1]), read(0, { a: 40, b: 60 }, [2, 3]), transfer(1, 'b', 'a', 5, [4, 5]), read(0, { a: 40, b: 60 }, [6, 7])],
      AB,
    );
    assert.equal(r.valid, false);
    assert.deepEqual(anomalyTypes(r), ['bank-unexplained']);
    assert.equal(r.stats.unexplainedReads, 1);
  });

  it('reports a read missing an account, or naming one that does not exist, even when the total is right', () => {
    const missing = run([read(0, { a: 50, b: 50 }, [0, 1])], ABC);
    assert.equal(missing.valid, false);
    const a = missing.anomalies[0]!;
    assert.ok(a.type === 'bank-accounts');
    assert.deepEqual(a.missing, ['c']);
    assert.deepEqual(a.unexpected, []);
    const extra = run([read(0, { a: 50, b: 40, z: 10 }, [0, 1])], AB);
    assert.equal(extra.valid, false);
    const b = extra.anomalies[0]!;
    assert.ok(b.type === 'bank-accounts');
    assert.deepEqual(b.unexpected, ['z']);
  });

  it('reports a read that shows a failed transfer (fail means it did not happen)', () => {
    const r = run([transfer(1, 'a', 'b', 10, [0, 1], 'fail'), read(0, { a: 40, b: 60 }, [2, 3])], AB);
    assert.equal(r.valid, false);
    assert.deepEqual(anomalyTypes(r), ['bank-unexplained']);
  });

  it('reports a read that shows a transfer invoked after the read completed', () => {
    const r = run([read(0, { a: 40, b: 60 }, [0, 1]), transfer(1, 'a', 'b', 10, [2, 3])], AB);
    assert.equal(r.valid, false);
    assert.deepEqual(anomalyTypes(r), ['bank-unexplained']);
  });

  it('accepts a read with or without a transfer concurrent with it, or indeterminate and invoked before it ended', () => {
    const specs = [
      transfer(1, 'a', 'b', 10, [0, 10]),
      transfer(2, 'b', 'a', 3, [0, 1], 'info'),
      transfer(3, 'a', 'b', 1, [0, null]),
      read(0, { a: 50, b: 50 }, [2, 3]),
      read(5, { a: 40, b: 60 }, [4, 5]),
      read(6, { a: 43, b: 57 }, [4, 5]),
      read(7, { a: 42, b: 58 }, [4, 5]),
      read(8, { a: 39, b: 61 }, [4, 5]),
      // touching: invoked at the instant the read completed counts as concurrent
      transfer(4, 'b', 'a', 7, [5, 6]),
      read(9, { a: 47, b: 53 }, [4, 5]),
    ];
    const r = run(specs, AB);
    assert.equal(r.valid, true, JSON.stringify(r.anomalies));
    assert.equal(r.stats.unexplainedReads, 0);
    assert.equal(r.stats.unknownReads, 0);
  });

  it('finds the one subset of concurrent transfers that explains a read, and reports a read no subset explains', () => {
    const inFlight = [transfer(1, 'a', 'b', 10, [0, 10]), transfer(2, 'b', 'c', 3, [0, 10]), transfer(3, 'a', 'c', 7, [0, 10])];
    assert.equal(run([...inFlight, read(0, { a: 40, b: 57, c: 3 }, [1, 2])], ABC).valid, true);
    assert.equal(run([...inFlight, read(0, { a: 43, b: 50, c: 7 }, [1, 2])], ABC).valid, true);
    assert.equal(run([...inFlight, read(0, { a: 33, b: 57, c: 10 }, [1, 2])], ABC).valid, true);
    const r = run([...inFlight, read(0, { a: 40, b: 53, c: 7 }, [1, 2])], ABC);
    assert.equal(r.valid, false);
    assert.deepEqual(anomalyTypes(r), ['bank-unexplained']);
  });

  it('answers unknown for a read whose search runs out of budget, and counts it', () => {
    // 20 indeterminate transfers, all distinct amounts: 2^20 subsets, more than a budget of 100 states
    const specs: Spec[] = Array.from({ length: 20 }, (_, i) => transfer(10 + i, i % 2 === 0 ? 'a' : 'b', i % 2 === 0 ? 'b' : 'a', i + 1, [0, 1], 'info'));
    specs.push(read(0, { a: 49, b: 51 }, [2, 3]));
    const r = run(specs, opening({ a: 50, b: 50 }, { maxStatesPerRead: 100 }));
    assert.equal(r.valid, 'unknown');
    assert.equal(r.stats.unknownReads, 1);
    assert.deepEqual(anomalyTypes(r), ['unknown']);
    // with the default budget the same read is decided
    assert.equal(run(specs, AB).valid, true);
  });
});
