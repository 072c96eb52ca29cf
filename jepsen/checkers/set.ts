// Set workload: unique inserts, reads of the whole set during the run, and one
// final read after healing.
//   add  value=element       (each element is added at most once in a history)
//   read -> ok value=[elements...]
// Every ok read is checked (the final read is the ok read that completed last):
//   lost        an ok add missing from a read, although the add completed
//               before the read was invoked (an acknowledged write disappeared,
//               or the read was served from a stale copy). An ok add that
//               completed after the read began may legitimately be missing: it
//               only counts in stats (okConcurrentAbsent, final read only);
//   disappeared an element present in a read and missing from a later read that
//               began after the first one ended: once seen, an insert has
//               happened, whatever its add's outcome (catches what `lost`
//               cannot: indeterminate adds, and ok adds still in flight);
//   unexpected  an element in a read that
//               - was never added (never-attempted),
//               - was added by an op that failed, i.e. certainly did not take
//                 effect (failed-insert: an error was reported for a commit),
//               - was added by an op invoked after the read completed (added-after-read);
//   duplicated  an element present more than once (one insert became two rows);
//   recovered   (stats only) an indeterminate (info) add present in the final read.
// Indeterminate adds may be present or absent until a read shows them.
// Each element is reported at most once per kind (at the first read that shows
// the anomaly): a lost element is missing from every later read too, and one
// anomaly per read would bury the others. The stats count elements.

import { HistoryError } from '../history/errors.js';
import type { Operation } from '../history/pair.js';
import type { Json } from '../history/types.js';
import { AnomalyLog, DEFAULT_MAX_ANOMALIES, opRef, showMs, showOp, type CheckerResult, type Element, type OpRef, type Validity } from './types.js';

export interface SetOptions {
  maxAnomalies?: number;
}

