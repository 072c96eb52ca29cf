/**
 * Linearizability checker: Wing & Gong's search with Lowe's memoization, in the
 * style of Porcupine (Athalye) — iterative, over a doubly linked list of call and
 * return events, with per-partition checking.
 *
 * Algorithm (per partition)
 * -------------------------
 * Every operation contributes a call event (at `call`) and a return event (at
 * `ret`). The events are sorted by time into a doubly linked list. The search walks
 * the list from the head; the candidates for the next linearization point are the
 * ops whose call event comes before the first return event still in the list:
 *   - at a call event it tries to linearize that op now: if the model accepts the
 *     step and the resulting configuration is not known to fail (memo, below), the
 *     op's call and return events are *lifted* out of the list (dancing-links
 *     removal), the previous state is pushed on an explicit stack and the walk
 *     restarts at the head; otherwise the walk moves on to the next event;
 *   - at a return event, that op had to be linearized before this point but no
 *     candidate works: backtrack — pop the stack, record the configuration as
 *     failed, *unlift* the op (reinsert its two events, exactly reversing the
 *     lift) and continue the walk after its call event.
 * It is linearizable once every (required, see below) op is linearized; it is not
 * if a return event is met with an empty stack. The walk is a plain loop (no
 * recursion), so histories with many thousands of operations per partition are fine.
 *
 * Memoization (Lowe): a configuration is the set of linearized ops (a bitset) plus
 * the model state; equal configurations have identical futures. A configuration is
 * recorded when its exploration finishes without success (on backtrack — a
 * configuration still on the stack can never be reached again, since sets only grow
 * along a path), and a step into a recorded configuration is pruned. The memo key
 * is a 64-bit Zobrist hash of the bitset's required part (maintained incrementally,
 * O(1) per step) plus `model.hash(state)`; on a key match the stored bitset and state are compared
 * exactly (bitset words and `model.equal`), so hash collisions can never cause a
 * wrong answer.
 *
 * Operations with unknown outcome (timeouts, "info" ops)
 * ------------------------------------------------------
 * Record them with `ret = Infinity` and an output that the model accepts in any
 * state (e.g. the KV model's `{ unknown: true }`). Their return event sorts after
 * every finite event, so the search may place the op anywhere after its call —
 * including after every other op, which is indistinguishable from the op never
 * having taken effect (nothing observes it, and the model accepts it in any
 * state). So "took effect at some point after its call, or never" needs no special
 * casing, and this plain treatment is what happens for models without
 * `isUnconstrained`.
 *
 * When the model declares such ops via `isUnconstrained(input, output)`, they are
 * *optional* and the search uses sound reductions (each keeps the answer exact):
 *   R1  success as soon as every required (non-optional) op is linearized — the
 *       remaining optional ops go at the end, i.e. never happened;
 *   R2  an optional op is never linearized where it leaves the state unchanged
 *       (moving it to the end gives the same future);
 *   R3  subsumption in the memo: a failed configuration (B, s) also prunes
 *       (B', s) when B' has the same required ops and a superset of optional ops
 *       (anything possible from (B', s) is possible from (B, s), with the extra
 *       optional ops omitted);
 *   and candidates are tried required-first, so the smaller configurations, which
 *   subsume the larger ones, tend to fail first.
 * Checking remains exponential in the worst case (the problem is NP-complete) and
 * many concurrent unknown-outcome ops on one hot key are the main source of
 * hardness; the budgets below turn that into an honest 'unknown'.
 *
 * Real-time order and tie-breaking
 * --------------------------------
 * Operation a must precede b iff `a.ret < b.call` (strictly). At equal timestamps
 * call events are ordered before return events, so an op that returned at t and an
 * op called at the same t are treated as *concurrent* (closed intervals that touch
 * overlap). This is the permissive choice (as in Porcupine): with coarse clocks an
 * equal timestamp does not prove the first response happened before the second
 * invocation, so we never report a violation that depends on it. Give the recorder
 * strictly increasing timestamps (a logical clock) to get strict ordering. Events
 * with equal time and kind are ordered by their index in the partition
 * (deterministic; their relative order does not affect the answer).
 *
 * Budgets
 * -------
 * `timeoutMs` bounds the wall-clock time of the whole check; when it runs out the
 * result is 'unknown' (never 'ok' for an unfinished search). The memo is the only
 * structure that grows beyond O(n) (an entry costs roughly 100 bytes + n/8 for its
 * bitset); `maxCacheEntries` (default 1,000,000 per partition) bounds it, and
 * exceeding it also yields 'unknown' for that partition
 * (other partitions are still checked, so a definite violation elsewhere is still
 * reported as 'illegal').
 */

