// Linearizability search for ONE partition (one key): Wing & Gong's algorithm
// with Lowe's memoization, iterative over a doubly linked list of call and
// return events, as in Porcupine and in raft/sim/linearizability.ts (same
// algorithm, written again here so the jepsen checker owns its budgets and its
// explanations; the tests run both on the same histories and compare).
//
// The search
//   Every op has a call event (callMs) and a return event (retMs). Events are
//   sorted by time into a linked list. Walking from the head, the candidates for
//   the next linearization point are the ops whose call comes before the first
//   return still in the list. At a call event: if the model accepts the op in the
//   current state and the resulting configuration is not known to fail, the op's
//   two events are lifted out of the list, the old state is pushed, and the walk
//   restarts at the head. At a return event: that op had to be linearized by now
//   and nothing worked: pop, remember the configuration as failed, put the op's
//   events back and try the next candidate after it. Empty stack at a return
//   event: not linearizable.
//
// Real time: a precedes b iff a.retMs < b.callMs. At equal times calls sort
// before returns, so touching intervals count as concurrent: a coarse clock
// cannot prove an order, and we only report violations that are proven.
//
// Indeterminate ops (info): retMs = Infinity and `optional`: the model must
// accept them in every state (their output is unknown). They may take effect
// anywhere after their call, or never (placing one after every other op is the
// same as never). Sound reductions, each keeps the answer exact:
//   R1  done as soon as every required op is linearized (optional ones go last);
//   R2  never linearize an optional op where it leaves the state unchanged
//       (moving it to the end gives the same future);
//   R3  a failed configuration (B, s) also prunes (B', s) when B' has the same
//       required ops and a superset of B's optional ops;
//   R4  never linearize a blind op (one whose next state does not depend on the
//       state, e.g. a write) directly after an optional op: the optional op is
//       overwritten unobserved, so omitting it gives the same state with more
//       ops left. Without R4, k concurrent info writes before a read make the
//       search try every chain of them (2^k); with it, one at a time.
//   required candidates are tried before optional ones (pass 0, then pass 1).
//
// Why R4 and the memo stay exact together. Say X = P + a (a optional) and the
// blind op b is pruned at X. X may still be good (succeed) via b, so X's failure
// proves nothing and X is NOT recorded in the memo ("tainted"); P's failure
// still is sound, because b is a candidate at P too (a optional: same required
// ops, same window) and P + b, which dominates P + a + b, is explored from P.
// Proof sketch, with "X dominates Y" = same state, same required ops, X's
// optional ops ⊆ Y's (then Y good ⇒ X good): take a shortest completion σ of a
// good explored X. Its first op o is not pruned by R2 or R4-within-σ (σ would
// not be shortest), nor by the memo if every recorded configuration is bad; the
// only prune left is R4 at X itself, which taints X. So by induction along σ an
// untainted good X never fails, hence every recorded configuration is bad, and
// a good root (never tainted: nothing precedes it) succeeds.
//
// Memo (Lowe): configuration = (set of linearized ops, state). Keyed by a 64-bit
// Zobrist hash of the required part of the set plus the state's exact key; on a
// key match the stored bitset is compared exactly, so a hash collision can never
// produce a wrong answer.
//
// Budget: the problem is NP-complete; many concurrent info ops on a hot key are
// the usual cause of blow-ups. `maxSteps` (walk iterations, deterministic) and
// `maxMemoEntries` bound the work, an optional wall-clock deadline bounds time;
// running out gives 'unknown', never 'ok'.

export interface WglOp<I> {
  input: I;
  callMs: number;
  /** Infinity for optional (indeterminate) ops. */
  retMs: number;
  /** Indeterminate: may be linearized after its call or omitted; the model must accept it in every state. */
  optional: boolean;
}

export interface WglModel<S, I> {
  init: S;
  /** Next state, or undefined if `input` (with its observed output) is impossible in `state`. Must not mutate. */
  step(state: S, input: I): S | undefined;
  /** Exact identity of a state: equal keys iff equal states. */
  stateKey(state: S): string;
  /** True if `step(s, input)` is the same defined state for every s (a blind write). Enables R4. */
  blind?(input: I): boolean;
}

