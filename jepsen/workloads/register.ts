// Registers: a few keyed rows, each a read/write/compare-and-set register.
//   read  key            -> ok value=v (null: no row yet)
//   write key value=v    -> ok (generation, node)
//   cas   key value=[from, to] -> ok (it applied) | fail value=false (refused: the
//                                 value was not `from`; the checker treats that as an
//                                 observation of the register)
// Values are small integers so that cas often matches. Each key's history is
// checked for linearizability, so the key count and the rate keep each key's
// history small enough to search.

import type pg from 'pg';
import type { Prng } from '../../raft/sim/prng.js';
import type { CheckOptions } from '../checkers/index.js';
import { Refused, transaction } from './txn.js';
import type { OpResult, OpSpec, RunContext, Workload } from './types.js';

const TABLE = 'jepsen_register';
const KEYS = 5;
const VALUES = 5;

export class RegisterWorkload implements Workload {
  readonly name = 'register' as const;
  readonly defaultConcurrency = 6;
  readonly defaultRate = 60;

  async setup(client: pg.Client): Promise<void> {
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (k int PRIMARY KEY, v int NOT NULL)`);
  }

  next(_process: number, rng: Prng): OpSpec {
    const key = rng.int(0, KEYS - 1);
    const x = rng.next();
    if (x < 0.5) return { f: 'read', key };
    if (x < 0.75) return { f: 'write', key, value: rng.int(0, VALUES - 1) };
    return { f: 'cas', key, value: [rng.int(0, VALUES - 1), rng.int(0, VALUES - 1)] };
  }

  async run(client: pg.Client, op: OpSpec, ctx: RunContext): Promise<OpResult> {
    const k = op.key as number;
    switch (op.f) {
      case 'read':
        return transaction(client, ctx, { withGeneration: false }, async (c) => {
          const r = await c.query<{ v: number }>(`SELECT v FROM ${TABLE} WHERE k = $1`, [k]);
          return r.rows[0]?.v ?? null;
        });
      case 'write':
        return transaction(client, ctx, { withGeneration: true }, async (c) => {
          await c.query(`INSERT INTO ${TABLE} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [k, op.value]);
          return undefined;
        });
      case 'cas': {
        const [from, to] = op.value as [number, number];
        return transaction(client, ctx, { withGeneration: true }, async (c) => {
          // Read committed re-checks the WHERE clause on the latest row version
          // after waiting for a concurrent writer: a compare-and-set on one primary.
          const r = await c.query(`UPDATE ${TABLE} SET v = $2 WHERE k = $1 AND v = $3`, [k, to, from]);
          // value false marks the refusal: the compare ran and saw another value (or no row).
          if (r.rowCount !== 1) throw new Refused(`value was not ${from}`, false);
          return undefined;
        });
      }
      default:
        throw new Error(`register: unknown op ${op.f}`);
    }
  }

  finalOps(): OpSpec[] {
    return Array.from({ length: KEYS }, (_, key) => ({ f: 'read', key }));
  }

  checkOptions(): CheckOptions {
    return { register: { initialValue: null, timeoutMs: 60_000 }, oneWriter: { requireGeneration: ['write', 'cas'] } };
  }
}
