// One entry point for a run: pair the history, run the workload's checker and
// the one-writer checker (every workload's writes may carry a generation), and,
// when the harness observed the WAL archive after the run, the archive checker
// (archive.ts); merge the verdicts. Produces the `valid` and `anomalies` parts of a run's JSON.
//
// A malformed history (HistoryError) is a harness bug, not a database anomaly:
// it yields valid 'unknown' with one 'malformed-history' anomaly naming the
// event, as Jepsen does for a checker that cannot run. Any other exception is a
// bug in a checker and propagates.

import { HistoryError } from '../history/errors.js';
import { countOperations, pairHistory, type HistoryCounts, type PairOptions } from '../history/pair.js';
import type { History } from '../history/types.js';
import { checkArchive, type ArchiveObservation, type ArchiveStats } from './archive.js';
import { checkBank, type BankOptions, type BankStats } from './bank.js';
import { checkOneWriter, type OneWriterOptions, type OneWriterStats } from './one-writer.js';
import { checkRegister, type RegisterOptions, type RegisterStats } from './register.js';
import { checkSet, type SetOptions, type SetStats } from './set.js';
import { mergeValidity, type Anomaly, type CheckerResult, type Validity } from './types.js';

export type Workload = 'register' | 'set' | 'bank';
export const WORKLOADS: readonly Workload[] = ['register', 'set', 'bank'];

export interface CheckOptions {
  register?: RegisterOptions;
  set?: SetOptions;
  /** Required for the bank workload (its opening balances). */
  bank?: BankOptions;
  /** false: skip the one-writer checker. */
  oneWriter?: OneWriterOptions | false;
  pair?: PairOptions;
  /** The WAL archive as the harness saw it after the final heal: judged by the archive checker. */
  archive?: ArchiveObservation;
}

export interface CheckStats {
  /** Operation counts (for malformed histories: event counts by type, invokes as ops). */
  history: HistoryCounts;
  register?: RegisterStats;
  set?: SetStats;
  bank?: BankStats;
  oneWriter?: OneWriterStats;
  archive?: ArchiveStats;
  /** Wall-clock time the check took. */
  checkMs: number;
}

export interface CheckReport {
  valid: Validity;
  anomalies: Anomaly[];
  stats: CheckStats;
}

function countEvents(history: History): HistoryCounts {
  const c: HistoryCounts = { ops: 0, ok: 0, fail: 0, info: 0 };
  for (const e of history) {
    if (e.type === 'invoke') c.ops++;
    else if (e.type === 'ok' || e.type === 'fail' || e.type === 'info') c[e.type]++;
  }
  return c;
}

export function check(workload: 'bank', history: History, opts: CheckOptions & { bank: BankOptions }): CheckReport;
export function check(workload: 'register' | 'set', history: History, opts?: CheckOptions): CheckReport;
export function check(workload: Workload, history: History, opts?: CheckOptions): CheckReport;
export function check(workload: Workload, history: History, opts: CheckOptions = {}): CheckReport {
  const started = performance.now();
  const stats: CheckStats = { history: { ops: 0, ok: 0, fail: 0, info: 0 }, checkMs: 0 };
  const results: CheckerResult<unknown>[] = [];
  // Independent of the history: judged even when the history is malformed.
  const archive = opts.archive === undefined ? undefined : checkArchive(opts.archive);
  if (archive !== undefined) stats.archive = archive.stats;
  try {
    const ops = pairHistory(history, opts.pair);
    stats.history = countOperations(ops);
    switch (workload) {
      case 'register': {
        const r = checkRegister(ops, opts.register);
        stats.register = r.stats;
        results.push(r);
        break;
      }
      case 'set': {
        const r = checkSet(ops, opts.set);
        stats.set = r.stats;
        results.push(r);
        break;
      }
      case 'bank': {
        if (opts.bank === undefined) throw new TypeError('check(bank): opts.bank.initialBalances is required');
        const r = checkBank(ops, opts.bank);
        stats.bank = r.stats;
        results.push(r);
        break;
      }
      default: {
        const never: never = workload;
        throw new TypeError(`unknown workload ${String(never)}`);
      }
    }
    if (opts.oneWriter !== false) {
      const r = checkOneWriter(ops, opts.oneWriter);
      stats.oneWriter = r.stats;
      results.push(r);
    }
  } catch (e: unknown) {
    if (!(e instanceof HistoryError)) throw e;
    stats.history = countEvents(history);
    stats.checkMs = performance.now() - started;
    return {
      valid: mergeValidity(['unknown', archive?.valid ?? true]),
      anomalies: [{ type: 'malformed-history', index: e.index, message: e.message }, ...(archive?.anomalies ?? [])],
      stats,
    };
  }
  if (archive !== undefined) results.push(archive);
  stats.checkMs = performance.now() - started;
  return {
    valid: mergeValidity(results.map((r) => r.valid)),
    anomalies: results.flatMap((r) => r.anomalies),
    stats,
  };
}
