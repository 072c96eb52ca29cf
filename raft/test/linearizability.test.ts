import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../sim/prng.js';
import fc from 'fast-check';

import { checkOperations, type Model } from '../sim/linearizability.js';
import { applyKv, checkKvHistory, kvModel, type KvInput, type KvOperation, type KvOutput, type KvState } from '../sim/kv-model.js';

// ---------------------------------------------------------------------------
// helpers

const get = (key: string) => ({ op: 'get', key }) as const;
const put = (key: string, value: string) => ({ op: 'put', key, value }) as const;
const cas = (key: string, from: string, to: string) => ({ op: 'cas', key, from, to }) as const;
const UNKNOWN: KvOutput = { unknown: true };

function op(client: number, input: KvInput, call: number, ret: number, output: KvOutput = {}): KvOperation {
  return { client, input, call, ret, output };
}
const read = (client: number, key: string, value: string | undefined, call: number, ret: number): KvOperation =>
  op(client, get(key), call, ret, value === undefined ? {} : { value });

function assertOk(ops: KvOperation[]): void {
  const r = checkKvHistory(ops);
  assert.equal(r.result, 'ok', r.info);
}
function assertIllegal(ops: KvOperation[]): string {
  const r = checkKvHistory(ops);
  assert.equal(r.result, 'illegal');
  assert.ok(r.info && r.info.length > 0);
  return r.info;
}

/**
 * A real concurrent execution against an in-memory KV: clients interleave call /
 * effect / return steps; with probability pUnknown a client times out (ret = ∞,
 * output unknown) and the op is then applied later, or never.
 */
function concurrentHistory(seed: number, nOps: number, nKeys: number, nClients: number, pUnknown = 0): KvOperation[] {
  const rnd = seededRandom(seed);
  const pick = (k: number): number => Math.floor(rnd() * k);
  const store = new Map<string, string>();
  type Phase = { phase: 'idle' } | { phase: 'called' | 'applied'; op: KvOperation };
  const clients: Phase[] = Array.from({ length: nClients }, () => ({ phase: 'idle' }) as Phase);
  const orphans: KvInput[] = [];
  const ops: KvOperation[] = [];
  let started = 0;
  let t = 0;
  const randomInput = (): KvInput => {
    const key = `k${pick(nKeys)}`;
    const v = (): string => `v${pick(6)}`;
    const x = rnd();
    if (x < 0.5) return get(key);
    if (x < 0.8) return put(key, v());
    return cas(key, v(), v());
  };
  while (started < nOps || clients.some((c) => c.phase !== 'idle')) {
    t++;
    if (orphans.length > 0 && rnd() < 0.05) applyKv(store, orphans.splice(pick(orphans.length), 1)[0]!);
    const c = pick(nClients);
    const st = clients[c]!;
    if (st.phase === 'idle') {
      if (started >= nOps) continue;
      started++;
      clients[c] = { phase: 'called', op: op(c, randomInput(), t, -1) };
    } else if (st.phase === 'called') {
      if (rnd() < pUnknown) {
        st.op.ret = Infinity;
        st.op.output = { unknown: true };
        ops.push(st.op);
        if (rnd() < 0.5) orphans.push(st.op.input);
        clients[c] = { phase: 'idle' };
      } else {
        st.op.output = applyKv(store, st.op.input);
        clients[c] = { phase: 'applied', op: st.op };
      }
    } else {
      st.op.ret = t;
      ops.push(st.op);
      clients[c] = { phase: 'idle' };
    }
  }
  return ops;
}

/**
 * Independent brute-force oracle: the history is linearizable iff some subset of the
 * unknown-outcome ops (which may have never happened) can be omitted and the rest
 * ordered consistently with real time (a before b iff a.ret < b.call; unknown ops
 * have ret ∞) and the KV semantics. An unknown cas that did happen may apply or —
 * per the "branch" reading — leave the value unchanged.
 */