export interface SetStats {
  attempted: number;
  acknowledged: number;
  failed: number;
  indeterminate: number;
  /** ok reads checked (the final one included). */
  reads: number;
  /** Distinct elements in the final read; -1 when there is none. */
  finalReadSize: number;
  /** Elements (not observations) with each anomaly. */
  lost: number;
  disappeared: number;
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

interface Add {
  element: Element;
  op: Operation;
}

/** A read's elements with their multiplicity. Throws HistoryError on a malformed read. */
function contentsOf(read: Operation): Map<string, { element: Element; count: number }> {
  const raw = read.completion!.value;
  if (!Array.isArray(raw) || !raw.every((x: Json) => isElement(x))) {
    throw new HistoryError('an ok read must complete with an array of string or number elements', read.completionIndex!);
  }
  const counts = new Map<string, { element: Element; count: number }>();
  for (const e of raw as readonly Element[]) {
    const c = counts.get(idOf(e));
    if (c === undefined) counts.set(idOf(e), { element: e, count: 1 });
    else c.count++;
  }
  return counts;
}

export function checkSet(ops: readonly Operation[], opts: SetOptions = {}): CheckerResult<SetStats> {
  const log = new AnomalyLog(opts.maxAnomalies ?? DEFAULT_MAX_ANOMALIES);
  const stats: SetStats = {
    attempted: 0,
    acknowledged: 0,
    failed: 0,
    indeterminate: 0,
    reads: 0,
    finalReadSize: -1,
    lost: 0,
    disappeared: 0,
    unexpected: 0,
    duplicated: 0,
    recovered: 0,
    indeterminateAbsent: 0,
    okConcurrentAbsent: 0,
    anomaliesOmitted: 0,
  };

  const adds = new Map<string, Add>();
  /** ok reads in invoke order. */
  const reads: Operation[] = [];
  let finalRead: Operation | undefined;
  for (const op of ops) {
    if (op.f === 'add') {
      const e = op.invoke.value;
      if (!isElement(e)) throw new HistoryError(`add must be invoked with a string or number element, got ${JSON.stringify(e ?? 'nothing')}`, op.index);
      const prior = adds.get(idOf(e));
      // Unique inserts are what makes "duplicated" and "unexpected" meaningful.
      if (prior !== undefined)
        throw new HistoryError(`element ${JSON.stringify(e)} is added again (first by #${prior.op.index}); set inserts must be unique`, op.index);
      adds.set(idOf(e), { element: e, op });
      stats.attempted++;
      if (op.type === 'ok') stats.acknowledged++;
      else if (op.type === 'fail') stats.failed++;
      else stats.indeterminate++;
    } else if (op.f === 'read') {
      if (op.type !== 'ok') continue; // a read that did not complete observed nothing we know of
      reads.push(op);
      if (finalRead === undefined || op.completionIndex! > finalRead.completionIndex!) finalRead = op;
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

  const reported = { lost: new Set<string>(), disappeared: new Set<string>(), unexpected: new Set<string>(), duplicated: new Set<string>() };
  /** Why `element` cannot be in `read`, or undefined when it may be. */
  const unexpectedReason = (add: Add | undefined, read: Operation): 'never-attempted' | 'failed-insert' | 'added-after-read' | undefined => {
    if (add === undefined) return 'never-attempted';
    if (add.op.type === 'fail') return 'failed-insert';
    if (add.op.invokeTimeMs > read.completeTimeMs!) return 'added-after-read';
    return undefined;
  };
  // Elements some read showed (legitimately), with the first read to show them, from the reads that completed
  // before the current read began: every later read must contain them. Reads enter in completion order.
  const seen = new Map<string, { element: Element; read: Operation }>();
  const byCompletion = [...reads].sort((a, b) => a.completeTimeMs! - b.completeTimeMs!);
  let entered = 0;

  for (const read of reads) {
    stats.reads++;
    while (entered < byCompletion.length && byCompletion[entered]!.completeTimeMs! < read.invokeTimeMs) {
      const earlier = byCompletion[entered++]!;
      for (const [id, { element }] of contentsOf(earlier)) {
        if (!seen.has(id) && unexpectedReason(adds.get(id), earlier) === undefined) seen.set(id, { element, read: earlier });
      }
    }
    const counts = contentsOf(read);
    const isFinal = read === finalRead;
    const readRef: OpRef = opRef(read, false);
    const readText = `${isFinal ? 'the final read' : 'the read'} ${showOp(read)} [${showMs(read.invokeTimeMs)}, ${showMs(read.completeTimeMs)}]`;
    if (isFinal) stats.finalReadSize = counts.size;

    for (const [id, { element, count }] of counts) {
      const e = JSON.stringify(element);
      if (count > 1 && !reported.duplicated.has(id)) {
        reported.duplicated.add(id);
        stats.duplicated++;
        log.add({ type: 'duplicated', element, count, read: readRef, readIsFinal: isFinal, message: `element ${e} appears ${count} times in ${readText}` });
      }
      const add = adds.get(id);
      const reason = unexpectedReason(add, read);
      if (reason !== undefined) {
        if (reported.unexpected.has(id)) continue;
        reported.unexpected.add(id);
        stats.unexpected++;
        const message =
          add === undefined
            ? `element ${e} is in ${readText} but was never added`
            : reason === 'failed-insert'
              ? `element ${e} is in ${readText} although its add ${showOp(add.op, element)} failed (${add.op.completion?.error ?? 'no error text'}): a failure was reported for a write that took effect`
              : `element ${e} is in ${readText} although its add ${showOp(add.op, element)} was invoked later, at ${showMs(add.op.invokeTimeMs)}`;
        log.add({ type: 'unexpected', element, reason, ...(add === undefined ? {} : { add: opRef(add.op) }), read: readRef, readIsFinal: isFinal, message });
      } else if (isFinal && add!.op.type === 'info') {
        stats.recovered++;
      }
    }

    /** Elements of this read already reported lost here, so that `disappeared` does not repeat them. */
    const lostHere = new Set<string>();
    for (const [id, { element, op }] of adds) {
      if (counts.has(id)) continue;
      if (op.type === 'ok' && op.completeTimeMs! < read.invokeTimeMs) {
        lostHere.add(id);
        if (reported.lost.has(id)) continue;
        reported.lost.add(id);
        stats.lost++;
        log.add({
          type: 'lost',
          element,
          add: opRef(op),
          read: readRef,
          readIsFinal: isFinal,
          message:
            `element ${JSON.stringify(element)} is lost: its add ${showOp(op, element)} was acknowledged at ${showMs(op.completeTimeMs)}` +
            `${op.completion?.node === undefined ? '' : ` by node ${op.completion.node}`}, before ${readText} began, which does not contain it`,
        });
      } else if (isFinal) {
        if (op.type === 'info') stats.indeterminateAbsent++;
        else if (op.type === 'ok') stats.okConcurrentAbsent++;
      }
    }

    for (const [id, { element, read: earlier }] of seen) {
      if (counts.has(id) || lostHere.has(id) || reported.disappeared.has(id)) continue;
      reported.disappeared.add(id);
      stats.disappeared++;
      const add = adds.get(id);
      log.add({
        type: 'disappeared',
        element,
        ...(add === undefined ? {} : { add: opRef(add.op) }),
        seenBy: opRef(earlier, false),
        missingFrom: readRef,
        message:
          `element ${JSON.stringify(element)} disappeared: the read ${showOp(earlier)} [${showMs(earlier.invokeTimeMs)}, ${showMs(earlier.completeTimeMs)}] contains it, ` +
          `and ${readText}, which began after that one ended, does not`,
      });
    }
  }

  stats.anomaliesOmitted = log.omitted;
  const valid: Validity = !(stats.lost + stats.disappeared + stats.unexpected + stats.duplicated > 0);
  return { valid, anomalies: log.list, stats };
}
