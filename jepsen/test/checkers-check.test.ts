// check(workload, history): pairing + the workload's checker + one-writer,
// merged verdicts, malformed histories as 'unknown', JSON-safe reports.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, type CheckReport } from '../checkers/check.js';
import { mergeValidity } from '../checkers/types.js';
import { HistoryRecorder } from '../history/recorder.js';
import type { Op } from '../history/types.js';
import { build, cas, rd, wr } from './checkers-helpers.js';
import { Prng } from '../../raft/sim/prng.js';
import { BankWorkload } from '../workloads/bank.js';
import { RegisterWorkload } from '../workloads/register.js';
import { SetWorkload } from '../workloads/set.js';

const roundTrip = (r: CheckReport): unknown => JSON.parse(JSON.stringify(r));

describe('check', () => {
  it('merges verdicts as Jepsen does: false beats unknown beats true', () => {
    assert.equal(mergeValidity([]), true);
    assert.equal(mergeValidity([true, 'unknown', true]), 'unknown');
    assert.equal(mergeValidity(['unknown', false, true]), false);
  });

  it('accepts empty histories for every workload', () => {
    for (const r of [check('register', []), check('set', []), check('bank', [], { bank: { initialBalances: {} } })]) {
      assert.equal(r.valid, true);
      assert.deepEqual(r.anomalies, []);
      assert.deepEqual(r.stats.history, { ops: 0, ok: 0, fail: 0, info: 0 });
    }
  });

  it('runs the workload checker and one-writer together and reports both kinds of anomalies', () => {
    const history = build([
      { ...wr(0, 'x', 1, [0, 5]), generation: 2 },
      { ...wr(1, 'x', 2, [6, 7]), generation: 1 }, // older generation after the newer acknowledged
      rd(2, 'x', 1, [8, 9]), // and the read misses the last write
      cas(3, 'y', 'a', 'b', [0, 1], 'fail'),
      wr(4, 'z', 0, [0, null]),
    ]);
    const r = check('register', history);
    assert.equal(r.valid, false);
    assert.deepEqual(r.anomalies.map((a) => a.type).sort(), ['nonlinearizable', 'two-writers']);
    assert.deepEqual(r.stats.history, { ops: 5, ok: 3, fail: 1, info: 1 });
    assert.equal(r.stats.register?.keys, 2); // y had only a failed cas: nothing to check
    assert.equal(r.stats.oneWriter?.generations, 2);
    assert.deepEqual(roundTrip(r), r); // plain JSON: no Infinity, undefined or class instances
    const without = check('register', history, { oneWriter: false });
    assert.deepEqual(
      without.anomalies.map((a) => a.type),
      ['nonlinearizable'],
    );
    assert.equal(without.stats.oneWriter, undefined);
  });

  it('a malformed history gives valid "unknown" with the offending event, not a verdict on the database', () => {
    const history: Op[] = [
      { process: 0, type: 'invoke', f: 'add', value: 1, timeMs: 0 },
      { process: 0, type: 'invoke', f: 'add', value: 2, timeMs: 1 },
      { process: 1, type: 'ok', f: 'add', timeMs: 2 },
    ];
    const r = check('set', history);
    assert.equal(r.valid, 'unknown');
    assert.equal(r.anomalies.length, 1);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'malformed-history');
    assert.equal(a.index, 1);
    assert.match(a.message, /double invoke/);
    assert.deepEqual(r.stats.history, { ops: 2, ok: 1, fail: 0, info: 0 });
    // a workload-level shape error too
    const bad = check('register', build([{ p: 0, f: 'read', key: 'x', t: [0, 1] }]));
    assert.equal(bad.valid, 'unknown');
    assert.match(bad.anomalies[0]!.message, /ok read must complete with a scalar/);
  });

  it('budget exhaustion is unknown, never true', () => {
    const specs = Array.from({ length: 20 }, (_, i) => wr(0, 'x', i, [2 * i, 2 * i + 1]));
    const r = check('register', build(specs), { register: { maxStepsPerKey: 3 } });
    assert.equal(r.valid, 'unknown');
    assert.equal(r.anomalies[0]?.type, 'unknown');
  });

  it('checks a recorder’s history end to end (set workload with generations)', () => {
    let t = 0;
    const rec = new HistoryRecorder({ clockMs: () => t++ });
    for (let p = 0; p < 5; p++) rec.invoke(p, 'add', { value: p, node: 'n1' });
    for (let p = 0; p < 5; p++) rec.complete(p, p === 4 ? 'info' : 'ok', p === 4 ? { error: 'timeout' } : { generation: 1 });
    rec.invoke(9, 'read');
    rec.complete(9, 'ok', { value: [0, 1, 2, 3] });
    const r = check('set', rec.events);
    assert.equal(r.valid, true, JSON.stringify(r.anomalies));
    assert.equal(r.stats.set?.indeterminateAbsent, 1);
    assert.equal(r.stats.oneWriter?.writes, 4);
    assert.ok(r.stats.checkMs >= 0);
  });

  it('with the workloads’ options, an acknowledged write without a generation is an anomaly of the run', () => {
    const register = check('register', build([wr(0, 'x', 1, [0, 1]), rd(1, 'x', 1, [2, 3])]), new RegisterWorkload().checkOptions());
    assert.equal(register.valid, false);
    assert.deepEqual(
      register.anomalies.map((a) => a.type),
      ['missing-generation'],
    );
    const set = check(
      'set',
      build([
        { p: 0, f: 'add', arg: 1, t: [0, 1], generation: 3, node: 'n1' },
        { p: 1, f: 'add', arg: 2, t: [0, 1], generation: 3, node: 'n2' },
        { p: 2, f: 'read', res: [1, 2], t: [2, 3] },
      ]),
      new SetWorkload().checkOptions(),
    );
    assert.deepEqual(
      set.anomalies.map((a) => a.type),
      ['generation-shared'],
    );
  });

  it('the bank workload checks reads against its opening balances (accounts "0".."4" at 10)', () => {
    const opts = new BankWorkload().checkOptions();
    const open = { '0': 10, '1': 10, '2': 10, '3': 10, '4': 10 };
    assert.equal(check('bank', build([{ p: 0, f: 'read', res: open, t: [0, 1] }]), opts).valid, true);
    const transfer = { p: 1, f: 'transfer', arg: { from: 0, to: 3, amount: 4 }, t: [0, 1] as const, generation: 1, node: 'n1' };
    const lost = check('bank', build([transfer, { p: 0, f: 'read', res: open, t: [2, 3] }]), opts);
    assert.deepEqual(
      lost.anomalies.map((a) => a.type),
      ['bank-unexplained'],
    );
    assert.equal(check('bank', build([transfer, { p: 0, f: 'read', res: { ...open, '0': 6, '3': 14 }, t: [2, 3] }]), opts).valid, true);
  });

  it('the set workload reads the whole set during the run, interleaved with the adds', () => {
    const w = new SetWorkload();
    const rng = new Prng(7);
    const fs = Array.from({ length: 1000 }, (_, i) => w.next(i % 6, rng).f);
    const reads = fs.filter((f) => f === 'read').length;
    assert.ok(reads > 20 && reads < 100, `reads ${reads} of 1000`);
    assert.equal(fs.filter((f) => f === 'add').length + reads, 1000);
  });

  it('requires the bank options for the bank workload', () => {
    assert.throws(() => check('bank' as 'register' | 'set' | 'bank', []), /initialBalances is required/);
  });
});