export interface WglBudget {
  maxSteps: number;
  maxMemoEntries: number;
  /** performance.now() value after which the search gives up; Infinity for none. */
  deadlineMs: number;
}

export type WglOutcome<S> =
  | { kind: 'ok'; steps: number; memoEntries: number }
  | { kind: 'unknown'; reason: 'steps' | 'memo' | 'deadline'; steps: number; memoEntries: number }
  | {
      kind: 'illegal';
      steps: number;
      memoEntries: number;
      /** Longest linearizable prefix found (op positions in the input array). */
      prefix: number[];
      /** Op whose return event the deepest attempt could not pass. */
      blocked: number;
      stateAfterPrefix: S;
    };

/** Walk iterations between two clock reads. */
const CLOCK_EVERY = 1024;

/** mulberry32: deterministic Zobrist keys, so a run's step count is reproducible. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export function searchLinearization<S, I>(model: WglModel<S, I>, ops: readonly WglOp<I>[], budget: WglBudget): WglOutcome<S> {
  const n = ops.length;
  const optional = new Uint8Array(n);
  let required = 0; // required ops not linearized yet
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    if (!(op.callMs <= op.retMs)) throw new RangeError(`op ${i}: retMs ${op.retMs} before callMs ${op.callMs}`);
    if (op.optional) {
      if (op.retMs !== Infinity) throw new RangeError(`op ${i}: an optional op must have retMs = Infinity`);
      optional[i] = 1;
    } else {
      if (!Number.isFinite(op.retMs)) throw new RangeError(`op ${i}: a required op must have a finite retMs`);
      required++;
    }
  }
  if (required === 0) return { kind: 'ok', steps: 0, memoEntries: 0 };

  // Event e: op e >> 1; even = call, odd = return (the return of call e is e + 1).
  const time = (e: number): number => ((e & 1) === 0 ? ops[e >> 1]!.callMs : ops[e >> 1]!.retMs);
  const order = Array.from({ length: 2 * n }, (_, e) => e).sort((a, b) => {
    const ta = time(a);
    const tb = time(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    if ((a & 1) !== (b & 1)) return (a & 1) - (b & 1); // calls first: touching intervals are concurrent
    return a - b;
  });
  const HEAD = 2 * n;
  const NIL = -1;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = HEAD;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = NIL;
  const unlink = (e: number): void => {
    const p = prev[e]!;
    const q = next[e]!;
    next[p] = q;
    if (q !== NIL) prev[q] = p;
  };
  const relink = (e: number): void => {
    // valid only in exact reverse order of unlink (dancing links)
    const p = prev[e]!;
    const q = next[e]!;
    next[p] = e;
    if (q !== NIL) prev[q] = e;
  };

  const words = (n + 31) >>> 5;
  const requiredMask = new Uint32Array(words);
  const z1 = new Int32Array(n);
  const z2 = new Int32Array(n);
  const rand = mulberry32(0x9e3779b9 ^ n);
  for (let i = 0; i < n; i++) {
    if (optional[i]) continue; // optional ops stay out of the hash: R3 looks them up in the same bucket
    requiredMask[i >>> 5] = requiredMask[i >>> 5]! | (1 << (i & 31));
    z1[i] = rand() | 0;
    z2[i] = rand() | 0;
  }
  const bits = new Uint32Array(words);
  let h1 = 0;
  let h2 = 0;

  const failed = new Map<string, Uint32Array[]>();
  let memoEntries = 0;
  // (B, s) in the memo covers the current (B', s) iff same required ops and B's optional ops ⊆ B''s.
  const covered = (key: string): boolean => {
    const bucket = failed.get(key);
    if (bucket === undefined) return false;
    outer: for (const b of bucket) {
      for (let w = 0; w < words; w++) {
        const old = b[w]!;
        const cur = bits[w]!;
        if ((old & ~cur) !== 0 || (cur & ~old & requiredMask[w]!) !== 0) continue outer;
      }
      return true;
    }
    return false;
  };

  const stackCall = new Int32Array(n);
  const stackState: S[] = [];
  const stackStateKey: string[] = [];
  const stackMemoKey: string[] = [];
  /** Frame k's configuration had a child pruned by R4: its failure is not recorded. */
  const stackTainted = new Uint8Array(n);
  let sp = 0;
  let state = model.init;
  let stateKey = model.stateKey(state);

  let best: { prefix: number[]; blocked: number; state: S } | undefined;
  let steps = 0;
  let pass = 0; // 0: try required candidates, 1: optional ones
  let entry = next[HEAD]!;
  for (;;) {
    if (++steps > budget.maxSteps) return { kind: 'unknown', reason: 'steps', steps, memoEntries };
    if (steps % CLOCK_EVERY === 0 && budget.deadlineMs !== Infinity && performance.now() > budget.deadlineMs) {
      return { kind: 'unknown', reason: 'deadline', steps, memoEntries };
    }
    if (entry !== NIL && (entry & 1) === 0) {
      const i = entry >> 1;
      if (optional[i] !== pass) {
        entry = next[entry]!;
        continue;
      }
      const input = ops[i]!.input;
      if (sp > 0 && optional[stackCall[sp - 1]! >> 1] === 1 && model.blind?.(input) === true) {
        stackTainted[sp - 1] = 1; // R4
        entry = next[entry]!;
        continue;
      }
      const after = model.step(state, input);
      if (after !== undefined) {
        const afterKey = model.stateKey(after);
        if (pass === 0 || afterKey !== stateKey) {
          // R2 above: an optional op that changes nothing is skipped
          const w = i >>> 5;
          const m = 1 << (i & 31);
          bits[w] = bits[w]! | m;
          const n1 = h1 ^ z1[i]!;
          const n2 = h2 ^ z2[i]!;
          const memoKey = `${n1}:${n2}:${afterKey}`;
          if (!covered(memoKey)) {
            if (optional[i] === 0 && --required === 0) return { kind: 'ok', steps, memoEntries }; // R1
            stackCall[sp] = entry;
            stackState[sp] = state;
            stackStateKey[sp] = stateKey;
            stackMemoKey[sp] = memoKey;
            stackTainted[sp] = 0;
            sp++;
            state = after;
            stateKey = afterKey;
            h1 = n1;
            h2 = n2;
            unlink(entry);
            unlink(entry + 1);
            entry = next[HEAD]!;
            pass = 0;
            continue;
          }
          bits[w] = bits[w]! & ~m;
        }
      }
      entry = next[entry]!;
      continue;
    }
    if (pass === 0) {
      pass = 1;
      entry = next[HEAD]!;
      continue;
    }
    // A return event: no candidate works from this configuration. (The window always
    // ends at one: a required op is left, and its finite return precedes every ∞.)
    if (entry === NIL) throw new Error('wgl: candidate window without a return event (internal error)');
    if (best === undefined || sp > best.prefix.length) {
      best = { prefix: Array.from(stackCall.subarray(0, sp), (e) => e >> 1), blocked: entry >> 1, state };
    }
    if (sp === 0) {
      return { kind: 'illegal', steps, memoEntries, prefix: best.prefix, blocked: best.blocked, stateAfterPrefix: best.state };
    }
    if (memoEntries >= budget.maxMemoEntries) return { kind: 'unknown', reason: 'memo', steps, memoEntries };
    sp--;
    if (stackTainted[sp] === 0) {
      const memoKey = stackMemoKey[sp]!;
      const bucket = failed.get(memoKey);
      if (bucket === undefined) failed.set(memoKey, [bits.slice()]);
      else bucket.push(bits.slice());
      memoEntries++;
    }
    const c = stackCall[sp]!;
    const i = c >> 1;
    state = stackState[sp]!;
    stateKey = stackStateKey[sp]!;
    bits[i >>> 5] = bits[i >>> 5]! & ~(1 << (i & 31));
    h1 ^= z1[i]!;
    h2 ^= z2[i]!;
    if (optional[i] === 0) required++;
    relink(c + 1);
    relink(c);
    entry = next[c]!;
    pass = optional[i]!;
  }
}
