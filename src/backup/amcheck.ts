// Checks the relations of a running Postgres with amcheck, database by
// database: the restore test's verdict on a restored backup (restore-test.ts).
// In every database that takes connections (template0 does not, and is never
// written to), amcheck is created, then every btree index is checked with
// bt_index_check(heapallindexed => true) (its structure, and every heap tuple
// found in it) and every table, materialized view and TOAST table with
// verify_heapam (any row it returns is corruption). One relation per
// statement: an ERROR (a data checksum failure is one: "invalid page in block")
// is then that relation's problem, named, and the check goes on.
// Our own SQL being refused (SQLSTATE class 42) is a bug here, and throws.

import type pg from 'pg';
import { connectSocket, quoteIdent, sqlState, type SocketTarget } from '../postgres/query.js';

export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export type RelationKind = 'table' | 'materialized view' | 'TOAST table' | 'index';

export interface RelationToCheck {
  /** pg_class.oid, as text. */
  oid: string;
  schema: string;
  name: string;
  kind: RelationKind;
  /** pg_relation_filepath: where the damage is, for the operator. */
  file: string | null;
}

export interface AmcheckProgress {
  database: string;
  relationsDone: number;
  relationsTotal: number;
}

export interface AmcheckOptions {
  /** Stop once this many problems are found (default 5): the first ones name the damage. */
  maxProblems?: number | undefined;
  onProgress?: ((p: AmcheckProgress) => void) | undefined;
  /** Aborting ends the check with the signal's reason (the caller stops the server to end a running statement). */
  signal?: AbortSignal | undefined;
  connectTimeoutMs?: number | undefined;
}

export interface AmcheckResult {
  databases: number;
  /** Heaps checked: tables, materialized views, TOAST tables. */
  tables: number;
  indexes: number;
  /** One line each, naming the database, the relation and what amcheck or the server said. */
  problems: string[];
}

/** Our SQL was refused: a bug in this module, not a verdict on the backup. */
export class AmcheckQueryError extends Error {
  override name = 'AmcheckQueryError';
}

const APPLICATION_NAME = 'ogel-restore-test';

/** Relations with storage that amcheck can check, heaps first. Temporary relations belong to sessions that are gone. */
const RELATIONS_SQL = `
SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind, pg_catalog.pg_relation_filepath(c.oid) AS file
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = c.relam
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
WHERE c.relpersistence <> 't'
  AND ((c.relkind IN ('r', 'm', 't') AND am.amname = 'heap') OR (c.relkind = 'i' AND am.amname = 'btree' AND i.indisvalid AND i.indisready))
ORDER BY c.relkind = 'i', n.nspname, c.relname`;

const KINDS: Readonly<Record<string, RelationKind>> = { r: 'table', m: 'materialized view', t: 'TOAST table', i: 'index' };

/** Checks every database of the server at `target`. Problems are results; an abort or our own SQL being refused throws. */
export async function amcheckDatabases(target: SocketTarget, opts: AmcheckOptions = {}): Promise<AmcheckResult> {
  const maxProblems = opts.maxProblems ?? 5;
  if (!(maxProblems >= 1)) throw new RangeError(`maxProblems must be at least 1, got ${maxProblems}`);
  const out: AmcheckResult = { databases: 0, tables: 0, indexes: 0, problems: [] };
  const names = await withDatabase(target, 'postgres', opts, (db) =>
    db.query<{ datname: string }>(`SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND datname <> 'template0' ORDER BY datname`),
  );
  if (names === undefined) throw new AmcheckQueryError('could not list the databases');
  for (const { datname } of names.rows) {
    if (out.problems.length >= maxProblems) break;
    out.databases++;
    await withDatabase(target, datname, opts, (db) => checkDatabase(db, datname, out, maxProblems, opts), out.problems);
  }
  out.problems.splice(maxProblems);
  return out;
}

