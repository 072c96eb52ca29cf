// Registers workload: one register per key (a keyed row), operations
//   read  key          -> ok value: the value read (null = row absent / initial)
//   write key value    -> ok
//   cas   key [from,to]-> ok: it applied (the value was `from`, now `to`)
//                       | fail value=false: refused, the value was not `from`
// Values are JSON scalars compared exactly (1 and "1" differ).
//
// Linearizability is checked per key (Porcupine's partitioning: registers on
// different keys are independent, so a history is linearizable iff each key's
// sub-history is), each with the WGL search of wgl.ts and its own budget.
//
// What each completion contributes:
//   ok         required: must be placed between its invoke and its completion;
//   fail       dropped: it did not take effect — except a refused cas (fail with
//              value false): the database compared and found another value
//              (UPDATE ... WHERE v = from matched no row), which observes the
//              register. It is checked as a required read that saw "anything
//              but `from`" inside its interval, so a compare served by a
//              cut-off old primary (a stale value) is caught. A fail without
//              that mark (an error before COMMIT) still asserts nothing;
//   info write / cas, or never completed: optional, retMs = ∞ — it took effect at
//              some point after its invoke (possibly after the client gave up), or
//              never. Its effect, if any, is the deterministic one (a cas applies
//              iff the value is `from` at that point);
//   info read: dropped (it observed nothing we know of and changed nothing).

import type { Operation } from '../history/pair.js';
import { HistoryError } from '../history/errors.js';
import type { Json, Key } from '../history/types.js';
import { AnomalyLog, DEFAULT_MAX_ANOMALIES, opRef, showMs, showOp, type CheckerResult, type Scalar, type Validity } from './types.js';
import { searchLinearization, type WglModel, type WglOp } from './wgl.js';

export type RegisterInput =
  | { f: 'read'; value: Scalar }
  | { f: 'write'; value: Scalar }
  | { f: 'cas'; from: Scalar; to: Scalar /** indeterminate: applies iff matching, never rejects */; maybe: boolean }
  /** A refused cas: observed a value other than `from`, changed nothing. */
  | { f: 'cas-refused'; from: Scalar };

export interface RegisterOptions {
  /** Value of every key before the first write (default null: row absent). */
  initialValue?: Scalar;
  /** WGL walk iterations per key before giving up with 'unknown' (default 5,000,000). */
  maxStepsPerKey?: number;
  /** Failed configurations remembered per key before giving up (default 500,000). */
  maxMemoEntriesPerKey?: number;
  /** Wall-clock budget for the whole register check, ms (default none). */
  timeoutMs?: number;
  maxAnomalies?: number;
}

export interface RegisterStats {
  /** Keys with at least one op to check. */
  keys: number;
  /** Ops given to the search (ok reads/writes/cas + indeterminate writes/cas). */
  checkedOps: number;
  /** Indeterminate writes/cas (may or may not have happened). */
  indeterminateOps: number;
  /** fail ops (but refused cas) and info reads: assert nothing. */
  droppedOps: number;
  /** Refused cas (fail with value false), checked as observations of "not `from`". */
  refusedCas: number;
  nonlinearizableKeys: number;
  unknownKeys: number;
  steps: number;
  anomaliesOmitted: number;
}

export const DEFAULT_REGISTER_MAX_STEPS_PER_KEY = 5_000_000;
export const DEFAULT_REGISTER_MAX_MEMO_PER_KEY = 500_000;
/** How many ops of the linearizable prefix an anomaly shows. */
const PREFIX_SHOWN = 10;
/** How many concurrent ops an anomaly lists. */
const CONCURRENT_SHOWN = 20;

function isScalar(x: Json | undefined): x is Scalar {
  return x === null || typeof x === 'string' || typeof x === 'number';
}

function showValue(v: Scalar): string {
  return v === null ? 'null' : JSON.stringify(v);
}

