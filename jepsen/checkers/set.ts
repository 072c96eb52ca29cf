// Set workload: unique inserts, then one final read of the whole set.
//   add  value=element       (each element is added at most once in a history)
//   read -> ok value=[elements...]
// The final read is the ok read that completed last. Against it:
//   lost        an ok add missing from the final read, although the add completed
//               before the read was invoked (an acknowledged write disappeared).
//               An ok add that completed after the read began may legitimately be
//               missing: it only counts in stats (okConcurrentAbsent);
//   unexpected  an element in the final read that
//               - was never added (never-attempted),
//               - was added by an op that failed, i.e. certainly did not take
//                 effect (failed-insert: an error was reported for a commit),
//               - was added by an op invoked after the read completed (added-after-read);
//   duplicated  an element present more than once (one insert became two rows);
//   recovered   (stats only) an indeterminate (info) add present: it did happen.
// Indeterminate adds may be present or absent; neither is an anomaly.

import { HistoryError } from '../history/errors.js';
import type { Operation } from '../history/pair.js';
import type { Json } from '../history/types.js';
import { AnomalyLog, DEFAULT_MAX_ANOMALIES, opRef, showMs, showOp, type CheckerResult, type Element, type Validity } from './types.js';

export interface SetOptions {
  maxAnomalies?: number;
}

export interface SetStats {
  attempted: number;
  acknowledged: number;
  failed: number;
  indeterminate: number;
  /** Distinct elements in the final read; -1 when there is none. */
  finalReadSize: number;
  lost: number;
  unexpected: number;
  duplicated: number;
  /** Indeterminate adds present in the final read. */
  recovered: number;
  /** Indeterminate adds absent from the final read (did not happen: fine). */
  indeterminateAbsent: number;
  /** ok adds absent from the final read but concurrent with it (fine). */
  okConcurrentAbsent: number;
  anomaliesOmitted: number;
}

function isElement(x: Json | undefined): x is Element {
  return typeof x === 'string' || typeof x === 'number';
}

/** Identity of an element: 1 and "1" differ. */
const idOf = (e: Element): string => JSON.stringify(e);

export function checkSet(ops: readonly Operation[], opts: SetOptions = {}): CheckerResult<SetStats> {
  const log = new AnomalyLog(opts.maxAnomalies ?? DEFAULT_MAX_ANOMALIES);
  const stats: SetStats = {
    attempted: 0,
    acknowledged: 0,
    failed: 0,
    indeterminate: 0,
    finalReadSize: -1,
    lost: 0,
    unexpected: 0,
    duplicated: 0,
    recovered: 0,
    indeterminateAbsent: 0,
    okConcurrentAbsent: 0,
    anomaliesOmitted: 0,
  };

  const adds = new Map<string, { element: Element; op: Operation }>();
  let finalRead: Operation | undefined;
  for (const op of ops) {
    if (op.f === 'add') {
      const e = op.invoke.value;
      if (!isElement(e)) throw new HistoryError(`add must be invoked with a string or number element, got ${JSON.stringify(e ?? 'nothing')}`, op.index);
      const prior = adds.get(idOf(e));
      // Unique inserts are what makes "duplicated" and "unexpected" meaningful.
      if (prior !== undefined) throw new HistoryError(`element ${JSON.stringify(e)} is added again (first by #${prior.op.index}); set inserts must be unique`, op.index);
      adds.set(idOf(e), { element: e, op });
      stats.attempted++;
      if (op.type === 'ok') stats.acknowledged++;
      else if (op.type === 'fail') stats.failed++;
      else stats.indeterminate++;
    } else if (op.f === 'read') {
      if (op.type === 'ok' && (finalRead === undefined || op.completionIndex! > finalRead.completionIndex!)) finalRead = op;
    } else {
      throw new HistoryError(`set workload: unknown f ${JSON.stringify(op.f)} (expected add or read)`, op.index);
    }
  }

  if (finalRead === undefined) {
    // Nothing attempted and nothing read: vacuously fine. Otherwise nothing can be told.
    if (stats.attempted === 0) return { valid: true, anomalies: [], stats };
    log.add({ type: 'unknown', checker: 'set', message: `no ok read in the history: lost and unexpected elements cannot be told (${stats.attempted} adds)` });
    return { valid: 'unknown', anomalies: log.list, stats };
  }
  const read = finalRead;
  const raw = read.completion!.value;
  if (!Array.isArray(raw) || !raw.every((x: Json) => isElement(x))) {
    throw new HistoryError('the final read must complete with an array of string or number elements', read.completionIndex!);
  }
  const elements = raw as readonly Element[];
  const counts = new Map<string, { element: Element; count: number }>();
  for (const e of elements) {
    const c = counts.get(idOf(e));
    if (c === undefined) counts.set(idOf(e), { element: e, count: 1 });
    else c.count++;
  }
  stats.finalReadSize = counts.size;
  const readRef = opRef(read, false);
  const readText = `the final read ${showOp(read)} [${showMs(read.invokeTimeMs)}, ${showMs(read.completeTimeMs)}]`;

  for (const [id, { element, count }] of counts) {
    const e = JSON.stringify(element);
    if (count > 1) {
      stats.duplicated++;
      log.add({ type: 'duplicated', element, count, finalRead: readRef, message: `element ${e} appears ${count} times in ${readText}` });
    }
    const add = adds.get(id);
    if (add === undefined) {
      stats.unexpected++;
      log.add({ type: 'unexpected', element, reason: 'never-attempted', finalRead: readRef, message: `element ${e} is in ${readText} but was never added` });
    } else if (add.op.type === 'fail') {
      stats.unexpected++;
      log.add({
        type: 'unexpected',
        element,
        reason: 'failed-insert',
        add: opRef(add.op),
        finalRead: readRef,
        message: `element ${e} is in ${readText} although its add ${showOp(add.op, element)} failed (${add.op.completion?.error ?? 'no error text'}): a failure was reported for a write that took effect`,
      });
    } else if (add.op.invokeTimeMs > read.completeTimeMs!) {
      stats.unexpected++;
      log.add({
        type: 'unexpected',
        element,
        reason: 'added-after-read',
        add: opRef(add.op),
        finalRead: readRef,
        message: `element ${e} is in ${readText} although its add ${showOp(add.op, element)} was invoked later, at ${showMs(add.op.invokeTimeMs)}`,
      });
    } else if (add.op.type === 'info') {
      stats.recovered++;
    }
  }

  for (const [id, { element, op }] of adds) {
    if (counts.has(id)) continue;
    if (op.type === 'info') stats.indeterminateAbsent++;
    else if (op.type === 'ok') {
      if (op.completeTimeMs! < read.invokeTimeMs) {
        stats.lost++;
        log.add({
          type: 'lost',
          element,
          add: opRef(op),
          finalRead: readRef,
          message:
            `element ${JSON.stringify(element)} is lost: its add ${showOp(op, element)} was acknowledged at ${showMs(op.completeTimeMs)}` +
            `${op.completion?.node === undefined ? '' : ` by node ${op.completion.node}`}, before ${readText} began, which does not contain it`,
        });
      } else {
        stats.okConcurrentAbsent++;
      }
    }
  }

  stats.anomaliesOmitted = log.omitted;
  const valid: Validity = stats.lost + stats.unexpected + stats.duplicated > 0 ? false : true;
  return { valid, anomalies: log.list, stats };
}
