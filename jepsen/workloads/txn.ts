// One operation = one explicit transaction through the proxy, classified the way
// the checkers need (jepsen/history/types.ts):
//   - any error before COMMIT was sent: fail. Without a COMMIT the transaction
//     cannot commit: Postgres rolls it back when the statement fails or the
//     session goes away, and the proxy never retries inside a transaction.
//   - COMMIT answered: ok (or fail when Postgres answers ROLLBACK: the
//     transaction had failed). A COMMIT that got the warning "canceling wait for
//     synchronous replication" is committed locally only; the client was told
//     COMMIT, so it is recorded ok (with the warning): if it is lost later, that
//     is a lost acknowledged write.
//   - COMMIT sent, then an error, a lost connection or the deadline: info,
//     except serialization failures and deadlocks (certainly rolled back).
// Writes read ogel.generation in the same transaction (the fencing token the
// one-writer checker orders writes by); every operation reads which server ran
// it (inet_server_addr), since a proxy may route anywhere.

import type pg from 'pg';
import type { OpResult, RunContext } from './types.js';

/** A transaction's body asked for a definite failure (a cas that did not match, an overdraft). */
export class Refused extends Error {
  constructor(
    message: string,
    readonly value?: OpResult['value'],
  ) {
    super(message);
  }
}

const DEFINITE_AT_COMMIT = new Set(['40001', '40P01']);
const SYNC_CANCEL = /canceling (the )?wait for synchronous replication/i;

interface ServerInfo {
  generation: string | null;
  marker: string | null;
  addr: string | null;
}

export interface TxnOptions {
  /** Read ogel.generation inside the transaction and report it (writes). */
  withGeneration: boolean;
}

/**
 * Runs BEGIN; body; (server info); COMMIT on `client` within ctx.opTimeoutMs.
 * The caller must drop the client after any result but ok/fail-by-Refused: its
 * session may be in any state.
 */
export async function transaction(
  client: pg.Client,
  ctx: RunContext,
  opts: TxnOptions,
  body: (c: pg.Client) => Promise<OpResult['value'] | undefined>,
): Promise<OpResult & { dropClient: boolean }> {
  let commitSent = false;
  let warning: string | undefined;
  const onNotice = (n: { message?: string }) => {
    if (SYNC_CANCEL.test(n.message ?? '')) warning = n.message;
  };
  client.on('notice', onNotice);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`no answer within ${ctx.opTimeoutMs} ms`)), ctx.opTimeoutMs);
  });
  let node: string | undefined;
  /** Set once the deadline won: the body must not go on to send COMMIT on a session being dropped. */
  let abandoned = false;
  const work = async (): Promise<OpResult & { dropClient: boolean }> => {
    await client.query('BEGIN');
    let value: OpResult['value'] | undefined;
    try {
      value = await body(client);
    } catch (e) {
      if (e instanceof Refused) {
        await client.query('ROLLBACK');
        return { type: 'fail', ...(e.value !== undefined ? { value: e.value } : {}), error: e.message, dropClient: false };
      }
      throw e;
    }
    const info = (
      await client.query<ServerInfo>(
        opts.withGeneration
          ? 'SELECT g.generation::text AS generation, g.node AS marker, host(inet_server_addr()) AS addr FROM ogel.generation g'
          : 'SELECT NULL::text AS generation, NULL::text AS marker, host(inet_server_addr()) AS addr',
      )
    ).rows[0];
    node = info?.addr ? ctx.nodeOfAddress(info.addr) : undefined;
    if (abandoned) throw new DeadlineError('abandoned at its deadline');
    commitSent = true;
    const r = await client.query('COMMIT');
    if (r.command === 'ROLLBACK') return { type: 'fail', error: 'COMMIT answered ROLLBACK', dropClient: false, ...(node ? { node } : {}) };
    const out: OpResult & { dropClient: boolean } = { type: 'ok', dropClient: false };
    if (value !== undefined) out.value = value;
    if (node !== undefined) out.node = node;
    // What the row says is recorded as is; the one-writer checker judges it: a
    // write with no generation (no row), a row naming another node than the one
    // that answered, one generation on two nodes are anomalies of the run.
    if (opts.withGeneration && info?.generation != null) {
      out.generation = Number(info.generation);
      if (info.marker !== null) out.generationNode = info.marker;
    }
    if (warning !== undefined) out.error = `committed with warning: ${warning}`;
    return out;
  };
  try {
    return await Promise.race([work(), deadline]);
  } catch (e) {
    abandoned = true;
    const err = e as Error & { code?: string };
    const error = `${err.code ? `${err.code} ` : ''}${err.message}`.trim();
    const where = node !== undefined ? { node } : {};
    if (!commitSent) return { type: 'fail', error, dropClient: true, ...where };
    if (err.code !== undefined && DEFINITE_AT_COMMIT.has(err.code)) return { type: 'fail', error, dropClient: true, ...where };
    return { type: 'info', error, dropClient: true, ...where };
  } finally {
    clearTimeout(timer);
    client.off('notice', onNotice);
  }
}

class DeadlineError extends Error {}