export function stepRegister(state: Scalar, input: RegisterInput): Scalar | undefined {
  switch (input.f) {
    case 'read':
      return input.value === state ? state : undefined;
    case 'write':
      return input.value;
    case 'cas':
      if (state === input.from) return input.to;
      return input.maybe ? state : undefined;
    case 'cas-refused':
      return state === input.from ? undefined : state;
  }
}

export function registerModel(initialValue: Scalar): WglModel<Scalar, RegisterInput> {
  return {
    init: initialValue,
    step: stepRegister,
    // JSON.stringify keeps 1 and "1" apart; null is "null"
    stateKey: (s) => JSON.stringify(s),
    blind: (input) => input.f === 'write',
  };
}

function casArgument(op: Operation): [Scalar, Scalar] {
  const v = op.invoke.value;
  if (!Array.isArray(v) || v.length !== 2 || !isScalar(v[0]) || !isScalar(v[1])) {
    throw new HistoryError(`cas must be invoked with [from, to] scalars, got ${JSON.stringify(v ?? 'nothing')}`, op.index);
  }
  return [v[0], v[1]];
}

/** Turns one operation into a search op, or undefined when it asserts nothing. Throws HistoryError on a malformed op. */
export function toRegisterOp(op: Operation): WglOp<RegisterInput> | undefined {
  if (op.type === 'fail') {
    if (op.f !== 'cas' || op.completion?.value !== false) return undefined;
    const from = casArgument(op)[0];
    return { input: { f: 'cas-refused', from }, callMs: op.invokeTimeMs, retMs: op.completeTimeMs!, optional: false };
  }
  const ok = op.type === 'ok';
  const retMs = ok ? op.completeTimeMs! : Infinity;
  switch (op.f) {
    case 'read': {
      if (!ok) return undefined;
      const v = op.completion!.value;
      if (!isScalar(v))
        throw new HistoryError(
          `ok read must complete with a scalar value (null for an absent row), got ${JSON.stringify(v ?? 'nothing')}`,
          op.completionIndex!,
        );
      return { input: { f: 'read', value: v }, callMs: op.invokeTimeMs, retMs, optional: false };
    }
    case 'write': {
      const v = op.invoke.value;
      if (!isScalar(v)) throw new HistoryError(`write must be invoked with a scalar value, got ${JSON.stringify(v ?? 'nothing')}`, op.index);
      return { input: { f: 'write', value: v }, callMs: op.invokeTimeMs, retMs, optional: !ok };
    }
    case 'cas': {
      const [from, to] = casArgument(op);
      return { input: { f: 'cas', from, to, maybe: !ok }, callMs: op.invokeTimeMs, retMs, optional: !ok };
    }
    default:
      throw new HistoryError(`register workload: unknown f ${JSON.stringify(op.f)} (expected read, write or cas)`, op.index);
  }
}

