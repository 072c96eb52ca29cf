// Set: every add inserts a unique element; reads of the whole set are
// interleaved with the adds during the run (READ_SHARE of the operations), and
// one final read after healing returns them all.
//   add  value=element -> ok (generation, node)
//   read               -> ok value=[elements, sorted; duplicates kept]
// Reads during the run are what lets the checker see an acknowledged insert
// missing for a while (a stale or lost copy served, then repaired) and an
// element that vanishes, which the final read alone cannot.
// The table has no unique constraint on purpose: an insert that became two rows
// (a statement replayed after its commit) shows up as a duplicate in the read.

import type pg from 'pg';
import type { Prng } from '../../raft/sim/prng.js';
import type { CheckOptions } from '../checkers/index.js';
import { transaction } from './txn.js';
import type { OpResult, OpSpec, RunContext, Workload } from './types.js';

const TABLE = 'jepsen_set';
/**
 * Share of the operations that read the whole set. Each read returns every
 * element so far (thousands by the end of a run), so the share stays small:
 * about 450 reads in a 60 s run at the default rate.
 */
const READ_SHARE = 0.05;

export class SetWorkload implements Workload {
  readonly name = 'set' as const;
  readonly defaultConcurrency = 6;
  readonly defaultRate = 150;
  private nextElement = 0;

  async setup(client: pg.Client): Promise<void> {
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (v bigint NOT NULL)`);
  }

  next(_process: number, rng: Prng): OpSpec {
    if (rng.chance(READ_SHARE)) return { f: 'read' };
    return { f: 'add', value: this.nextElement++ };
  }

  async run(client: pg.Client, op: OpSpec, ctx: RunContext): Promise<OpResult> {
    if (op.f === 'add') {
      return transaction(client, ctx, { withGeneration: true }, async (c) => {
        await c.query(`INSERT INTO ${TABLE} (v) VALUES ($1)`, [op.value]);
        return undefined;
      });
    }
    if (op.f === 'read') {
      return transaction(client, ctx, { withGeneration: false }, async (c) => {
        const r = await c.query<{ e: string }>(`SELECT v::text AS e FROM ${TABLE} ORDER BY v`);
        return r.rows.map((x) => Number(x.e));
      });
    }
    throw new Error(`set: unknown op ${op.f}`);
  }

  finalOps(): OpSpec[] {
    return [{ f: 'read' }];
  }

  checkOptions(): CheckOptions {
    return { oneWriter: { requireGeneration: ['add'] } };
  }
}