import { Prng } from './prng.js';

export interface Operation<I, O> {
  /** Client (process) id, informational only. */
  client: number;
  input: I;
  /** Invocation timestamp (finite). */
  call: number;
  /** Response timestamp (>= call); Infinity when the outcome is unknown. */
  ret: number;
  output: O;
}

export interface StepResult<S> {
  ok: boolean;
  next: S;
}

export interface Model<S, I, O> {
  init(): S;
  /** Apply `input` in `state`; ok=false if the observed `output` is impossible there. Must not mutate `state`. */
  step(state: S, input: I, output: O): StepResult<S>;
  equal(a: S, b: S): boolean;
  /** Equal states must have equal hashes. */
  hash(state: S): string;
  /** Split a history into independently checkable sub-histories (e.g. by key). */
  partition?(ops: Operation<I, O>[]): Operation<I, O>[][];
  describe?(input: I, output: O): string;
  /**
   * True if `step` accepts this op in every state (its output carries no
   * information, e.g. its outcome is unknown). Such an op with `ret = Infinity` is
   * *optional*: it may have taken effect at any point after its call, or never, and
   * the checker uses that to prune the search. Must be exact: returning true for an
   * op that `step` can reject makes the checker unsound.
   */
  isUnconstrained?(input: I, output: O): boolean;
  /** Human-readable state, for explanations (defaults to `hash`). */
  describeState?(state: S): string;
}

export type CheckResultKind = 'ok' | 'illegal' | 'unknown';

export interface CheckResult {
  result: CheckResultKind;
  /** Index (into the model's partitioning) of the partition that was illegal / not decided. */
  partition?: number;
  /** Human-readable explanation for 'illegal' and 'unknown'. */
  info?: string;
}

export interface CheckOptions {
  /** Wall-clock budget for the whole check, in ms. Unlimited when omitted. */
  timeoutMs?: number;
  /** Upper bound on memo cache entries per partition (default 1,000,000). */
  maxCacheEntries?: number;
}

export const DEFAULT_MAX_CACHE_ENTRIES = 1_000_000;

/** How many walk steps between two clock reads. */
const CLOCK_CHECK_INTERVAL = 1024;
/** How many operations of the best prefix to show in an explanation. */
const PREFIX_SHOWN = 8;

interface CacheEntry<S> {
  bits: Uint32Array;
  state: S;
}

type PartitionOutcome =
  | { kind: 'ok' }
  | { kind: 'timeout' }
  | { kind: 'cache-full' }
  | { kind: 'illegal'; prefix: number[]; blocked: number; stateAfterPrefix: string };