function bruteForceLinearizable(ops: KvOperation[]): boolean {
  const effRet = (o: KvOperation): number => (o.output.unknown === true ? Infinity : o.ret);
  const unknownIdx = ops.flatMap((o, i) => (o.output.unknown === true ? [i] : []));
  for (let mask = 0; mask < 1 << unknownIdx.length; mask++) {
    const omitted = new Set(unknownIdx.filter((_, b) => (mask >> b) & 1));
    const kept = ops.filter((_, i) => !omitted.has(i));
    const used = new Array<boolean>(kept.length).fill(false);
    const dfs = (depth: number, state: Map<string, string>): boolean => {
      if (depth === kept.length) return true;
      for (let i = 0; i < kept.length; i++) {
        if (used[i]) continue;
        const o = kept[i]!;
        if (kept.some((p, j) => !used[j] && j !== i && effRet(p) < o.call)) continue; // must come later
        const cur = state.get(o.input.key);
        const outcomes: (string | undefined | null)[] = []; // next value per branch; null = no change
        const inp = o.input;
        const unk = o.output.unknown === true;
        if (inp.op === 'get') {
          if (unk || o.output.value === cur) outcomes.push(null);
        } else if (inp.op === 'put') {
          outcomes.push(inp.value);
        } else if (unk) {
          outcomes.push(null);
          if (cur === inp.from) outcomes.push(inp.to);
        } else if (o.output.ok === true) {
          if (cur === inp.from) outcomes.push(inp.to);
        } else if (cur !== inp.from) {
          outcomes.push(null);
        }
        for (const nv of outcomes) {
          const ns = new Map(state);
          if (nv !== null && nv !== undefined) ns.set(inp.key, nv);
          used[i] = true;
          const found = dfs(depth + 1, ns);
          used[i] = false;
          if (found) return true;
        }
      }
      return false;
    };
    if (dfs(0, new Map())) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------

describe('linearizability checker: linearizable histories', () => {
  it('accepts the empty history', () => {
    assertOk([]);
  });

  it('accepts a sequential history over several keys', () => {
    assertOk([
      read(0, 'x', undefined, 0, 1),
      op(0, put('x', '1'), 2, 3),
      read(1, 'x', '1', 4, 5),
      op(1, put('y', 'a'), 6, 7),
      op(0, put('x', '2'), 8, 9),
      read(0, 'x', '2', 10, 11),
      read(2, 'y', 'a', 12, 13),
      read(2, 'z', undefined, 14, 15),
    ]);
  });

  it('accepts a read overlapping a write, whichever value it returns', () => {
    const base = [op(0, put('x', 'old'), 0, 1), op(1, put('x', 'new'), 2, 10)];
    assertOk([...base, read(2, 'x', 'old', 3, 4)]);
    assertOk([...base, read(2, 'x', 'new', 3, 4)]);
    // two mutually overlapping reads may see new then old
    assertOk([...base, read(2, 'x', 'new', 3, 6), read(3, 'x', 'old', 4, 5)]);
  });

  it('accepts concurrent writes in either order', () => {
    const base = [op(0, put('x', 'a'), 0, 10), op(1, put('x', 'b'), 1, 9)];
    assertOk([...base, read(2, 'x', 'a', 11, 12)]);
    assertOk([...base, read(2, 'x', 'b', 11, 12)]);
  });

  it('accepts cas chains, including a forced order among concurrent cas', () => {
    assertOk([
      op(0, cas('x', 'a', 'b'), 0, 1, { ok: false }), // absent key: cas fails
      op(0, put('x', 'a'), 2, 3),
      op(1, cas('x', 'a', 'b'), 4, 5, { ok: true }),
      op(2, cas('x', 'a', 'c'), 6, 7, { ok: false }),
      op(1, cas('x', 'b', 'c'), 8, 9, { ok: true }),
      read(0, 'x', 'c', 10, 11),
    ]);
    // b->c listed first and overlapping a->b: only a->b, b->c works
    assertOk([
      op(0, put('x', 'a'), 0, 1),
      op(1, cas('x', 'b', 'c'), 2, 10, { ok: true }),
      op(2, cas('x', 'a', 'b'), 3, 9, { ok: true }),
      read(0, 'x', 'c', 11, 12),
    ]);
  });

  it('accepts an unknown put that must have taken effect to explain a later read', () => {
    assertOk([op(0, put('x', 'a'), 0, 1), op(1, put('x', 'b'), 2, Infinity, UNKNOWN), read(2, 'x', 'b', 5, 6)]);
  });

  it('accepts an unknown put that never took effect', () => {
    assertOk([op(0, put('x', 'a'), 0, 1), op(1, put('x', 'b'), 2, Infinity, UNKNOWN), read(2, 'x', 'a', 5, 6), read(2, 'x', 'a', 7, 8)]);
  });

  it('lets a timed-out op take effect after its recorded ret, or never (ret normalised to ∞)', () => {
    // recorded with a finite ret: the client gave up at 3, the write landed later
    assertOk([op(0, put('x', 'a'), 0, 1), op(1, put('x', 'b'), 2, 3, UNKNOWN), read(2, 'x', 'a', 5, 6), read(2, 'x', 'b', 7, 8)]);
    assertOk([op(0, put('x', 'a'), 0, 1), op(1, put('x', 'b'), 2, 3, UNKNOWN), read(2, 'x', 'a', 5, 6)]);
  });

  it('handles an unknown cas that applied, or did not', () => {
    const base = [op(0, put('x', 'a'), 0, 1), op(1, cas('x', 'a', 'b'), 2, Infinity, UNKNOWN)];
    assertOk([...base, read(2, 'x', 'a', 5, 6), read(2, 'x', 'b', 7, 8)]);
    assertOk([...base, read(2, 'x', 'a', 5, 6), read(2, 'x', 'a', 7, 8)]);
    assertOk([...base, read(2, 'x', 'b', 5, 6), read(2, 'x', 'b', 7, 8)]);
    // a later put and the cas no longer matching: fine, the cas failed or never ran
    assertOk([...base, op(2, put('x', 'c'), 3, 4), read(2, 'x', 'c', 5, 6)]);
  });

  it('ignores unknown gets', () => {
    assertOk([op(0, put('x', 'a'), 0, 1), op(1, get('x'), 2, Infinity, { unknown: true, value: 'zzz' }), read(2, 'x', 'a', 3, 4)]);
  });

  it('treats a return and a call at the same timestamp as concurrent', () => {
    assertOk([op(0, put('x', 'a'), 0, 5), read(1, 'x', undefined, 5, 6)]);
    assertIllegal([op(0, put('x', 'a'), 0, 5), read(1, 'x', undefined, 6, 7)]);
  });

  it('works with a generic model without partitioning', () => {
    const whole: Model<KvState, KvInput, KvOutput> = { ...kvModel, partition: undefined };
    const h = [op(0, put('x', 'a'), 0, 1), read(1, 'x', 'a', 2, 3)];
    assert.equal(checkOperations(whole, h).result, 'ok');
    assert.equal(checkOperations(whole, [...h, read(1, 'x', 'b', 4, 5)]).result, 'illegal');
  });
});

describe('linearizability checker: non-linearizable histories', () => {
  it('rejects a stale read after a completed write', () => {
    assertIllegal([op(0, put('x', 'a'), 0, 1), read(1, 'x', undefined, 2, 3)]);
  });

  it('rejects a read of a value that was never written', () => {
    const info = assertIllegal([op(0, put('x', 'a'), 0, 1), read(1, 'x', 'ghost', 2, 3)]);
    assert.match(info, /get\("x"\) -> "ghost"/);
    assert.match(info, /could not be linearized/);
  });

  it('rejects two cas from the same value that both succeed', () => {
    assertIllegal([op(0, put('x', 'a'), 0, 1), op(1, cas('x', 'a', 'b'), 2, 6, { ok: true }), op(2, cas('x', 'a', 'c'), 3, 5, { ok: true })]);
  });

  it('rejects a read that goes back in time', () => {
    assertIllegal([
      op(0, put('x', 'old'), 0, 1),
      op(1, put('x', 'new'), 2, 20),
      read(2, 'x', 'new', 3, 4),
      read(3, 'x', 'old', 5, 6), // called after r1 returned
    ]);
  });

  it('rejects a lost write (and reports the right partition)', () => {
    const r = checkKvHistory([
      op(0, put('x', '1'), 0, 1),
      read(0, 'x', '1', 2, 3),
      op(1, put('y', 'v1'), 0, 1),
      op(1, put('y', 'v2'), 2, 3), // acknowledged
      read(2, 'y', 'v1', 4, 5), // ... but a later read sees the older value
    ]);
    assert.equal(r.result, 'illegal');
    assert.equal(r.partition, 1);
    assert.match(r.info ?? '', /Longest linearizable prefix has 2 of 3 ops/);
    assert.match(r.info ?? '', /state after it: "v2"/);
    assert.match(r.info ?? '', /#4 c2 get\("y"\) -> "v1" \[4, 5\] could not be linearized/);
  });

  it('rejects a read explained only by an unknown put called after the read returned', () => {
    assertIllegal([read(0, 'x', 'b', 0, 1), op(1, put('x', 'b'), 2, Infinity, UNKNOWN)]);
  });

  it('rejects an unknown cas that would have to apply from a non-matching value', () => {
    assertIllegal([op(0, put('x', 'a'), 0, 1), op(1, cas('x', 'z', 'b'), 2, Infinity, UNKNOWN), read(2, 'x', 'b', 5, 6)]);
  });

  it('explains a long illegal history with a truncated prefix', () => {
    const ops: KvOperation[] = [];
    for (let i = 0; i < 20; i++) ops.push(op(0, put('x', `v${i}`), 2 * i, 2 * i + 1));
    ops.push(read(1, 'x', 'v3', 100, 101));
    const info = assertIllegal(ops);
    assert.match(info, /has 20 of 21 ops: … \(12 earlier\)/);
    assert.match(info, /state after it: "v19"/);
  });
});

describe('linearizability checker: budgets and validation', () => {
  // Many mutually concurrent writes of distinct values followed by an impossible read:
  // the search must exhaust ~2^n configurations before it can say 'illegal'.
  const hard = (key: string, n: number): KvOperation[] => [
    ...Array.from({ length: n }, (_, i) => op(i, put(key, `w${i}`), 0, 100)),
    read(n, key, 'never', 101, 102),
  ];

  it('returns unknown (not ok) when the time budget runs out', () => {
    const t0 = performance.now();
    const r = checkKvHistory(hard('x', 24), { timeoutMs: 50 });
    assert.equal(r.result, 'unknown');
    assert.equal(r.partition, 0);
    assert.match(r.info ?? '', /time budget/);
    assert.ok(performance.now() - t0 < 1000);
  });

  it('returns unknown when the memo cache limit is hit, but still reports a later illegal partition', () => {
    const r1 = checkKvHistory(hard('x', 24), { maxCacheEntries: 1000 });
    assert.equal(r1.result, 'unknown');
    assert.match(r1.info ?? '', /memo cache limit/);
    const r2 = checkKvHistory([...hard('x', 24), op(0, put('y', 'a'), 0, 1), read(1, 'y', 'b', 2, 3)], {
      maxCacheEntries: 1000,
    });
    assert.equal(r2.result, 'illegal');
    assert.equal(r2.partition, 1);
  });

  it('decides a moderately hard illegal history exhaustively', () => {
    assert.equal(checkKvHistory(hard('x', 10)).result, 'illegal');
  });

  it('rejects malformed timestamps', () => {
    assert.throws(() => checkKvHistory([op(0, put('x', 'a'), 5, 4)]), RangeError);
    assert.throws(() => checkKvHistory([op(0, put('x', 'a'), NaN, 4)]), RangeError);
    assert.throws(() => checkKvHistory([op(0, put('x', 'a'), Infinity, Infinity)]), RangeError);
  });

  it('verifies states on hash collisions (constant hash gives identical answers)', () => {
    const colliding: Model<KvState, KvInput, KvOutput> = { ...kvModel, hash: () => '' };
    for (let seed = 1; seed <= 30; seed++) {
      const h = concurrentHistory(seed, 60, 2, 4, 0.05);
      const mutated = h.map((o) => ({ ...o, output: { ...o.output } }));
      const g = mutated.find((o) => o.input.op === 'get' && o.output.unknown !== true);
      if (g) g.output.value = g.output.value === 'v1' ? 'v2' : 'v1';
      for (const hist of [h, mutated]) {
        assert.equal(checkOperations(colliding, hist).result, checkKvHistory(hist).result);
      }
    }
  });
});

describe('linearizability checker: properties', () => {
  type Spec = {
    kind: 'get' | 'put' | 'cas';
    key: number;
    a: number;
    b: number;
    client: number;
    widenL: number;
    widenR: number;
    fate: 'known' | 'unknown-applied' | 'unknown-lost';
  };
  const specArb: fc.Arbitrary<Spec> = fc.record({
    kind: fc.constantFrom('get', 'put', 'cas'),
    key: fc.integer({ min: 0, max: 2 }),
    a: fc.integer({ min: 0, max: 3 }),
    b: fc.integer({ min: 0, max: 3 }),
    client: fc.integer({ min: 0, max: 4 }),
    widenL: fc.integer({ min: 0, max: 45 }),
    widenR: fc.integer({ min: 0, max: 45 }),
    fate: fc.oneof(
      { weight: 10, arbitrary: fc.constant('known' as const) },
      { weight: 1, arbitrary: fc.constant('unknown-applied' as const) },
      { weight: 1, arbitrary: fc.constant('unknown-lost' as const) },
    ),
  });

  /** Sequential execution against a real KV; effect points at 10, 20, ...; intervals widened around them. */
  function execute(specs: Spec[]): KvOperation[] {
    const store = new Map<string, string>();
    return specs.map((s, i) => {
      const key = `k${s.key}`;
      const input: KvInput = s.kind === 'get' ? get(key) : s.kind === 'put' ? put(key, `v${s.a}`) : cas(key, `v${s.a}`, `v${s.b}`);
      const effect = 10 * (i + 1);
      const call = effect - s.widenL;
      if (s.fate === 'unknown-lost') return op(s.client, input, call, Infinity, { unknown: true });
      const output = applyKv(store, input);
      if (s.fate === 'unknown-applied') return op(s.client, input, call, Infinity, { unknown: true });
      return op(s.client, input, call, effect + s.widenR, output);
    });
  }

  it('histories of a real KV with widened intervals are always linearizable', () => {
    fc.assert(
      fc.property(fc.array(specArb, { minLength: 0, maxLength: 60 }), (specs) => {
        const r = checkKvHistory(execute(specs));
        assert.equal(r.result, 'ok', r.info);
      }),
      { numRuns: 300 },
    );
  });

  it('a get observing a value that was never written makes the history illegal', () => {
    fc.assert(
      fc.property(fc.array(specArb, { minLength: 1, maxLength: 60 }), fc.nat(), (specs, which) => {
        const ops = execute(specs);
        const gets = ops.filter((o) => o.input.op === 'get' && o.output.unknown !== true);
        fc.pre(gets.length > 0);
        gets[which % gets.length]!.output = { value: 'never-written' };
        const r = checkKvHistory(ops);
        assert.equal(r.result, 'illegal');
        assert.match(r.info ?? '', /"never-written"/);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with a brute-force oracle on small random (mostly illegal) histories', () => {
    const opArb = fc.record({
      kind: fc.constantFrom('get', 'put', 'cas'),
      a: fc.constantFrom<string | undefined>('a', 'b', undefined),
      b: fc.constantFrom('a', 'b'),
      okFlag: fc.boolean(),
      call: fc.integer({ min: 0, max: 20 }),
      dur: fc.integer({ min: 0, max: 8 }),
      unknown: fc.integer({ min: 0, max: 6 }), // 0: unknown, ret ∞; 1: unknown, finite ret
    });
    let legal = 0;
    let illegal = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 7 }), (raw) => {
        const ops = raw.map((r, i): KvOperation => {
          const input: KvInput = r.kind === 'get' ? get('x') : r.kind === 'put' ? put('x', r.b) : cas('x', r.a ?? 'a', r.b);
          const output: KvOutput =
            r.unknown <= 1 ? { unknown: true } : r.kind === 'get' ? (r.a === undefined ? {} : { value: r.a }) : r.kind === 'cas' ? { ok: r.okFlag } : {};
          return op(i, input, r.call, r.unknown === 0 ? Infinity : r.call + r.dur, output);
        });
        const expected = bruteForceLinearizable(ops);
        const got = checkKvHistory(ops).result;
        if (expected) legal++;
        else illegal++;
        assert.equal(got, expected ? 'ok' : 'illegal');
      }),
      { numRuns: 1500 },
    );
    assert.ok(legal > 50 && illegal > 50, `legal=${legal} illegal=${illegal}`);
  });

  it('optional-op reductions agree with plain WGL (model without isUnconstrained)', () => {
    const plain: Model<KvState, KvInput, KvOutput> = { ...kvModel, isUnconstrained: undefined };
    const seen = { ok: 0, illegal: 0 };
    for (let seed = 1; seed <= 400; seed++) {
      const rnd = seededRandom(seed * 7919);
      const h = concurrentHistory(seed, 10 + Math.floor(rnd() * 60), 1 + Math.floor(rnd() * 2), 2 + Math.floor(rnd() * 4), rnd() * 0.3);
      for (let k = Math.floor(rnd() * 3); k > 0; k--) {
        const o = h[Math.floor(rnd() * h.length)]!;
        if (o.output.unknown === true) continue;
        if (o.input.op === 'get') o.output = { value: `v${Math.floor(rnd() * 6)}` };
        else if (o.input.op === 'cas') o.output = { ok: o.output.ok !== true };
      }
      // biome-ignore lint/suspicious/noDuplicateElseIf: no else-if chain here; the inner if is the body of the for loop, and each rnd() call is a fresh draw
      if (rnd() < 0.3) for (const o of h) if (o.ret !== Infinity && rnd() < 0.3) o.call = o.ret; // shrink intervals
      const expected = checkOperations(plain, h).result;
      assert.equal(checkKvHistory(h).result, expected, `seed ${seed}`);
      if (expected !== 'unknown') seen[expected]++;
    }
    assert.ok(seen.ok > 50 && seen.illegal > 50, JSON.stringify(seen));
  });

  it('generated concurrent executions (with timeouts) are linearizable', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const h = concurrentHistory(seed, 300, 3, 5, 0.02);
      const r = checkKvHistory(h, { timeoutMs: 5000 });
      assert.equal(r.result, 'ok', `seed ${seed}: ${r.info}`);
    }
  });
});

