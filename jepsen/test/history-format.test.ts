// The history format: recorder (bounded, append-only), JSONL files, pairing and
// its errors on malformed histories.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HistoryError, HistoryFullError, HistoryRecorder, pairHistory, readJsonl, writeJsonl, type Op } from '../history/index.js';

function clock(): () => number {
  let t = 0;
  return () => (t += 1);
}

function throwsHistory(fn: () => unknown, index: number, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HistoryError, `expected HistoryError, got ${String(e)}`);
    assert.equal(e.index, index);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('HistoryRecorder', () => {
  it('records invoke and completion, copying f and key into the completion', () => {
    const r = new HistoryRecorder({ clockMs: clock() });
    r.invoke(1, 'write', { key: 'x', value: 5, node: 'n1' });
    r.invoke(2, 'read', { key: 'x' });
    r.complete(1, 'ok', { generation: 3, node: 'n1' });
    r.complete(2, 'info', { error: 'timeout' });
    assert.deepEqual(r.snapshot(), [
      { process: 1, type: 'invoke', f: 'write', timeMs: 1, key: 'x', value: 5, node: 'n1' },
      { process: 2, type: 'invoke', f: 'read', timeMs: 2, key: 'x' },
      { process: 1, type: 'ok', f: 'write', timeMs: 3, key: 'x', node: 'n1', generation: 3 },
      { process: 2, type: 'info', f: 'read', timeMs: 4, key: 'x', error: 'timeout' },
    ]);
    assert.equal(r.pendingCount, 0);
    const paired = pairHistory(r.events);
    assert.deepEqual(
      paired.map((o) => [o.index, o.type, o.completionIndex]),
      [
        [0, 'ok', 2],
        [1, 'info', 3],
      ],
    );
  });

  it('refuses a double invoke and a completion without invoke, where they happen', () => {
    const r = new HistoryRecorder({ clockMs: clock() });
    r.invoke(1, 'read', { key: 'x' });
    throwsHistory(() => r.invoke(1, 'write', { key: 'x', value: 1 }), 1, /double invoke: process 1/);
    throwsHistory(() => r.complete(2, 'ok'), 1, /completion without invoke: process 2/);
    assert.equal(r.size, 1);
  });

  it('is bounded: when full it refuses invokes but always accepts the pending completions', () => {
    const r = new HistoryRecorder({ maxEvents: 6, clockMs: clock() });
    r.invoke(1, 'add', { value: 1 });
    r.invoke(2, 'add', { value: 2 });
    r.invoke(3, 'add', { value: 3 }); // 3 events + 3 reserved completions = 6
    assert.equal(r.full, true);
    assert.throws(() => r.invoke(4, 'add', { value: 4 }), HistoryFullError);
    r.complete(1, 'ok');
    r.complete(2, 'ok');
    r.complete(3, 'info');
    assert.equal(r.size, 6);
    assert.throws(() => r.invoke(1, 'add', { value: 5 }), HistoryFullError);
    assert.equal(pairHistory(r.events).length, 3); // still well-formed
  });

  it('keeps time non-decreasing and events frozen, and rejects values JSON cannot carry', () => {
    const times = [5, 3, 7];
    const r = new HistoryRecorder({ clockMs: () => times.shift()! });
    const a = r.invoke(1, 'write', { key: 'x', value: 1 });
    const b = r.complete(1, 'ok');
    assert.equal(b.timeMs, 5); // a clock going back is clamped, the history stays well-formed
    assert.ok(Object.isFrozen(a));
    const bad = { big: 1n } as unknown as Op['value'];
    assert.throws(() => r.invoke(2, 'write', { key: 'x', value: bad! }), TypeError);
    assert.throws(() => new HistoryRecorder({ maxEvents: 1 }), RangeError);
  });
});