function validate<I, O>(ops: readonly Operation<I, O>[]): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
      throw new RangeError(`operation ${i}: call must be a finite number, got ${String(op.call)}`);
    }
    if (typeof op.ret !== 'number' || Number.isNaN(op.ret) || op.ret < op.call) {
      throw new RangeError(`operation ${i}: ret must be a number >= call (${op.call}), got ${String(op.ret)}`);
    }
  }
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], deadline: number, maxCacheEntries: number): PartitionOutcome {
  const n = ops.length;
  if (n === 0) return { kind: 'ok' };

  // Optional ops: unknown outcome (ret = ∞) and accepted by the model in any state.
  const optional = new Uint8Array(n);
  let required = 0; // non-optional ops not yet linearized
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    if (op.ret === Infinity && model.isUnconstrained?.(op.input, op.output) === true) optional[i] = 1;
    else required++;
  }
  if (required === 0) return { kind: 'ok' };

  // Event e: op = e >> 1; even = call, odd = return; the return of call e is e + 1.
  const events: number[] = new Array<number>(2 * n);
  for (let e = 0; e < 2 * n; e++) events[e] = e;
  const timeOf = (e: number): number => {
    const op = ops[e >> 1]!;
    return (e & 1) === 0 ? op.call : op.ret;
  };
  events.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1; // Infinity === Infinity falls through
    const ka = a & 1;
    const kb = b & 1;
    if (ka !== kb) return ka - kb; // calls before returns at equal time
    return a - b;
  });

  const HEAD = 2 * n;
  const NIL = -1;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = HEAD;
  for (const e of events) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = NIL;

  const lift = (c: number): void => {
    const r = c + 1;
    const cp = prev[c]!;
    const cn = next[c]!;
    next[cp] = cn;
    if (cn !== NIL) prev[cn] = cp;
    const rp = prev[r]!;
    const rn = next[r]!;
    next[rp] = rn;
    if (rn !== NIL) prev[rn] = rp;
  };
  const unlift = (c: number): void => {
    // exact reverse of lift: reinsert the return, then the call
    const r = c + 1;
    const rp = prev[r]!;
    const rn = next[r]!;
    next[rp] = r;
    if (rn !== NIL) prev[rn] = r;
    const cp = prev[c]!;
    const cn = next[c]!;
    next[cp] = c;
    if (cn !== NIL) prev[cn] = c;
  };

  // Linearized set as a bitset, plus a 64-bit Zobrist hash (two 32-bit halves, XOR of
  // per-op random keys) of its required part, maintained incrementally.
  const prng = new Prng(0x9e3779b9 ^ n);
  const rand = () => prng.nextUint32();
  const z1 = new Int32Array(n);
  const z2 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = optional[i] ? 0 : rand() | 0;
    z2[i] = optional[i] ? 0 : rand() | 0;
  }
  const words = (n + 31) >>> 5;
  const requiredMask = new Uint32Array(words);
  for (let i = 0; i < n; i++) if (!optional[i]) requiredMask[i >>> 5] = requiredMask[i >>> 5]! | (1 << (i & 31));
  const bits = new Uint32Array(words);
  let h1 = 0;
  let h2 = 0;

  // Memo of configurations whose exploration finished without success. Keyed by the
  // hash of (required part of the set, state); an entry (B, s) subsumes the current
  // configuration (B', s') iff s = s', B and B' agree on required ops and B ⊆ B' on
  // optional ops. (With no optional ops this is plain equality: Lowe's memo.)
  const failed = new Map<string, CacheEntry<S> | CacheEntry<S>[]>();
  let failedSize = 0;
  const covers = (c: CacheEntry<S>, state: S): boolean => {
    for (let w = 0; w < words; w++) {
      const b = c.bits[w]!;
      const cur = bits[w]!;
      if ((b & ~cur) !== 0 || (cur & ~b & requiredMask[w]!) !== 0) return false;
    }
    return model.equal(c.state, state);
  };
  const subsumed = (key: string, state: S): boolean => {
    const hit = failed.get(key);
    if (hit === undefined) return false;
    if (Array.isArray(hit)) {
      for (const c of hit) if (covers(c, state)) return true;
      return false;
    }
    return covers(hit, state);
  };
  const recordFailed = (key: string, state: S): void => {
    const entry: CacheEntry<S> = { bits: bits.slice(), state };
    const hit = failed.get(key);
    if (hit === undefined) failed.set(key, entry);
    else if (Array.isArray(hit)) hit.push(entry);
    else failed.set(key, [hit, entry]);
    failedSize++;
  };

  // Explicit stack: call event linearized, state before it, memo key of the configuration after it.
  const stackEvent = new Int32Array(n);
  const stackState: (S | undefined)[] = new Array<S | undefined>(n);
  const stackKey: string[] = new Array<string>(n);
  let sp = 0;
  let state = model.init();

  // Deepest point reached, for the explanation of an illegal result.
  let bestDepth = -1;
  let bestPrefix: number[] = [];
  let bestBlocked = -1;
  let bestState = '';

  let iter = 0;
  // The window of candidates is [head, first return event). It is scanned twice:
  // pass 0 tries required ops, pass 1 optional ones (order of children only).
  let pass = 0;
  let entry = next[HEAD]!;
  for (;;) {
    if (++iter % CLOCK_CHECK_INTERVAL === 0 && deadline !== Infinity && performance.now() > deadline) {
      return { kind: 'timeout' };
    }
    if (entry !== NIL && (entry & 1) === 0) {
      // call event: try to linearize this op here
      const i = entry >> 1;
      if (optional[i] !== pass) {
        entry = next[entry]!;
        continue;
      }
      const op = ops[i]!;
      const r = model.step(state, op.input, op.output);
      // An optional op that leaves the state unchanged is never needed here (R2).
      if (r.ok && (pass === 0 || !model.equal(r.next, state))) {
        const w = i >>> 5;
        const m = 1 << (i & 31);
        bits[w] = bits[w]! | m;
        const n1 = h1 ^ z1[i]!;
        const n2 = h2 ^ z2[i]!;
        const key = `${n1}:${n2}:${model.hash(r.next)}`;
        if (!subsumed(key, r.next)) {
          if (optional[i] === 0 && --required === 0) return { kind: 'ok' }; // R1
          stackEvent[sp] = entry;
          stackState[sp] = state;
          stackKey[sp] = key;
          sp++;
          state = r.next;
          h1 = n1;
          h2 = n2;
          lift(entry);
          entry = next[HEAD]!;
          pass = 0;
          continue;
        }
        bits[w] = bits[w]! & ~m;
      }
      entry = next[entry]!;
    } else if (pass === 0) {
      pass = 1;
      entry = next[HEAD]!;
    } else {
      // return event of a pending op: no candidate works from here, backtrack
      if (sp > bestDepth) {
        bestDepth = sp;
        bestPrefix = Array.from(stackEvent.subarray(0, sp), (e) => e >> 1);
        bestBlocked = entry === NIL ? -1 : entry >> 1;
        bestState = model.describeState ? model.describeState(state) : model.hash(state);
      }
      if (sp === 0) {
        return { kind: 'illegal', prefix: bestPrefix, blocked: bestBlocked, stateAfterPrefix: bestState };
      }
      sp--;
      if (failedSize >= maxCacheEntries) return { kind: 'cache-full' };
      recordFailed(stackKey[sp]!, state);
      const c = stackEvent[sp]!;
      state = stackState[sp] as S;
      stackState[sp] = undefined;
      const i = c >> 1;
      bits[i >>> 5] = bits[i >>> 5]! & ~(1 << (i & 31));
      h1 ^= z1[i]!;
      h2 ^= z2[i]!;
      if (optional[i] === 0) required++;
      unlift(c);
      entry = next[c]!;
      pass = optional[i]!;
    }
  }
}