describe('linearizability checker: performance', () => {
  it('checks 2,000 ops over 5 keys from 5 concurrent clients well under 2 s', () => {
    const h = concurrentHistory(42, 2000, 5, 5);
    assert.equal(h.length, 2000);
    const t0 = performance.now();
    const r = checkKvHistory(h, { timeoutMs: 2000 });
    const ms = performance.now() - t0;
    assert.equal(r.result, 'ok', r.info);
    assert.ok(ms < 1000, `took ${ms.toFixed(1)} ms`);
  });

  it('checks 2,000 ops with 1% timeouts and a single hot key', () => {
    const h = concurrentHistory(7, 2000, 1, 5, 0.01);
    const t0 = performance.now();
    const r = checkKvHistory(h, { timeoutMs: 5000 });
    const ms = performance.now() - t0;
    assert.equal(r.result, 'ok', r.info);
    assert.ok(ms < 2000, `took ${ms.toFixed(1)} ms`);
  });

  it('finds a corrupted read on a hot key with pending timed-out ops', () => {
    const h = concurrentHistory(7, 1000, 1, 5, 0.01);
    assert.ok(h.filter((o) => o.output.unknown === true).length >= 10);
    const gets = h.filter((o) => o.input.op === 'get' && o.output.unknown !== true);
    gets[Math.floor(gets.length * 0.7)]!.output = { value: 'corrupt' };
    const r = checkKvHistory(h, { timeoutMs: 5000 });
    assert.equal(r.result, 'illegal', r.info);
  });

  it('finds a single corrupted read in a 2,000-op history quickly', () => {
    const h = concurrentHistory(43, 2000, 5, 5);
    const gets = h.filter((o) => o.input.op === 'get');
    gets[Math.floor(gets.length * 0.7)]!.output = { value: 'corrupt' };
    const t0 = performance.now();
    const r = checkKvHistory(h, { timeoutMs: 2000 });
    assert.equal(r.result, 'illegal', r.info);
    assert.ok(performance.now() - t0 < 2000);
  });
});