describe('JSONL files', () => {
  it('round-trips a recorded history', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jepsen-history-'));
    try {
      const r = new HistoryRecorder({ clockMs: clock() });
      for (let p = 0; p < 50; p++) r.invoke(p, 'add', { value: p, node: `n${p % 3}` });
      for (let p = 0; p < 50; p++) r.complete(p, p % 7 === 0 ? 'info' : 'ok', p % 7 === 0 ? { error: 'timeout' } : { generation: 2 });
      r.invoke(0, 'read');
      r.complete(0, 'ok', { value: Array.from({ length: 50 }, (_, i) => i) });
      const path = join(dir, 'history.jsonl');
      assert.equal(await r.writeJsonl(path), 102);
      assert.deepEqual(await readJsonl(path), r.snapshot());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the line of a malformed event, and bounds the number of events', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jepsen-history-'));
    try {
      const path = join(dir, 'bad.jsonl');
      const good = JSON.stringify({ process: 0, type: 'invoke', f: 'read', timeMs: 0 });
      await writeFile(path, `${good}\n\n{"process":0,"type":"done","f":"read","timeMs":1}\n`);
      await assert.rejects(readJsonl(path), (e: unknown) => e instanceof HistoryError && /line 3: .*type must be one of/.test(e.message) && e.index === 2);
      await writeFile(path, `${good}\n{not json\n`);
      await assert.rejects(readJsonl(path), /line 2: not JSON/);
      await writeJsonl(path, [
        { process: 0, type: 'invoke', f: 'read', timeMs: 0 },
        { process: 0, type: 'ok', f: 'read', timeMs: 1, value: null },
      ]);
      await assert.rejects(readJsonl(path, { maxEvents: 1 }), /more than 1 events/);
      assert.equal((await readJsonl(path, { maxEvents: 2 })).length, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pairHistory', () => {
  const inv = (process: number, f: string, timeMs: number, extra: Partial<Op> = {}): Op => ({ process, type: 'invoke', f, timeMs, ...extra });
  const done = (process: number, type: 'ok' | 'fail' | 'info', f: string, timeMs: number, extra: Partial<Op> = {}): Op => ({
    process,
    type,
    f,
    timeMs,
    ...extra,
  });

  it('pairs each invoke with the next completion of its process; pending invokes become info', () => {
    const ops = pairHistory([
      inv(1, 'write', 0, { key: 'x', value: 1 }),
      inv(2, 'read', 1, { key: 'x' }),
      done(2, 'ok', 'read', 2, { value: null }),
      done(1, 'fail', 'write', 3, { error: 'serialization failure' }),
      inv(1, 'write', 4, { key: 'x', value: 2 }),
    ]);
    assert.deepEqual(
      ops.map((o) => ({ index: o.index, type: o.type, inv: o.invokeTimeMs, cmp: o.completeTimeMs, ci: o.completionIndex })),
      [
        { index: 0, type: 'fail', inv: 0, cmp: 3, ci: 3 },
        { index: 1, type: 'ok', inv: 1, cmp: 2, ci: 2 },
        { index: 4, type: 'info', inv: 4, cmp: undefined, ci: undefined },
      ],
    );
    assert.equal(ops[2]!.completion, undefined);
    assert.deepEqual(pairHistory([]), []);
  });

  it('rejects a double invoke', () => {
    throwsHistory(
      () => pairHistory([inv(1, 'read', 0), inv(1, 'read', 1)]),
      1,
      /double invoke: process 1 invokes read while its invoke #0 \(read\) is still pending/,
    );
  });

  it('rejects a completion without invoke, and a second completion', () => {
    throwsHistory(() => pairHistory([done(3, 'ok', 'read', 0)]), 0, /completion without invoke: process 3/);
    throwsHistory(() => pairHistory([inv(1, 'read', 0), done(1, 'ok', 'read', 1), done(1, 'info', 'read', 2)]), 2, /completion without invoke/);
  });

  it('rejects a completion of another f or key, time going backwards, and bad shapes', () => {
    throwsHistory(() => pairHistory([inv(1, 'read', 0), done(1, 'ok', 'write', 1)]), 1, /does not match its invoke #0/);
    throwsHistory(() => pairHistory([inv(1, 'read', 0, { key: 'x' }), done(1, 'ok', 'read', 1, { key: 'y' })]), 1, /key "y" does not match/);
    throwsHistory(() => pairHistory([inv(1, 'read', 5), done(1, 'ok', 'read', 4)]), 1, /timeMs goes backwards: 4 after 5/);
    throwsHistory(() => pairHistory([inv(1, 'read', NaN)]), 0, /timeMs must be a finite number/);
    throwsHistory(() => pairHistory([inv(1.5, 'read', 0)]), 0, /process must be an integer/);
    throwsHistory(() => pairHistory([{ ...inv(1, 'read', 0), time_ns: 3 } as unknown as Op]), 0, /unknown field "time_ns"/);
    throwsHistory(() => pairHistory([inv(1, '', 0)]), 0, /f must be a non-empty string/);
    throwsHistory(() => pairHistory([inv(1, 'read', 0), done(1, 'ok', 'read', 1, { generation: 1.5 })]), 1, /generation must be an integer/);
  });

  it('bounds the history length', () => {
    throwsHistory(() => pairHistory([inv(1, 'read', 0), done(1, 'ok', 'read', 1)], { maxEvents: 1 }), -1, /more than the limit of 1/);
  });
});
