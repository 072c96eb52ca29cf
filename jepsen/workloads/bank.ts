// Bank: a few accounts; transfers move money between two of them in one
// transaction, reads return every balance in one statement (one snapshot).
//   transfer value={from, to, amount} -> ok | fail (insufficient funds)
//   read                              -> ok value={account: balance}
// Every transaction conserves the total, so every ok read must see exactly
// ACCOUNTS x INITIAL; overdrafts are refused, so no balance is ever negative;
// and every read must be the opening balances plus the transfers acknowledged
// before it plus some of those in flight (checkers/bank.ts).

import type pg from 'pg';
import type { Prng } from '../../raft/sim/prng.js';
import type { CheckOptions } from '../checkers/index.js';
import { Refused, transaction } from './txn.js';
import type { OpResult, OpSpec, RunContext, Workload } from './types.js';

const TABLE = 'jepsen_bank';
const ACCOUNTS = 5;
const INITIAL = 10;
const AMOUNT_MAX = 5;

export class BankWorkload implements Workload {
  readonly name = 'bank' as const;
  readonly defaultConcurrency = 6;
  readonly defaultRate = 100;

  async setup(client: pg.Client): Promise<void> {
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id int PRIMARY KEY, balance bigint NOT NULL)`);
    await client.query(`INSERT INTO ${TABLE} (id, balance) SELECT i, $1 FROM generate_series(0, $2 - 1) AS i ON CONFLICT (id) DO NOTHING`, [INITIAL, ACCOUNTS]);
  }

  next(_process: number, rng: Prng): OpSpec {
    if (rng.chance(0.4)) return { f: 'read' };
    const from = rng.int(0, ACCOUNTS - 1);
    let to = rng.int(0, ACCOUNTS - 2);
    if (to >= from) to++;
    return { f: 'transfer', value: { from, to, amount: rng.int(1, AMOUNT_MAX) } };
  }

  async run(client: pg.Client, op: OpSpec, ctx: RunContext): Promise<OpResult> {
    if (op.f === 'read') {
      return transaction(client, ctx, { withGeneration: false }, async (c) => {
        const r = await c.query<{ id: number; balance: string }>(`SELECT id, balance::text AS balance FROM ${TABLE} ORDER BY id`);
        return Object.fromEntries(r.rows.map((x) => [String(x.id), Number(x.balance)]));
      });
    }
    if (op.f === 'transfer') {
      const { from, to, amount } = op.value as { from: number; to: number; amount: number };
      return transaction(client, ctx, { withGeneration: true }, async (c) => {
        // Lock both rows in id order, so concurrent transfers do not deadlock.
        await c.query(`SELECT id FROM ${TABLE} WHERE id IN ($1, $2) ORDER BY id FOR UPDATE`, [from, to]);
        const debit = await c.query(`UPDATE ${TABLE} SET balance = balance - $2 WHERE id = $1 AND balance >= $2`, [from, amount]);
        if (debit.rowCount !== 1) throw new Refused(`insufficient funds in account ${from}`);
        await c.query(`UPDATE ${TABLE} SET balance = balance + $2 WHERE id = $1`, [to, amount]);
        return undefined;
      });
    }
    throw new Error(`bank: unknown op ${op.f}`);
  }

  finalOps(): OpSpec[] {
    return [{ f: 'read' }];
  }

  checkOptions(): CheckOptions {
    // Reads name accounts by their id as a string ({"0": 10, ...}).
    const initialBalances = Object.fromEntries(Array.from({ length: ACCOUNTS }, (_, id) => [String(id), INITIAL]));
    return { bank: { initialBalances }, oneWriter: { requireGeneration: ['transfer'] } };
  }
}