/** Linearizability of a registers history, per key. Throws HistoryError on malformed register ops. */
export function checkRegister(ops: readonly Operation[], opts: RegisterOptions = {}): CheckerResult<RegisterStats> {
  const model = registerModel(opts.initialValue ?? null);
  const deadlineMs = opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs;
  const log = new AnomalyLog(opts.maxAnomalies ?? DEFAULT_MAX_ANOMALIES);
  const stats: RegisterStats = {
    keys: 0,
    checkedOps: 0,
    indeterminateOps: 0,
    droppedOps: 0,
    refusedCas: 0,
    nonlinearizableKeys: 0,
    unknownKeys: 0,
    steps: 0,
    anomaliesOmitted: 0,
  };

  // Partition by key, first-appearance order (JSON.stringify keeps 1 and "1" apart).
  const byKey = new Map<string, { key: Key; search: WglOp<RegisterInput>[]; source: Operation[] }>();
  for (const op of ops) {
    if (op.key === undefined) throw new HistoryError(`register op ${op.f} has no key`, op.index);
    const w = toRegisterOp(op);
    if (w === undefined) {
      stats.droppedOps++;
      continue;
    }
    const id = JSON.stringify(op.key);
    let part = byKey.get(id);
    if (part === undefined) {
      part = { key: op.key, search: [], source: [] };
      byKey.set(id, part);
    }
    part.search.push(w);
    part.source.push(op);
    stats.checkedOps++;
    if (w.optional) stats.indeterminateOps++;
    if (w.input.f === 'cas-refused') stats.refusedCas++;
  }
  stats.keys = byKey.size;

  const maxSteps = opts.maxStepsPerKey ?? DEFAULT_REGISTER_MAX_STEPS_PER_KEY;
  const maxMemoEntries = opts.maxMemoEntriesPerKey ?? DEFAULT_REGISTER_MAX_MEMO_PER_KEY;
  const verdicts: Validity[] = [];
  for (const { key, search, source } of byKey.values()) {
    const out = searchLinearization(model, search, { maxSteps, maxMemoEntries, deadlineMs });
    stats.steps += out.steps;
    if (out.kind === 'ok') continue;
    if (out.kind === 'unknown') {
      // Other keys are still checked: a proven violation elsewhere still makes the run invalid.
      stats.unknownKeys++;
      verdicts.push('unknown');
      const why =
        out.reason === 'steps'
          ? `its step budget (${maxSteps} steps) ran out`
          : out.reason === 'memo'
            ? `its memo budget (${maxMemoEntries} failed configurations) ran out`
            : `the time budget (${opts.timeoutMs} ms) ran out`;
      log.add({
        type: 'unknown',
        checker: 'register',
        key,
        message: `linearizability of key ${JSON.stringify(key)} (${search.length} ops) is undecided: ${why}`,
      });
      continue;
    }
    stats.nonlinearizableKeys++;
    verdicts.push(false);
    const blocked = source[out.blocked]!;
    const b = search[out.blocked]!;
    // Ops of the key overlapping the blocked one in real time (touching counts): the ones a reader should look at.
    const concurrent = search.flatMap((o, i) => (i !== out.blocked && o.callMs <= b.retMs && b.callMs <= o.retMs ? [i] : [])).slice(0, CONCURRENT_SHOWN);
    const prefixTail = out.prefix.slice(-PREFIX_SHOWN).map((i) => source[i]!.index);
    const shownValue = (op: Operation): Json | undefined => op.completion?.value ?? op.invoke.value;
    const tailText = `${out.prefix.length > PREFIX_SHOWN ? '…, ' : ''}${prefixTail.map((i) => `#${i}`).join(', ')}`;
    log.add({
      type: 'nonlinearizable',
      key,
      message:
        `key ${JSON.stringify(key)} is not linearizable: ${showOp(blocked, shownValue(blocked))} ` +
        `[${showMs(blocked.invokeTimeMs)}, ${showMs(blocked.completeTimeMs)}] cannot be placed. ` +
        `The longest linearizable prefix has ${out.prefix.length} of the key's ${search.length} ops${out.prefix.length > 0 ? ` (${tailText})` : ''}, ` +
        `after which the value is ${showValue(out.stateAfterPrefix)}; ` +
        (concurrent.length === 0
          ? 'no op of the key is concurrent with it'
          : `ops of the key concurrent with it: ${concurrent.map((i) => `#${source[i]!.index}`).join(', ')}`),
      op: opRef(blocked),
      concurrent: concurrent.map((i) => opRef(source[i]!)),
      prefixTail,
      prefixLength: out.prefix.length,
      valueAfterPrefix: out.stateAfterPrefix,
      opsOnKey: search.length,
    });
  }
  stats.anomaliesOmitted = log.omitted;
  const valid: Validity = verdicts.includes(false) ? false : verdicts.includes('unknown') ? 'unknown' : true;
  return { valid, anomalies: log.list, stats };
}