/** Runs `fn` on a session in `database`; a failure to connect is a problem of that database (or throws when `problems` is not given). */
async function withDatabase<T>(
  target: SocketTarget,
  database: string,
  opts: AmcheckOptions,
  fn: (db: pg.Client) => Promise<T>,
  problems?: string[],
): Promise<T | undefined> {
  let client: pg.Client;
  try {
    client = await connectSocket({ ...target, database, applicationName: APPLICATION_NAME }, { timeoutMs: opts.connectTimeoutMs ?? 10_000 });
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (problems === undefined) throw e;
    problems.push(`database ${quoteIdent(database)}: could not connect: ${(e as Error).message}`);
    return undefined;
  }
  try {
    // The copy carries its source's per-database and per-role settings: a fenced
    // primary's read-only default, a statement_timeout meant for applications.
    await client.query('SET default_transaction_read_only = off; SET statement_timeout = 0; SET lock_timeout = 0');
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

async function checkDatabase(db: Queryable, datname: string, out: AmcheckResult, maxProblems: number, opts: AmcheckOptions): Promise<void> {
  const where = `database ${quoteIdent(datname)}`;
  let schema: string;
  let rels: RelationToCheck[];
  try {
    schema = await ensureAmcheck(db);
    rels = (await db.query<Omit<RelationToCheck, 'kind'> & { relkind: string }>(RELATIONS_SQL)).rows.map(({ relkind, ...r }) => ({
      ...r,
      kind: KINDS[relkind]!,
    }));
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    rethrowOurMistake(e);
    out.problems.push(`${where}: could not prepare the check: ${(e as Error).message}`);
    return;
  }
  for (const [i, rel] of rels.entries()) {
    opts.signal?.throwIfAborted();
    if (out.problems.length >= maxProblems) return;
    const { problems, sessionLost } = await checkRelation(db, schema, rel, opts.signal);
    if (rel.kind === 'index') out.indexes++;
    else out.tables++;
    out.problems.push(...problems.map((p) => `${where}: ${p}`));
    opts.onProgress?.({ database: datname, relationsDone: i + 1, relationsTotal: rels.length });
    if (sessionLost) return; // the server crashed or ended the session: the rest of this database cannot be checked on it
  }
}

/** Creates amcheck (at the newest version) if it is not there; returns the schema it lives in. */
async function ensureAmcheck(db: Queryable): Promise<string> {
  try {
    await db.query('CREATE EXTENSION IF NOT EXISTS amcheck');
  } catch (e) {
    // 3F000: no schema to create it in (the database has no public schema).
    if (sqlState(e) !== '3F000') throw e;
    await db.query('CREATE SCHEMA IF NOT EXISTS ogel_amcheck');
    await db.query('CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA ogel_amcheck');
  }
  // A database may hold an older amcheck, without verify_heapam (1.3+).
  await db.query('ALTER EXTENSION amcheck UPDATE');
  const r = await db.query<{ nspname: string }>(
    `SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'`,
  );
  return r.rows[0]!.nspname;
}

/** Checks one relation; its problems (without the database), and whether the session was lost. */
export async function checkRelation(
  db: Queryable,
  amcheckSchema: string,
  rel: RelationToCheck,
  signal?: AbortSignal,
): Promise<{ problems: string[]; sessionLost: boolean }> {
  const what = `${rel.kind} ${quoteIdent(rel.schema)}.${quoteIdent(rel.name)}${rel.file === null ? '' : ` (${rel.file})`}`;
  const fn = `${quoteIdent(amcheckSchema)}.${rel.kind === 'index' ? 'bt_index_check' : 'verify_heapam'}`;
  try {
    if (rel.kind === 'index') {
      await db.query(`SELECT ${fn}(index => $1::oid::regclass, heapallindexed => true)`, [rel.oid]);
      return { problems: [], sessionLost: false };
    }
    const rows = (
      await db.query<{ blkno: string | null; offnum: number | null; attnum: number | null; msg: string }>(
        `SELECT blkno, offnum, attnum, msg FROM ${fn}(relation => $1::oid::regclass)`,
        [rel.oid],
      )
    ).rows;
    return { problems: rows.map((r) => `${what}: verify_heapam: ${position(r)}${r.msg}`), sessionLost: false };
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    rethrowOurMistake(e);
    const state = sqlState(e);
    // No SQLSTATE: the connection broke. 57P*: the server shut down or crashed. 08*: connection exceptions.
    const sessionLost = state === undefined || state.startsWith('57P') || state.startsWith('08');
    return { problems: [`${what}: ${(e as Error).message}${state === undefined ? '' : ` (SQLSTATE ${state})`}`], sessionLost };
  }
}

function position(r: { blkno: string | null; offnum: number | null; attnum: number | null }): string {
  const parts = [r.blkno === null ? '' : `block ${r.blkno}`, r.offnum === null ? '' : `offset ${r.offnum}`, r.attnum === null ? '' : `attribute ${r.attnum}`];
  const s = parts.filter((p) => p !== '').join(', ');
  return s === '' ? '' : `${s}: `;
}

/** SQLSTATE class 42 (syntax error or access rule violation) on our own statements is a bug, not damage. */
function rethrowOurMistake(e: unknown): void {
  const state = sqlState(e);
  if (state?.startsWith('42')) throw new AmcheckQueryError(`the restore test's SQL was refused: ${(e as Error).message} (SQLSTATE ${state})`, { cause: e });
  if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError) throw e;
}