function describeOp<I, O>(model: Model<unknown, I, O>, op: Operation<I, O>, originalIndex: number | undefined): string {
  const what = model.describe ? model.describe(op.input, op.output) : `${JSON.stringify(op.input)} -> ${JSON.stringify(op.output)}`;
  const idx = originalIndex === undefined ? '' : `#${originalIndex} `;
  const ret = op.ret === Infinity ? '∞' : String(op.ret);
  return `${idx}c${op.client} ${what} [${op.call}, ${ret}]`;
}

/**
 * Check a history for linearizability against `model`.
 * 'ok': linearizable; 'illegal': not linearizable (with `partition` and an
 * explanation in `info`); 'unknown': the time or memory budget ran out first.
 * Throws RangeError on malformed timestamps.
 */
export function checkOperations<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], opts: CheckOptions = {}): CheckResult {
  validate(ops);
  const deadline = opts.timeoutMs === undefined ? Infinity : performance.now() + Math.max(0, opts.timeoutMs);
  const maxCacheEntries = opts.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
  const partitions = model.partition ? model.partition(ops.slice()) : [ops.slice()];
  for (const part of partitions) validate(part);
  const originalIndex = new Map<Operation<I, O>, number>();
  ops.forEach((op, i) => {
    originalIndex.set(op, i);
  });
  const generic = model as unknown as Model<unknown, I, O>;

  let undecided: CheckResult | undefined;
  for (let p = 0; p < partitions.length; p++) {
    const part = partitions[p]!;
    const out = checkPartition(model, part, deadline, maxCacheEntries);
    switch (out.kind) {
      case 'ok':
        break;
      case 'timeout':
        return {
          result: 'unknown',
          partition: p,
          info: `time budget of ${opts.timeoutMs} ms ran out while checking partition ${p} of ${partitions.length} (${part.length} ops)`,
        };
      case 'cache-full':
        undecided ??= {
          result: 'unknown',
          partition: p,
          info: `memo cache limit of ${maxCacheEntries} entries reached while checking partition ${p} of ${partitions.length} (${part.length} ops)`,
        };
        break;
      case 'illegal': {
        const d = (i: number): string => describeOp(generic, part[i]!, originalIndex.get(part[i]!));
        const k = out.prefix.length;
        const shown = out.prefix.slice(Math.max(0, k - PREFIX_SHOWN)).map(d);
        const prefixText =
          k === 0 ? 'is empty' : `has ${k} of ${part.length} ops: ${k > PREFIX_SHOWN ? `… (${k - PREFIX_SHOWN} earlier), ` : ''}${shown.join(', ')}`;
        const blocked =
          out.blocked >= 0
            ? `${d(out.blocked)} could not be linearized: its response was reached, and from that state no order of it and the ops concurrent with it is accepted by the model`
            : 'no further operation could be linearized';
        return {
          result: 'illegal',
          partition: p,
          info: `partition ${p} is not linearizable. Longest linearizable prefix ${prefixText}; state after it: ${out.stateAfterPrefix}; then ${blocked}`,
        };
      }
    }
  }
  return undecided ?? { result: 'ok' };
}
