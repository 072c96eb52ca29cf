// Bank workload: accounts with integer balances; transfers move money between
// two accounts inside one transaction; reads return every balance in one
// transaction.
//   transfer value={from, to, amount}
//   read  -> ok value={account: balance, ...}
// Since each transfer is a transaction, it conserves the total whether it
// committed, failed or is indeterminate (info): so EVERY ok read, whatever
// transfers were in flight, must see exactly the initial total. A read that sees
// a different total observed a partial transaction (or lost/duplicated money).
// If the workload forbids overdrafts, every balance read must also be >= 0.

import { HistoryError } from '../history/errors.js';
import type { Operation } from '../history/pair.js';
import type { Json } from '../history/types.js';
import { AnomalyLog, DEFAULT_MAX_ANOMALIES, opRef, showMs, showOp, type CheckerResult, type Validity } from './types.js';

export interface BankOptions {
  /** Sum of all balances before the workload, e.g. accounts x initial balance. */
  initialTotal: number;
  /** Default false: a negative balance is an anomaly. */
  allowNegative?: boolean;
  maxAnomalies?: number;
}

export interface BankStats {
  okReads: number;
  transfersOk: number;
  transfersFailed: number;
  transfersIndeterminate: number;
  wrongTotalReads: number;
  negativeBalances: number;
  anomaliesOmitted: number;
}

function isRecord(x: Json | undefined): x is { readonly [key: string]: Json } {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkTransferShape(op: Operation): void {
  const v = op.invoke.value;
  const ok = isRecord(v) && typeof v['amount'] === 'number' && v['from'] !== undefined && v['to'] !== undefined;
  if (!ok) throw new HistoryError(`transfer must be invoked with {from, to, amount}, got ${JSON.stringify(v ?? 'nothing')}`, op.index);
}

export function checkBank(ops: readonly Operation[], opts: BankOptions): CheckerResult<BankStats> {
  if (!Number.isSafeInteger(opts.initialTotal)) throw new RangeError(`initialTotal must be an integer, got ${opts.initialTotal}`);
  const log = new AnomalyLog(opts.maxAnomalies ?? DEFAULT_MAX_ANOMALIES);
  const stats: BankStats = {
    okReads: 0,
    transfersOk: 0,
    transfersFailed: 0,
    transfersIndeterminate: 0,
    wrongTotalReads: 0,
    negativeBalances: 0,
    anomaliesOmitted: 0,
  };
  for (const op of ops) {
    if (op.f === 'transfer') {
      checkTransferShape(op);
      if (op.type === 'ok') stats.transfersOk++;
      else if (op.type === 'fail') stats.transfersFailed++;
      else stats.transfersIndeterminate++;
      continue;
    }
    if (op.f !== 'read') throw new HistoryError(`bank workload: unknown f ${JSON.stringify(op.f)} (expected transfer or read)`, op.index);
    if (op.type !== 'ok') continue; // a read that did not complete observed nothing we know of
    stats.okReads++;
    const v = op.completion!.value;
    if (!isRecord(v)) throw new HistoryError(`ok read must complete with {account: balance}, got ${JSON.stringify(v ?? 'nothing')}`, op.completionIndex!);
    const balances: Record<string, number> = {};
    let total = 0;
    for (const [account, balance] of Object.entries(v)) {
      // Integers only: float sums depend on order, and money is counted in cents anyway.
      if (typeof balance !== 'number' || !Number.isSafeInteger(balance)) {
        throw new HistoryError(`balance of account ${JSON.stringify(account)} must be an integer, got ${JSON.stringify(balance)}`, op.completionIndex!);
      }
      balances[account] = balance;
      total += balance;
    }
    const where = `read ${showOp(op)} [${showMs(op.invokeTimeMs)}, ${showMs(op.completeTimeMs)}]${op.completion?.node === undefined ? '' : ` on node ${op.completion.node}`}`;
    if (total !== opts.initialTotal) {
      stats.wrongTotalReads++;
      log.add({
        type: 'bank-total',
        read: opRef(op, false),
        total,
        expected: opts.initialTotal,
        balances,
        message: `${where} sees a total of ${total}, expected ${opts.initialTotal} (off by ${total - opts.initialTotal}) in ${Object.keys(balances).length} accounts: ${JSON.stringify(balances)}`,
      });
    }
    if (opts.allowNegative !== true) {
      for (const [account, balance] of Object.entries(balances)) {
        if (balance >= 0) continue;
        stats.negativeBalances++;
        log.add({ type: 'bank-negative', read: opRef(op, false), account, balance, message: `${where} sees account ${JSON.stringify(account)} at ${balance}, below zero` });
      }
    }
  }
  stats.anomaliesOmitted = log.omitted;
  const valid: Validity = stats.wrongTotalReads + stats.negativeBalances > 0 ? false : true;
  return { valid, anomalies: log.list, stats };
}
