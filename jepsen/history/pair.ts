// Pairing: turns the flat event list into operations (invoke + completion).
//
// Well-formedness rules (each violation is a HistoryError naming the event):
//   - every event has the shape of types.ts (validate.ts);
//   - timeMs never decreases along the history (the recorder appends in the order
//     it observes events, with one monotonic clock);
//   - a process invokes only when it has no pending operation (no double invoke);
//   - a completion belongs to its process's pending invoke, with the same f (and
//     the same key when it repeats one);
//   - the history holds at most `maxEvents` events (checking cost must stay bounded).
// An invoke still pending at the end of the history becomes an info operation:
// the client never learnt the outcome, which is exactly what info means.

import { HistoryError } from './errors.js';
import type { CompletionType, History, Key, Op } from './types.js';
import { parseOp } from './validate.js';

export interface Operation {
  /** Index of the invoke event in the history: the operation's name in reports. */
  index: number;
  process: number;
  f: string;
  key?: Key;
  /** 'info' also when the invoke was never completed. */
  type: CompletionType;
  invoke: Op;
  /** Undefined when the history ends before the completion. */
  completion?: Op;
  /** Index of the completion event; undefined when never completed. */
  completionIndex?: number;
  invokeTimeMs: number;
  /** Undefined when never completed. */
  completeTimeMs?: number;
}

export interface PairOptions {
  /** Refuse longer histories (default 2,000,000 events). */
  maxEvents?: number;
}

export const DEFAULT_MAX_EVENTS = 2_000_000;

function describe(op: Op): string {
  return `${op.f}${op.key === undefined ? '' : ` ${JSON.stringify(op.key)}`}`;
}

/** Operations in invoke order. Throws HistoryError on a malformed history. */
export function pairHistory(history: History, opts: PairOptions = {}): Operation[] {
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  if (history.length > maxEvents) {
    throw new HistoryError(`history has ${history.length} events, more than the limit of ${maxEvents}`, -1);
  }
  const out: Operation[] = [];
  const pending = new Map<number, Operation>();
  let lastTimeMs = -Infinity;
  for (let i = 0; i < history.length; i++) {
    const op = parseOp(history[i], i);
    if (op.timeMs < lastTimeMs) {
      throw new HistoryError(`timeMs goes backwards: ${op.timeMs} after ${lastTimeMs} (events must be in the order they happened)`, i);
    }
    lastTimeMs = op.timeMs;
    const open = pending.get(op.process);
    if (op.type === 'invoke') {
      if (open !== undefined) {
        throw new HistoryError(
          `double invoke: process ${op.process} invokes ${describe(op)} while its invoke #${open.index} (${describe(open.invoke)}) is still pending`,
          i,
        );
      }
      const operation: Operation = { index: i, process: op.process, f: op.f, type: 'info', invoke: op, invokeTimeMs: op.timeMs };
      if (op.key !== undefined) operation.key = op.key;
      pending.set(op.process, operation);
      out.push(operation);
      continue;
    }
    if (open === undefined) {
      throw new HistoryError(`completion without invoke: process ${op.process} completes (${op.type} ${describe(op)}) with no pending invoke`, i);
    }
    if (op.f !== open.f) {
      throw new HistoryError(`completion f ${JSON.stringify(op.f)} does not match its invoke #${open.index} (f ${JSON.stringify(open.f)})`, i);
    }
    if (op.key !== undefined && op.key !== open.key) {
      throw new HistoryError(`completion key ${JSON.stringify(op.key)} does not match its invoke #${open.index} (key ${JSON.stringify(open.key ?? null)})`, i);
    }
    open.type = op.type;
    open.completion = op;
    open.completionIndex = i;
    open.completeTimeMs = op.timeMs;
    pending.delete(op.process);
  }
  return out;
}

export interface HistoryCounts {
  /** Operations (invokes). */
  ops: number;
  ok: number;
  fail: number;
  /** Includes invokes never completed. */
  info: number;
}

export function countOperations(ops: readonly Operation[]): HistoryCounts {
  const c: HistoryCounts = { ops: ops.length, ok: 0, fail: 0, info: 0 };
  for (const op of ops) c[op.type]++;
  return c;
}
